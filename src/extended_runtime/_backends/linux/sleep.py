"""Suspend and shutdown, as systemd-logind announces them.

Theory
------
logind emits `PrepareForShutdown(true)` when the machine is about to power off or reboot, and
`PrepareForSleep(true)` before it suspends, then waits for every *delay* inhibitor to be
released (at most `InhibitDelayMaxSec`, 5 s by default) before going on. `PrepareForSleep(false)`
comes after the resume; `PrepareForShutdown(false)` when a shutdown was called off (or, where a
shutdown "finishes" without the machine going down, when it is over).

* `LogindShutdown` is a suppression source: `shutting_down` follows `PrepareForShutdown`, so the
  engine ends every session with SUPPRESSED_BY_SYSTEM, and a scheduled session whose date comes
  during the shutdown is suppressed too. The state at `watch` time is logind's
  `PreparingForShutdown` property.
* `LogindSleep` is the sleep source. While it watches it holds a `sleep` delay lock (granted even
  to a process without a logind session; the probe says how long logind waits for one). On
  `PrepareForSleep(true)` it calls `before_sleep` (the host arms its wake alarm for the earliest
  scheduled start, bounded), and only then closes the lock, so the machine never suspends before
  the alarm is armed. On `PrepareForSleep(false)` it takes the lock again, then calls
  `after_wake` (the host fires what came due while asleep).

A failure costs what it must and no more: if logind is gone, the lock cannot be retaken and the
next suspend simply does not wait; the sessions' timers do not depend on logind at all.

Signals come on the bus adapter's receiving thread and are handed to each backend's worker
(`watch.Watch`), which calls the host and takes locks. `LogindShutdown.watch` reports the state
before it returns; `LogindSleep.watch` returns at once and its worker subscribes and takes the
lock first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from jeepney import Message

from ...abc import ConditionsChange, Probe, SleepSource, SuppressionSource
from .dbus import Bus, BusUnavailable, CallFailed
from .logind import inhibit
from .watch import Watch, Watching, get_property, signal_rule

__all__ = ["LogindShutdown", "LogindSleep"]

log = logging.getLogger("extended_runtime.backends")

_SERVICE = "org.freedesktop.login1"
_PATH = "/org/freedesktop/login1"
_MANAGER = "org.freedesktop.login1.Manager"
#: Who and why, as `systemd-inhibit --list` shows the delay lock.
WHO = "extended-runtime"
WHY = "arms the wake alarm of scheduled sessions before the machine sleeps"
_FAILURES = (BusUnavailable, CallFailed, TimeoutError)


class LogindShutdown(Watching, SuppressionSource):
    """`shutting_down` from logind's `PrepareForShutdown`."""

    name = "logind-shutdown"
    #: It takes a share of the survey's system bus connection (`bus`).
    system_bus: ClassVar[bool] = True

    def __init__(self, bus: Bus | None = None) -> None:
        self._watch = Watch(bus, "xrs-logind-shutdown")

    def probe(self) -> Probe:
        try:
            preparing = self._preparing()
        except _FAILURES as error:
            return Probe(self.name, False, f"logind cannot tell of shutdowns here: {error}")
        now = " (one is under way)" if preparing else ""
        return Probe(self.name, True, f"logind tells of shutdowns{now}")

    def watch(self, callback: Callable[[ConditionsChange], None]) -> None:
        """Subscribe, report the state now, then start the worker (signals queue until then)."""
        rule = signal_rule(_MANAGER, "PrepareForShutdown", _PATH)
        try:
            self._watch.subscribe(rule, partial(self._on_signal, callback))
            preparing = self._preparing()
        except _FAILURES as error:
            log.warning("logind did not say whether the machine shuts down: %s", error)
            preparing = False
        callback(_shutting_down(preparing))
        self._watch.start()

    def _on_signal(self, callback: Callable[[ConditionsChange], None], message: Message) -> None:
        (preparing,) = message.body
        self._watch.submit(partial(callback, _shutting_down(bool(preparing))))

    def _preparing(self) -> bool:
        (value,) = self._watch.bus.call(
            get_property(_SERVICE, _PATH, _MANAGER, "PreparingForShutdown")
        )
        return bool(value[1])


class LogindSleep(Watching, SleepSource):
    """Holds logind's `sleep` delay lock, so the host arms its wake alarm before a suspend."""

    name = "logind-sleep"
    #: It takes a share of the survey's system bus connection (`bus`).
    system_bus: ClassVar[bool] = True

    def __init__(self, bus: Bus | None = None) -> None:
        self._watch = Watch(bus, "xrs-logind-sleep")
        self._lock: Any = None  # the delay lock's file descriptor, while held

    def probe(self) -> Probe:
        try:
            (value,) = self._watch.bus.call(
                get_property(_SERVICE, _PATH, _MANAGER, "InhibitDelayMaxUSec")
            )
        except _FAILURES as error:
            return Probe(self.name, False, f"logind cannot tell of sleep here: {error}")
        seconds = value[1] / 1e6
        return Probe(
            self.name,
            True,
            f"a logind sleep delay lock: suspend waits for the wake alarm (at most {seconds:g} s)",
        )

    def watch(self, before_sleep: Callable[[], None], after_wake: Callable[[], None]) -> None:
        """Subscribe and take the lock on the worker (nothing to report at once)."""
        self._watch.submit(partial(self._begin, before_sleep, after_wake))
        self._watch.start()

    def _begin(self, before_sleep: Callable[[], None], after_wake: Callable[[], None]) -> None:
        """Subscribe, then take the lock (on the worker: signals queue behind it)."""
        rule = signal_rule(_MANAGER, "PrepareForSleep", _PATH)
        self._watch.subscribe(rule, partial(self._on_signal, before_sleep, after_wake))
        self._take()

    def close(self) -> None:
        super().close()
        self._release()

    def _on_signal(
        self, before_sleep: Callable[[], None], after_wake: Callable[[], None], message: Message
    ) -> None:
        (going,) = message.body
        job = partial(self._sleeping, before_sleep) if going else partial(self._woke, after_wake)
        self._watch.submit(job)

    def _sleeping(self, before_sleep: Callable[[], None]) -> None:
        try:
            before_sleep()
        finally:
            self._release()

    def _woke(self, after_wake: Callable[[], None]) -> None:
        self._take()
        after_wake()

    def _take(self) -> None:
        if self._lock is not None or self._watch.closed:
            return
        try:
            self._lock = self._inhibit()
        except _FAILURES as error:
            log.warning("could not take logind's sleep delay lock: %s", error)
        if self._watch.closed:  # closed while logind answered
            self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    def _inhibit(self) -> Any:
        (fd,) = self._watch.bus.call(inhibit("sleep", WHO, WHY, "delay"))
        return fd


def _shutting_down(preparing: bool) -> ConditionsChange:
    return partial(replace, shutting_down=preparing)
