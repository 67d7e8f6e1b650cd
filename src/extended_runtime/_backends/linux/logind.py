"""Keep-awake through systemd-logind: an inhibitor lock, held as a file descriptor.

Theory
------
logind's `Inhibit(what, who, why, mode)` answers with a file descriptor; the lock lives exactly as
long as that descriptor is open in some process. Holding keep-awake is keeping it open, releasing
is closing it, and if the holding process dies the kernel closes it, so a crash never leaves the
machine awake. `ListInhibitors` shows each lock with its `who` and `why`: the host passes the
running sessions' apps and what they are doing, and a new `who` or `why` takes the new lock
before closing the old one, so the machine is never uninhibited in between.

What logind grants depends on who asks. A process in a logind session (or root) may block both
idle and sleep. Without one (a service account, uid `nobody` here) polkit refuses a sleep block
but grants an idle block and a sleep *delay*; the backend then takes both, and its probe says the
machine can still be suspended on purpose, only not on its own idle timer. What is granted is
learnt once, by a trial lock released at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ...abc import KeepAwakeBackend, Probe
from .dbus import Bus, BusUnavailable, CallFailed, method

__all__ = ["LogindInhibitor", "inhibit"]

_LOGIND = ("org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager")
_FULL = (("idle:sleep", "block"),)
_PARTIAL = (("idle", "block"), ("sleep", "delay"))
_REFUSALS = (
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
)


def inhibit(what: str, who: str, why: str, mode: str) -> Any:
    """logind's `Inhibit` call, as a value."""
    return method(*_LOGIND, "Inhibit", "ssss", what, who, why, mode)


def list_inhibitors() -> Any:
    """logind's `ListInhibitors` call, as a value."""
    return method(*_LOGIND, "ListInhibitors")


class LogindInhibitor(KeepAwakeBackend):
    """Idle and system sleep blocked by a logind inhibitor lock while held."""

    name = "logind"
    #: It takes a share of the survey's system bus connection (`bus`).
    system_bus: ClassVar[bool] = True

    def __init__(self, bus: Bus | None = None) -> None:
        self._bus = bus if bus is not None else Bus.system()
        self._grants: tuple[tuple[str, str], ...] | None = None
        self._locks: list[Any] = []  # the file descriptors held
        self._label: tuple[str, str] | None = None

    def probe(self) -> Probe:
        try:
            grants = self._granted()
        except (BusUnavailable, CallFailed, TimeoutError) as error:
            return Probe(self.name, False, f"logind cannot inhibit sleep here: {error}")
        if grants == _FULL:
            return Probe(self.name, True, "logind blocks idle and system sleep while held")
        return Probe(
            self.name,
            True,
            "polkit refused a sleep block (no logind session): idle is blocked and sleep only "
            "delayed; run from a logind session for a full block",
        )

    def hold(self, who: str, why: str) -> None:
        if self._locks and self._label == (who, why):
            return
        locks = [self._inhibit(what, who, why, mode) for what, mode in self._granted()]
        old, self._locks, self._label = self._locks, locks, (who, why)
        _close_all(old)

    def release(self) -> None:
        old, self._locks, self._label = self._locks, [], None
        _close_all(old)

    def close(self) -> None:
        self.release()
        self._bus.close()

    def _inhibit(self, what: str, who: str, why: str, mode: str) -> Any:
        (fd,) = self._bus.call(inhibit(what, who, why, mode))
        return fd

    def _granted(self) -> tuple[tuple[str, str], ...]:
        """What logind grants this process, learnt once by a trial lock."""
        if self._grants is None:
            try:
                trial = [self._inhibit(what, "extended-runtime", "trial", m) for what, m in _FULL]
                self._grants = _FULL
            except CallFailed as error:
                if error.name not in _REFUSALS:
                    raise
                trial = [self._inhibit(w, "extended-runtime", "trial", m) for w, m in _PARTIAL]
                self._grants = _PARTIAL
            _close_all(trial)
        return self._grants


def _close_all(locks: list[Any]) -> None:
    for fd in locks:
        fd.close()
