"""The Linux alert backend's parts, one by one: patterns, tones, rumble, bell, sound, probe.

Sound is observed on the real PulseAudio server's null sink (`scripts/services start`), through
its monitor. Rumble has no device on these machines (no `/dev/input`, no `/dev/uinput`): it is
tested against a stand-in pad that records what the backend uploads, plays and erases, with the
real `evdev.ff.Effect` values the backend builds. The bell is tested on a real pseudo-terminal.
"""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extended_runtime import HapticType
from extended_runtime._backends.linux import alerts as alerts_module
from extended_runtime._backends.linux.alerts import LinuxAlerts
from extended_runtime._backends.linux.haptics import (
    EV_FF,
    FF_RUMBLE,
    Rumble,
    RumbleDevice,
    TerminalBell,
    effects,
)
from extended_runtime._backends.linux.patterns import (
    HOST_ALARM,
    PATTERNS,
    RATE,
    markdown_table,
    pcm,
)
from extended_runtime._backends.linux.sound import ThemeSound, ToneSound, theme_folder
from extended_runtime._backends.select import survey
from extended_runtime.testing.contracts import AlertContract

from . import services
from .sink import Monitor, rms

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# ---------------------------------------------------------------------- the patterns


def test_every_haptic_type_has_a_pattern_distinct_in_each_rendering() -> None:
    patterns = [*PATTERNS.values(), HOST_ALARM]
    assert set(PATTERNS) == set(HapticType)
    for rendering in ("event_id", "tones", "buzzes"):
        values = [getattr(pattern, rendering) for pattern in patterns]
        assert len(set(values)) == len(values), rendering


def test_each_theme_event_id_is_a_sound_of_its_own_in_the_installed_theme() -> None:
    """The freedesktop theme links several ids to one file; ours resolve to distinct files."""
    folder = theme_folder()
    if folder is None:
        why = "no freedesktop sound theme (package sound-theme-freedesktop)"
        if os.environ.get("XRS_REQUIRE_SERVICES") == "1":
            pytest.fail(why)
        pytest.skip(why)
    ids = [pattern.event_id for pattern in [*PATTERNS.values(), HOST_ALARM]]
    files = [(folder / "stereo" / f"{event_id}.oga").resolve(strict=True) for event_id in ids]
    contents = {hashlib.sha256(file.read_bytes()).hexdigest() for file in files}
    assert len(contents) == len(ids)


