"""Alerts on Linux: sound, the desktop notification and haptics, each part where it works.

Theory
------
One `AlertBackend` made of parts, each a module of its own with its own probe:

* **sound** (`sound.py`): the freedesktop sound theme through libcanberra; where the theme or
  libcanberra is missing, or the theme lacks the event, the package's generated tones through
  libpulse-simple;
* **notification** (`notify.py`): one card per session on org.freedesktop.Notifications, with
  Stop and Open; the only part the user can answer, so `listen` goes to it;
* **rumble** (`haptics.py`): force feedback on input devices with `FF_RUMBLE`;
* **bell** (`haptics.py`): `BEL` to the controlling terminal, the last resort, rung only when
  neither sound nor rumble reached the user.

`play` performs the parts in that order, sound first because it is what wakes a sleeper and the
fastest to start. Each part runs guarded: a part that fails (a dead sound server, no
notification server, an unplugged pad) is logged once when it starts failing and once when it
works again, and the other parts still play; `play` and `dismiss` never raise for conditions of
the machine. `dismiss` stops the sound at once, withdraws the notification and stops the rumble.
The probe works if any part does, and its detail lists the parts that work and why the others
do not; `xrs doctor` shows it.

Each haptic type is a distinct pattern (data in `patterns.py`; the README has this table too):

| Haptic | Theme event id | Fallback tones (Hz:ms; 0 Hz rests) | Rumble (strong/weak %:ms; 0/0 rests) |
|---|---|---|---|
| NOTIFICATION | `phone-incoming-call` | 880:120, 0:80, 880:120 | 70/40:150, 0/0:100, 70/40:150 |
| DIRECTION_UP | `device-added` | 523:90, 659:90, 784:140 | 0/40:90, 0/0:40, 30/60:90, 0/0:40, 60/80:140 |
| DIRECTION_DOWN | `device-removed` | 784:90, 659:90, 523:140 | 60/80:90, 0/0:40, 30/60:90, 0/0:40, 0/40:140 |
| SUCCESS | `complete` | 659:100, 988:200 | 40/40:100, 0/0:60, 80/60:200 |
| FAILURE | `suspend-error` | 330:180, 0:60, 220:300 | 90/20:180, 0/0:60, 90/20:300 |
| RETRY | `dialog-warning` | 440:80, 0:80, 440:80, 0:80, 440:80 | 50/50:80, 0/0:80, 50/50:80, 0/0:80, 50/50:80 |
| START | `service-login` | 587:80, 880:200 | 30/60:80, 0/0:50, 70/70:200 |
| STOP | `service-logout` | 880:80, 587:200 | 70/70:80, 0/0:50, 30/60:200 |
| CLICK | `audio-volume-change` | 2000:15 | 0/60:20 |
| NAVIGATION_LEFT_TURN | `bell` | 392:200, 0:80, 392:80 | 80/30:200, 0/0:80, 80/30:80 |
| NAVIGATION_RIGHT_TURN | `message` | 784:80, 0:80, 784:200 | 30/80:80, 0/0:80, 30/80:200 |
| NAVIGATION_GENERIC_MANEUVER | `message-new-instant` | 523:60, 0:60, 523:60 | 50/50:60, 0/0:60, 50/50:60 |
| UNDERWATER_DEPTH_PROMPT | `dialog-information` | 660:300 | 60/60:300 |
| UNDERWATER_DEPTH_CRITICAL_PROMPT | `phone-outgoing-busy` | 1000:100, 750:100, 1000:100, 750:100 | 100/100:100, 0/0:50, 100/100:100, 0/0:50, 100/100:100, 0/0:50, 100/100:100 |
| host alarm (`by_host`) | `alarm-clock-elapsed` | 1046:150, 0:100, 1046:150, 0:100, 1046:150, 0:100, 1046:150 | 100/100:150, 0/0:100, 100/100:150, 0/0:100, 100/100:150, 0/0:100, 100/100:150 |

The terminal bell has no pattern: one `BEL` per alert.
"""  # noqa: E501 (the table's rows)

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..._core.enums import HapticType
from ...abc import AlertBackend, Probe, UserAction
from .dbus import CallFailed
from .haptics import Rumble, TerminalBell
from .notify import DesktopNotifications
from .patterns import HOST_ALARM, PATTERNS, Pattern, pcm
from .sound import SoundFailed, ThemeSound, ToneSound

__all__ = ["LinuxAlerts"]

