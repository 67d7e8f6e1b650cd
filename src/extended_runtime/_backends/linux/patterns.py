"""What each haptic type sounds and feels like: the pattern table, and the tones it makes.

Theory
------
Apple's haptic types are distinct patterns a wearer tells apart without looking. A Linux machine
renders one pattern three ways, and every haptic type has its own in each (a test holds them
distinct, and holds the table in `alerts.py`'s docstring and the README equal to this data):

* a **theme event id** of the freedesktop sound theme, played by libcanberra where the theme is
  installed. Theme sounds are recorded, so they cannot follow a rhythm of ours: each type gets
  the theme sound whose meaning is nearest among those that are distinct files (the theme links
  several ids to one sound: `dialog-error`, `window-attention` and `window-question` all play
  `dialog-warning`). NOTIFICATION, what an alarm plays most, is the loud
  `phone-incoming-call`; `message-new-instant` is too quiet to wake anyone;
* a **tone pattern**, the fallback when the theme (or libcanberra) is missing: a sequence of
  steps, each a sine tone of some hertz held some milliseconds, 0 Hz being a rest. The package
  ships these as data, not as audio files: `pcm()` synthesises the same bytes on every machine
  (44.1 kHz, mono, signed 16-bit little-endian, half of full scale, with 5 ms fades so no step
  clicks), which a test pins; nothing binary is stored and nothing is written to disk;
* a **rumble pattern** for a force-feedback device: steps of the strong (heavy) and weak (light)
  motor, each in percent of full strength, held some milliseconds, 0/0 being a rest. The rhythm
  follows the tones, so sound and touch agree.

The host's own alarm (`by_host`, for an app that cannot alert) is `HOST_ALARM`: the theme's
`alarm-clock-elapsed`, or four beeps.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass
from functools import cache

from ..._core.enums import HapticType

__all__ = [
    "HOST_ALARM",
    "PATTERNS",
    "RATE",
    "Buzz",
    "Pattern",
    "Tone",
    "markdown_table",
    "pcm",
]

#: Samples per second of the synthesised tones (mono, signed 16-bit).
RATE = 44_100
#: Peak level of a tone, as a fraction of full scale.
LEVEL = 0.5
#: Fade in and out of each tone, so steps do not click (milliseconds).
FADE_MS = 5


@dataclass(frozen=True, slots=True)
class Tone:
    """One step of a tone pattern: `hz` (0: a rest) held for `ms` milliseconds."""

    hz: int
    ms: int

    def __str__(self) -> str:
        return f"{self.hz}:{self.ms}"


@dataclass(frozen=True, slots=True)
class Buzz:
    """One step of a rumble pattern: the strong and weak motors (percent) for `ms`."""

    strong: int
    weak: int
    ms: int

    def __str__(self) -> str:
        return f"{self.strong}/{self.weak}:{self.ms}"


@dataclass(frozen=True, slots=True)
class Pattern:
    """One haptic type, rendered three ways."""

    event_id: str
    tones: tuple[Tone, ...]
    buzzes: tuple[Buzz, ...]


def _tones(*steps: tuple[int, int]) -> tuple[Tone, ...]:
    return tuple(Tone(hz, ms) for hz, ms in steps)


def _buzzes(*steps: tuple[int, int, int]) -> tuple[Buzz, ...]:
    return tuple(Buzz(strong, weak, ms) for strong, weak, ms in steps)


_H = HapticType

#: Each haptic type's pattern (the table in `alerts.py` and the README is made from this).
PATTERNS: dict[HapticType, Pattern] = {
    _H.NOTIFICATION: Pattern(
        "phone-incoming-call",
        _tones((880, 120), (0, 80), (880, 120)),
        _buzzes((70, 40, 150), (0, 0, 100), (70, 40, 150)),
    ),
    _H.DIRECTION_UP: Pattern(
        "device-added",
        _tones((523, 90), (659, 90), (784, 140)),
        _buzzes((0, 40, 90), (0, 0, 40), (30, 60, 90), (0, 0, 40), (60, 80, 140)),
    ),
    _H.DIRECTION_DOWN: Pattern(
        "device-removed",
        _tones((784, 90), (659, 90), (523, 140)),
        _buzzes((60, 80, 90), (0, 0, 40), (30, 60, 90), (0, 0, 40), (0, 40, 140)),
    ),
    _H.SUCCESS: Pattern(
        "complete",
        _tones((659, 100), (988, 200)),
        _buzzes((40, 40, 100), (0, 0, 60), (80, 60, 200)),
    ),
    _H.FAILURE: Pattern(
        "suspend-error",
        _tones((330, 180), (0, 60), (220, 300)),
        _buzzes((90, 20, 180), (0, 0, 60), (90, 20, 300)),
    ),
    _H.RETRY: Pattern(
        "dialog-warning",
        _tones((440, 80), (0, 80), (440, 80), (0, 80), (440, 80)),
        _buzzes((50, 50, 80), (0, 0, 80), (50, 50, 80), (0, 0, 80), (50, 50, 80)),
    ),
    _H.START: Pattern(
        "service-login",
        _tones((587, 80), (880, 200)),
        _buzzes((30, 60, 80), (0, 0, 50), (70, 70, 200)),
    ),
    _H.STOP: Pattern(
        "service-logout",
        _tones((880, 80), (587, 200)),
        _buzzes((70, 70, 80), (0, 0, 50), (30, 60, 200)),
    ),
    _H.CLICK: Pattern(
        "audio-volume-change",
        _tones((2000, 15)),
        _buzzes((0, 60, 20)),
    ),
    _H.NAVIGATION_LEFT_TURN: Pattern(
        "bell",
        _tones((392, 200), (0, 80), (392, 80)),
        _buzzes((80, 30, 200), (0, 0, 80), (80, 30, 80)),
    ),
    _H.NAVIGATION_RIGHT_TURN: Pattern(
        "message",
        _tones((784, 80), (0, 80), (784, 200)),
        _buzzes((30, 80, 80), (0, 0, 80), (30, 80, 200)),
    ),
    _H.NAVIGATION_GENERIC_MANEUVER: Pattern(
        "message-new-instant",
        _tones((523, 60), (0, 60), (523, 60)),
        _buzzes((50, 50, 60), (0, 0, 60), (50, 50, 60)),
    ),
    _H.UNDERWATER_DEPTH_PROMPT: Pattern(
        "dialog-information",
        _tones((660, 300)),
        _buzzes((60, 60, 300)),
    ),
    _H.UNDERWATER_DEPTH_CRITICAL_PROMPT: Pattern(
        "phone-outgoing-busy",
        _tones(*((1000, 100), (750, 100)) * 2),
        _buzzes(*((100, 100, 100), (0, 0, 50)) * 3, (100, 100, 100)),
    ),
}

#: The host's own alarm alert, for an app that cannot alert (DESIGN.md: `by_host`).
HOST_ALARM = Pattern(
    "alarm-clock-elapsed",
    _tones(*((1046, 150), (0, 100)) * 3, (1046, 150)),
    _buzzes(*((100, 100, 150), (0, 0, 100)) * 3, (100, 100, 150)),
)


@cache
def pcm(tones: tuple[Tone, ...]) -> bytes:
    """The tone pattern as PCM: 44.1 kHz, mono, signed 16-bit little-endian (made once each)."""
    samples = array("h")
    for tone in tones:
        samples.extend(_step(tone))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _step(tone: Tone) -> array[int]:
    count = RATE * tone.ms // 1000
    if tone.hz == 0:
        return array("h", bytes(2 * count))
    fade = RATE * FADE_MS // 1000
    peak = LEVEL * 32767
    step = 2 * math.pi * tone.hz / RATE
    return array(
        "h",
        (
            round(peak * min(1.0, i / fade, (count - 1 - i) / fade) * math.sin(step * i))
            for i in range(count)
        ),
    )


def markdown_table() -> str:
    """The pattern table, as in `alerts.py`'s docstring and the README."""
    rows = [
        "| Haptic | Theme event id | Fallback tones (Hz:ms; 0 Hz rests) "
        "| Rumble (strong/weak %:ms; 0/0 rests) |",
        "|---|---|---|---|",
    ]
    named = [(haptic.name, pattern) for haptic, pattern in PATTERNS.items()]
    for name, pattern in [*named, ("host alarm (`by_host`)", HOST_ALARM)]:
        tones = ", ".join(map(str, pattern.tones))
        buzzes = ", ".join(map(str, pattern.buzzes))
        rows.append(f"| {name} | `{pattern.event_id}` | {tones} | {buzzes} |")
    return "\n".join(rows)