def test_the_table_in_the_docstring_and_the_readme_is_the_data() -> None:
    table = markdown_table()
    assert alerts_module.__doc__ is not None
    assert table in alerts_module.__doc__
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_tones_are_the_same_bytes_on_every_run() -> None:
    """The generated sounds are the package's shipped sounds: their bytes are pinned."""
    pcm.cache_clear()
    made = b"".join(pcm(p.tones) for p in [*PATTERNS.values(), HOST_ALARM])
    pcm.cache_clear()
    again = b"".join(pcm(p.tones) for p in [*PATTERNS.values(), HOST_ALARM])
    assert made == again
    assert hashlib.sha256(made).hexdigest() == TONES_SHA256
    for pattern in PATTERNS.values():
        samples = pcm(pattern.tones)
        assert len(samples) == 2 * sum(RATE * tone.ms // 1000 for tone in pattern.tones)


TONES_SHA256 = "5c0e7e2546a14743893fb7a971092f1c514674927eddf628627cb1badcb96bce"


# ---------------------------------------------------------------------- rumble (stand-in pad)


class StandInPad:
    """Stands in for an `evdev.InputDevice` with FF_RUMBLE: no such device exists on these
    machines (no /dev/input, no /dev/uinput). It records what the backend does to it."""

    def __init__(self, path: str = "/dev/input/event7", slots: int = 16) -> None:
        self.path = path
        self.name = "Stand-in pad"
        self.slots = slots
        self.uploaded: dict[int, Any] = {}
        self.played: list[int] = []
        self.erased: list[int] = []
        self.gone = False
        self.closed = False
        self._next = 0

    def upload_effect(self, effect: Any) -> int:
        self._check()
        if len(self.uploaded) >= self.slots:
            raise OSError(28, "No space left on device")
        self._next += 1
        self.uploaded[self._next] = effect
        return self._next

    def erase_effect(self, ff_id: int) -> None:
        self._check()
        del self.uploaded[ff_id]
        self.erased.append(ff_id)

    def write(self, etype: int, code: int, value: int) -> None:
        self._check()
        assert (etype, value) == (EV_FF, 1)
        self.played.append(code)

    def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if self.gone:
            raise OSError(19, "No such device")


def test_a_rumble_pattern_becomes_real_ff_effects_delayed_step_by_step() -> None:
    built = effects(PATTERNS[HapticType.NOTIFICATION].buzzes)  # 70/40:150, 0/0:100, 70/40:150
    assert [e.type for e in built] == [FF_RUMBLE, FF_RUMBLE]
    assert [(e.ff_replay.length, e.ff_replay.delay) for e in built] == [(150, 0), (150, 250)]
    rumble = built[0].u.ff_rumble_effect
    assert (rumble.strong_magnitude, rumble.weak_magnitude) == (
        0xFFFF * 70 // 100,
        0xFFFF * 40 // 100,
    )
    assert all(e.id == -1 for e in built)  # a new effect each, as the kernel expects


def test_rumble_uploads_and_plays_the_pattern_and_stops_it() -> None:
    pad = StandInPad()
    rumble = Rumble(find=lambda: [pad])
    assert rumble.probe().detail == "rumble on Stand-in pad (/dev/input/event7)"
    assert rumble.play("s1", PATTERNS[HapticType.RETRY].buzzes)
    assert len(pad.uploaded) == 3
    assert sorted(pad.played) == sorted(pad.uploaded)
    delays = sorted(e.ff_replay.delay for e in pad.uploaded.values())
    assert delays == [0, 160, 320]
    rumble.stop("other-session")  # not its pattern: nothing stops
    assert len(pad.uploaded) == 3
    rumble.stop("s1")
    assert pad.uploaded == {}
    assert len(pad.erased) == 3


def test_a_new_pattern_replaces_the_last_and_a_full_pad_plays_what_fits() -> None:
    pad = StandInPad(slots=2)
    rumble = Rumble(find=lambda: [pad])
    assert rumble.play("s1", PATTERNS[HapticType.NOTIFICATION].buzzes)
    first = set(pad.uploaded)
    assert rumble.play("s1", PATTERNS[HapticType.RETRY].buzzes)  # three pulses, two slots
    assert set(pad.erased) == first
    assert len(pad.uploaded) == 2
    assert pad.played[-2:] == sorted(pad.uploaded)


def test_an_unplugged_pad_is_dropped_and_the_next_one_is_looked_for() -> None:
    pads = [StandInPad("/dev/input/event7"), StandInPad("/dev/input/event9")]
    found: Iterator[list[RumbleDevice]] = iter([[pads[0]], [], [pads[1]]])
    rumble = Rumble(find=lambda: next(found))
    assert rumble.play("s1", PATTERNS[HapticType.CLICK].buzzes)
    pads[0].gone = True
    assert not rumble.play("s1", PATTERNS[HapticType.CLICK].buzzes)  # no pad left: none felt
    assert pads[0].closed
    assert rumble.play("s1", PATTERNS[HapticType.CLICK].buzzes)  # one was plugged in
    assert len(pads[1].played) == 1


def test_playing_without_a_device_loads_neither_evdev_nor_asyncio() -> None:
    """evdev imports asyncio: loaded on an alerts thread for nothing, it once raced an app's own
    first use of asyncio. Checked in a fresh interpreter, where nothing else loaded them."""
    code = (
        "import sys\n"
        "from extended_runtime._backends.linux.haptics import Rumble\n"
        "from extended_runtime._backends.linux.patterns import PATTERNS\n"
        "from extended_runtime import HapticType\n"
        "played = Rumble(find=lambda: []).play('s1', PATTERNS[HapticType.RETRY].buzzes)\n"
        "print(played, 'evdev' in sys.modules, 'asyncio' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.split() == ["False", "False", "False"], result.stderr


def test_without_a_rumble_device_the_probe_says_so() -> None:
    probe = Rumble(find=lambda: []).probe()
    assert not probe.available
    assert probe.detail in (
        "no input devices: /dev/input is absent",  # these machines
        "no input device in /dev/input that this user may write has FF_RUMBLE",
    )


# ---------------------------------------------------------------------- the bell


_ON_A_TERMINAL = """
import os, sys
sys.path.insert(0, {src!r})
os.close(os.open(os.ttyname(0), os.O_RDWR))  # a session leader opening its tty: it is ours
from extended_runtime import HapticType
from extended_runtime._backends.linux.alerts import LinuxAlerts
from extended_runtime._backends.linux.haptics import TerminalBell
print(TerminalBell().probe().detail, file=sys.stderr)
LinuxAlerts().play("org.example.bell", "s1", HapticType.NOTIFICATION, False)
print("played", flush=True)
"""


def _on_a_terminal(env: dict[str, str]) -> tuple[bytes, str]:
    """Run one alert in a process whose controlling terminal is a new pseudo-terminal; what
    reached the terminal, and the process's stderr."""
    master, slave = os.openpty()
    seen = b""
    try:
        with subprocess.Popen(
            [sys.executable, "-c", _ON_A_TERMINAL.format(src=str(SRC))],
            stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env, start_new_session=True,
        ) as child:  # fmt: skip
            os.close(slave)
            while b"played" not in seen:
                ready, _, _ = select.select([master], [], [], 30)
                assert ready, f"nothing reached the terminal: {seen!r}"
                seen += os.read(master, 1024)
            _, stderr = child.communicate(timeout=30)
    finally:
        os.close(master)
    return seen, stderr.decode()


def test_the_bell_rings_on_the_terminal_when_nothing_else_reaches_the_user() -> None:
    """No sound server and no session bus: the terminal's bell is the last resort."""
    env = {**os.environ, "PULSE_SERVER": "unix:/nonexistent/pulse", "XDG_DATA_DIRS": "/nonexistent"}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    seen, stderr = _on_a_terminal(env)
    assert stderr.startswith("the bell of /dev/")
    assert b"\a" in seen
    assert "alerts: no sound" in stderr


def test_the_bell_stays_quiet_when_the_sound_is_heard() -> None:
    services.require("pulseaudio")
    env = dict(os.environ)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no notification left behind by the child
    seen, stderr = _on_a_terminal(env)
    assert b"\a" not in seen
    assert "alerts: no sound" not in stderr


# ---------------------------------------------------------------------- sound


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    services.require("pulseaudio")
    with Monitor() as recording:
        yield recording


def test_the_theme_sound_is_heard_and_cancelled_at_once(monitor: Monitor) -> None:
    theme = ThemeSound()
    monitor.wait_quiet()
    theme.play("s1", "alarm-clock-elapsed", "test")  # 6.5 s long
    assert rms(monitor.span(0.2, 1.0)) > 0.01
    theme.stop("s1")
    assert rms(monitor.span(0.3, 1.0)) < 0.001


def test_the_generated_tones_are_heard_and_stopped_within_a_write(monitor: Monitor) -> None:
    tones = ToneSound()
    monitor.wait_quiet()
    tones.play("s1", pcm(HOST_ALARM.tones), "test")  # 0.9 s
    assert rms(monitor.span(0.05, 0.4)) > 0.1
    tones.stop("s1")
    assert rms(monitor.span(0.15, 0.5)) < 0.001
    assert tones.playing() == 0


_WITHOUT_THEME = """
import sys
sys.path.insert(0, {src!r})
from extended_runtime import HapticType
from extended_runtime._backends.linux.alerts import LinuxAlerts
backend = LinuxAlerts()
print(backend.probe().detail, flush=True)
backend.play("org.example.tones", "s1", HapticType.UNDERWATER_DEPTH_PROMPT, False)
print(backend.tones.playing(), flush=True)
input()
backend.dismiss("org.example.tones", "s1")
print(backend.tones.playing(), flush=True)
input()
"""


def test_without_the_theme_the_backend_plays_its_own_tones(
    monitor: Monitor, tmp_path: Path
) -> None:
    """A process that finds no sound theme in any XDG data folder: libcanberra finds nothing
    and the generated tones play. (libcanberra's lookup cache in XDG_CACHE_HOME would still name
    the theme's files, and it is opened once per process: hence a process of its own.)"""
    folders = ("XDG_DATA_DIRS", "XDG_DATA_HOME", "XDG_CACHE_HOME")
    env = {**os.environ, **dict.fromkeys(folders, str(tmp_path))}
    env.pop("DBUS_SESSION_BUS_ADDRESS")
    monitor.wait_quiet()
    with subprocess.Popen(
        [sys.executable, "-c", _WITHOUT_THEME.format(src=str(SRC))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        text=True,
    ) as child:  # fmt: skip
        assert child.stdin is not None and child.stdout is not None
        detail = child.stdout.readline()
        assert "sound (generated tones through the PulseAudio server; libcanberra: no " in detail
        assert child.stdout.readline().strip() == "1"  # one pattern of tones plays
        heard = rms(monitor.span(0.0, 0.2))
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "0"
        after = rms(monitor.span(0.15, 0.3))
        child.communicate("\n", timeout=30)
    assert heard > 0.1
    assert after < 0.001


# ---------------------------------------------------------------------- the whole backend


def test_the_probe_lists_what_works_and_why_the_rest_does_not() -> None:
    services.require("pulseaudio", "notifications")
    probe = LinuxAlerts().probe()
    assert probe.available
    works, _, missing = probe.detail.partition("; missing: ")
    assert works.startswith(
        f"works: sound (the freedesktop sound theme in {theme_folder()} through libcanberra), "
        "notification (dunst "
    )
    assert ", with Stop and Open)" in works
    for part, backend in (("rumble", Rumble()), ("bell", TerminalBell())):
        said = f"{part} ({backend.probe().detail})"
        assert said in (works if backend.probe().available else missing)


def test_with_nothing_reachable_the_probe_fails_and_the_logging_stand_in_is_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/pulse")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    found = survey(everything=True, platform="linux")
    rows = [c for c in found.candidates if c.capability == "alerts"]
    assert [(c.probe.name, c.probe.available, c.chosen) for c in rows] == [
        ("linux-alerts", False, False),
        ("log-alerts", False, True),
    ]
    assert "sound (libcanberra: cannot reach the sound server" in rows[0].probe.detail
    assert "notification (no notification server: cannot reach the session bus" in (
        rows[0].probe.detail
    )


def test_the_linux_backend_is_chosen_where_it_works() -> None:
    services.require("pulseaudio", "notifications")
    found = survey(platform="linux")
    assert found.backends.alerts is not None
    assert found.backends.alerts.name == "linux-alerts"
    assert found.working("alerts")


class TestLinuxAlertsContract(AlertContract):
    """The published alert contract, on the real sound and notification servers."""

    def make_backend(self) -> LinuxAlerts:
        services.require("pulseaudio", "notifications")
        return LinuxAlerts()