log = logging.getLogger("extended_runtime.backends")

#: What a part raises when the machine cannot do it (a missing service, device or library).
_MACHINE = (OSError, SoundFailed, CallFailed, ImportError)


class LinuxAlerts(AlertBackend):
    """Sound, notification, rumble and bell: every part that works here."""

    name = "linux-alerts"

    def __init__(
        self,
        *,
        theme: ThemeSound | None = None,
        tones: ToneSound | None = None,
        notifications: DesktopNotifications | None = None,
        rumble: Rumble | None = None,
        bell: TerminalBell | None = None,
    ) -> None:
        self.theme = theme if theme is not None else ThemeSound()
        self.tones = tones if tones is not None else ToneSound()
        self.notifications = notifications if notifications is not None else DesktopNotifications()
        self.rumble = rumble if rumble is not None else Rumble()
        self.bell = bell if bell is not None else TerminalBell()
        self._lock = threading.Lock()
        self._failing: dict[str, str] = {}  # part -> why it failed last

    # ------------------------------------------------------------------ probe

    def probe(self) -> Probe:
        parts = {
            "sound": self._sound_probe(),
            "notification": self.notifications.probe(),
            "rumble": self.rumble.probe(),
            "bell": self.bell.probe(),
        }
        works = [f"{part} ({p.detail})" for part, p in parts.items() if p.available]
        missing = [f"{part} ({p.detail})" for part, p in parts.items() if not p.available]
        detail = "; ".join(
            [f"works: {', '.join(works)}"] * bool(works)
            + [f"missing: {', '.join(missing)}"] * bool(missing)
        )
        return Probe(self.name, bool(works), detail)

    def _sound_probe(self) -> Probe:
        theme = self.theme.probe()
        if theme.available:
            return Probe("sound", True, f"{theme.detail} through libcanberra")
        tones = self.tones.probe()
        if tones.available:
            return Probe("sound", True, f"{tones.detail}; libcanberra: {theme.detail}")
        return Probe("sound", False, f"libcanberra: {theme.detail}; tones: {tones.detail}")

    # ------------------------------------------------------------------ the contract

    def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
        pattern = HOST_ALARM if by_host else PATTERNS[haptic]
        what = f"{'alarm' if by_host else haptic.name.lower()} of {app_id}"
        heard = self._attempt("sound", lambda: self._sound(session_id, pattern, what))
        self._attempt("notification", lambda: self.notifications.show(app_id, session_id, by_host))
        felt = self._attempt("rumble", lambda: self.rumble.play(session_id, pattern.buzzes))
        if not (heard or felt):
            self._attempt("bell", self.bell.ring)

    def dismiss(self, app_id: str, session_id: str) -> None:
        self._attempt("sound", lambda: self._silence(session_id), recovery=False)
        self._attempt(
            "notification", lambda: self.notifications.withdraw(session_id), recovery=False
        )
        self._attempt("rumble", lambda: self.rumble.stop(session_id), recovery=False)

    def listen(self, listener: Callable[[UserAction], None]) -> None:
        self.notifications.listen(listener)

    # ------------------------------------------------------------------ parts

    def _sound(self, key: str, pattern: Pattern, what: str) -> None:
        """The theme's sound, else the generated tones (raises if neither plays)."""
        try:
            self.theme.play(key, pattern.event_id, what)
        except SoundFailed as theme_failed:
            try:
                self.tones.play(key, pcm(pattern.tones), what)
            except SoundFailed as tones_failed:
                raise SoundFailed(f"libcanberra: {theme_failed}; tones: {tones_failed}") from None

    def _silence(self, key: str) -> None:
        self.theme.stop(key)
        self.tones.stop(key)

    def _attempt(self, part: str, action: Callable[[], object], *, recovery: bool = True) -> bool:
        """Run one part, guarded: whether it reached the user (it returned anything but False)."""
        try:
            result = action()
        except _MACHINE as error:
            self._failed(part, str(error) or type(error).__name__)
            return False
        except Exception:
            log.exception("alerts: the %s part failed", part)
            return False
        if recovery:
            self._works(part)
        return result is not False

    def _failed(self, part: str, why: str) -> None:
        with self._lock:
            known, self._failing[part] = self._failing.get(part), why
        if known != why:
            log.warning("alerts: no %s: %s", part, why)

    def _works(self, part: str) -> None:
        with self._lock:
            known = self._failing.pop(part, None)
        if known is not None:
            log.info("alerts: the %s works again", part)
