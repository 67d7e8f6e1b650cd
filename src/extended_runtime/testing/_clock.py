"""`MockClock`: a clock a test moves by hand, to drive the embedded host's real timer loop.

Theory
------
The embedded host's timer thread sleeps through its clock (`Clock.wait`). On the machine's clock
that is a timed wait; on a `MockClock` it is an untimed wait that ends when a command notifies the
host or when the test moves the clock with `jump()`, which wakes every sleeper to look at the new
time. So the production scheduling code (the loop, its wake-ups, the effect channels, delegate
delivery) runs unchanged while an hour passes in a call, and `EmbeddedHost.settle()` then waits
until everything due at the new instant has happened. (trio's `MockClock` drives its real event
loop the same way.)

`now()`, `monotonic()` and `elapsed()` move together by `jump()` (time passes); `set()` moves the
wall clock alone, as an administrator or NTP setting the clock does, so a test can check that
scheduled instants stay on the wall clock while running budgets keep their length.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from .._core.clock import as_utc, to_seconds

__all__ = ["MockClock"]

_DEFAULT_NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


class MockClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = _DEFAULT_NOW) -> None:
        self._now = as_utc(now, "now")
        self._monotonic = 0.0
        self._lock = threading.Lock()
        self._sleepers: set[threading.Condition] = set()

    def now(self) -> datetime:
        """The clock's instant (aware UTC)."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds jumped so far."""
        with self._lock:
            return self._monotonic

    def elapsed(self) -> float:
        """Seconds jumped so far (a `set` does not move it)."""
        with self._lock:
            return self._monotonic

    def set(self, now: datetime) -> None:
        """Set the wall clock to `now`, as an administrator or NTP may, without time passing:
        `elapsed()` and `monotonic()` stay, and everything sleeping on the clock wakes."""
        instant = as_utc(now, "now")
        with self._lock:
            self._now = instant
        self._wake_sleepers()

    def jump(self, seconds: float | timedelta) -> None:
        """Move the clock forward and wake everything sleeping on it."""
        delta = to_seconds(seconds, "seconds")
        with self._lock:
            self._now += delta
            self._monotonic += delta.total_seconds()
        self._wake_sleepers()

    def _wake_sleepers(self) -> None:
        with self._lock:
            sleepers = list(self._sleepers)
        for condition in sleepers:
            with condition:
                condition.notify_all()

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Sleep on `condition` until it is notified or the clock is moved (not on real time)."""
        with self._lock:
            self._sleepers.add(condition)
        try:
            condition.wait()
        finally:
            with self._lock:
                self._sleepers.discard(condition)
