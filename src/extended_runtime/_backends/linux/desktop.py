"""Keep-awake through the desktop, for when logind will not: the portal, then the screensaver.

Theory
------
Inside a desktop session two session-bus services can keep the machine from idling:

* xdg-desktop-portal's `org.freedesktop.portal.Inhibit.Inhibit(window, flags, options)` with the
  flags for suspend (4) and idle (8). It answers with a request object; calling
  `org.freedesktop.portal.Request.Close` on it ends the inhibition. This is what sandboxed apps
  (Flatpak, Snap) can reach when the system bus is closed to them;
* the older `org.freedesktop.ScreenSaver.Inhibit(application, reason)`, which answers with a
  cookie for `UnInhibit`. It keeps only the screen saver and idle actions away, not a suspend
  asked for on purpose.

Both end with the D-Bus connection that asked, so a holder that dies releases them, as a logind
lock does. A probe asks whether the service is on the session bus now, without inhibiting
anything (a portal may show the user what is inhibited).
"""

from __future__ import annotations

from typing import Any

from ...abc import KeepAwakeBackend, Probe
from .dbus import Bus, BusUnavailable, CallFailed, method

__all__ = ["PortalInhibitor", "ScreenSaverInhibitor"]

_PORTAL = ("org.freedesktop.portal.Desktop", "/org/freedesktop/portal/desktop")
_SCREENSAVER = ("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver")
#: Portal inhibit flags: suspend (4) and idle (8).
_SUSPEND_AND_IDLE = 4 | 8


def _on_bus(bus: Bus, service: str) -> bool:
    (owned,) = bus.call(
        method(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            service,
        )
    )
    return bool(owned)


class _SessionInhibitor(KeepAwakeBackend):
    """What both desktop inhibitors share: a session bus, a probe, one inhibition at a time."""

    service = ""
    what = ""

    def __init__(self, bus: Bus | None = None) -> None:
        self._bus = bus if bus is not None else Bus.session()
        self._token: Any = None
        self._label: tuple[str, str] | None = None

    def probe(self) -> Probe:
        try:
            present = _on_bus(self._bus, self.service)
        except (BusUnavailable, CallFailed, TimeoutError) as error:
            return Probe(self.name, False, f"no session bus to reach {self.service}: {error}")
        if not present:
            return Probe(self.name, False, f"{self.service} is not on the session bus")
        return Probe(self.name, True, f"{self.service} {self.what} while held")

    def hold(self, who: str, why: str) -> None:
        if self._token is not None and self._label == (who, why):
            return
        token = self._inhibit(who, why)
        old, self._token, self._label = self._token, token, (who, why)
        if old is not None:
            self._uninhibit(old)

    def release(self) -> None:
        old, self._token, self._label = self._token, None, None
        if old is not None:
            self._uninhibit(old)

    def close(self) -> None:
        self.release()
        self._bus.close()

    def _inhibit(self, who: str, why: str) -> Any:
        raise NotImplementedError

    def _uninhibit(self, token: Any) -> None:
        raise NotImplementedError


class PortalInhibitor(_SessionInhibitor):
    """Suspend and idle inhibited through xdg-desktop-portal."""

    name = "desktop-portal"
    service = _PORTAL[0]
    what = "keeps the session from idling and suspending"

    def _inhibit(self, who: str, why: str) -> Any:
        options = {"reason": ("s", f"{who}: {why}")}
        call = method(
            *_PORTAL,
            "org.freedesktop.portal.Inhibit",
            "Inhibit",
            "sua{sv}",
            "",
            _SUSPEND_AND_IDLE,
            options,
        )
        (handle,) = self._bus.call(call)
        return handle

    def _uninhibit(self, token: Any) -> None:
        self._bus.call(method(_PORTAL[0], token, "org.freedesktop.portal.Request", "Close"))


class ScreenSaverInhibitor(_SessionInhibitor):
    """Idle inhibited through the desktop's screen saver (a deliberate suspend still happens)."""

    name = "screensaver"
    service = _SCREENSAVER[0]
    what = "keeps the session from idling (not from a suspend asked for)"

    def _inhibit(self, who: str, why: str) -> Any:
        call = method(*_SCREENSAVER, "org.freedesktop.ScreenSaver", "Inhibit", "ss", who, why)
        (cookie,) = self._bus.call(call)
        return cookie

    def _uninhibit(self, token: Any) -> None:
        call = method(*_SCREENSAVER, "org.freedesktop.ScreenSaver", "UnInhibit", "u", token)
        self._bus.call(call)
