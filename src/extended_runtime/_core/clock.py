"""The one place that reads the time.

Theory: every other module takes `now` as an argument or a `Clock` object, so the engine and the
hosts can run on real time, on a virtual clock (`extended_runtime.testing.VirtualHost`), or on a
clock a test controls (`extended_runtime.testing.MockClock`, which drives the embedded host's
real timer loop: the loop sleeps through `Clock.wait`, so moving a mock clock wakes it), without
patching. A test in the suite fails if `time.time`,
`time.monotonic`, `time.sleep` or `datetime.now` appear anywhere else in the package.

Inside the system every instant is an *aware* `datetime` in UTC. `as_utc` is the gate at the
public boundary: it refuses naive datetimes and non-datetimes with a message that says what to
pass instead, and converts any other time zone to UTC, so a time-zone change never moves a
scheduled instant.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SystemClock", "as_utc", "to_seconds"]

#: The clock of `SystemClock.elapsed`: Linux's BOOTTIME counts suspended time; elsewhere the
#: monotonic clock stands in (macOS's counts suspended time too; others may stop during it).
_ELAPSED: int = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class Clock(Protocol):
    """A source of time: wall-clock instants in UTC and a monotonic reading for durations."""

    def now(self) -> datetime:
        """The current wall-clock instant, aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; only differences mean anything."""
        ...

    def elapsed(self) -> float:
        """Seconds on a clock that never jumps and counts time the machine spent suspended;
        only differences mean anything. Set against `now()`, it tells a wall-clock set (the
        two move apart) from a suspend (both move on together)."""
        ...

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Sleep on `condition` (its lock held) until notified, or `timeout` seconds pass on
        this clock (`None`: until notified)."""


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def elapsed(self) -> float:
        return time.clock_gettime(_ELAPSED)

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        condition.wait(timeout)

    def sleep(self, seconds: float) -> None:
        """Block the calling thread; for command-line waits, never inside the engine."""
        time.sleep(max(0.0, seconds))


def as_utc(value: object, name: str = "when") -> datetime:
    """Return `value` as an aware UTC datetime, or raise a clear error.

    Raises `TypeError` for a non-datetime and `ValueError` for a naive datetime.
    """
    if not isinstance(value, datetime):
        raise TypeError(
            f"{name} must be a datetime with a time zone, not {type(value).__name__}: "
            f"pass e.g. datetime(2026, 1, 5, 6, 30, tzinfo=timezone.utc)"
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"{name} is a naive datetime ({value.isoformat()}): attach a time zone, "
            f"e.g. {name}.replace(tzinfo=timezone.utc) or {name}.astimezone()"
        )
    return value.astimezone(UTC)


def to_seconds(value: object, name: str = "seconds") -> timedelta:
    """Return a non-negative duration from seconds or a `timedelta`, or raise a clear error."""
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        delta = timedelta(seconds=value)
    else:
        raise TypeError(f"{name} must be a number of seconds or a timedelta, not {value!r}")
    if delta < timedelta(0):
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return delta
