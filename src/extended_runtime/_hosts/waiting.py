"""How the embedded host's timer thread sleeps until its next deadline.

Theory
------
The thread holds the host's lock, asks the engine for its next deadlines (the next scheduled
start, a wall-clock instant, and the next timer of a running session, a length of time from
now), and sleeps until one comes, until a command changes them (`wake()`), or until the wall
clock is set. It must be early to nothing, late to nothing, and cost nothing while it waits:
no polling.

`TimerfdWaiter` (Linux) arms two timerfds, each for the earliest deadline of its kind, and waits
in `poll` on them and on an eventfd that `wake()` writes:

* scheduled starts are wall-clock instants: a `CLOCK_REALTIME` timer, absolute, with
  cancel-on-set. The kernel keeps its expiry on the wall clock, so it fires at the instant
  however long the machine slept (Python's own timed waits follow the monotonic clock, which
  stops during suspend, and wake late after a resume); when anyone sets the clock, and when the
  machine resumes, the kernel cancels it and the wait ends at once (`clock_was_set`). With no
  start scheduled it waits a year off, so that a set is still heard while sessions run;
* a running session's timers (expiry, warning, alerts) measure lengths of time: a
  `CLOCK_BOOTTIME` timer, armed for the time left (relative), which counts suspended time and
  no set of the clock moves. The host reads both clocks together each round; when this timer
  fires the deadline is due, even if NTP slewing left the wall clock a little behind
  (`budget_due`). It is armed relative, not absolute, because libfaketime, which the tests use
  to move a process's wall clock, shifts absolute timers of every clock by its fake offset;
* both have nanosecond resolution (`epoll` rounds its timeout up to a millisecond), and a
  process stopped past a deadline finds its timer fired when it continues.

Two timers serve any number of sessions: they are re-armed at the engine's next deadlines each
round, and `wake()` writes the eventfd only while the thread sleeps.

`PollingWaiter` is the portable fallback and the waiter of a test's `MockClock`: it waits on the
host's condition through the clock, at most `MAX_WAIT` seconds at a time on a real clock. Its
drift: a scheduled start may fire up to `MAX_WAIT` seconds late after a suspend or a wall-clock
set (the wait follows a clock that stops in suspend, and nothing reports a set), and it wakes
every `MAX_WAIT` seconds while anything is scheduled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
from datetime import datetime
from typing import NamedTuple, Protocol

from .._core.clock import Clock, SystemClock
from ..abc import Probe

__all__ = [
    "MAX_WAIT",
    "PollingWaiter",
    "TimerfdWaiter",
    "Waiter",
    "Woke",
    "probe_timers",
    "waiter_for",
]

log = logging.getLogger("extended_runtime")

#: The longest `PollingWaiter` sleeps on a real clock without looking at it again (seconds).
MAX_WAIT = 5.0
#: Where the wall-clock timer waits when no start is scheduled: far off, and still told of sets.
_FAR_OFF = 365 * 24 * 3600.0


class Woke(NamedTuple):
    """Why a sleep ended, beyond a deadline of the wall clock or a `wake()`."""

    #: The wall clock may have been set, or the machine resumed (the kernel said so).
    clock_was_set: bool = False
    #: The running sessions' timer came due on the elapsed clock.
    budget_due: bool = False


class Waiter(Protocol):
    """Sleeps the timer thread; `sleep` and `wake` are called with the host's lock held."""

    def sleep(self, start: datetime | None, budget_in: float | None, now: datetime) -> Woke:
        """Release the lock until the wall clock reaches `start`, `budget_in` seconds have
        passed on the elapsed clock (`Clock.elapsed`, suspended time included), a `wake()` comes,
        or the wall clock is set (`None`: no such deadline); `now` is the wall clock read last."""
        ...

    def wake(self) -> None:
        """End a `sleep` in progress (the deadlines changed, or the host closes)."""
        ...

    def close(self) -> None:
        """Let go of what the waiter holds (after the timer thread has stopped)."""
        ...


def waiter_for(clock: Clock, lock: threading.Condition) -> Waiter:
    """The waiter for `clock`: timerfds for the machine's clock on Linux, else polling."""
    if type(clock) is SystemClock and sys.platform == "linux":
        try:
            return TimerfdWaiter(lock)
        except OSError as error:  # a kernel without timerfd, or no descriptors left
            log.warning("no timerfd (%s): the timer thread polls every %g s", error, MAX_WAIT)
    return PollingWaiter(clock, lock)


def probe_timers() -> Probe:
    """What the embedded host's timer thread sleeps on here, for `xrs doctor`."""
    if sys.platform == "linux":
        try:
            TimerfdWaiter(threading.Condition()).close()
        except OSError as error:
            why = f"no timerfd ({error})"
        else:
            return Probe(
                "timerfd",
                True,
                "scheduled starts on the wall clock (told of sets and resumes), running sessions "
                "on BOOTTIME (suspended time counts); never polls",
            )
    else:
        why = f"no timerfd on {sys.platform}"
    return Probe(
        "polling",
        True,
        f"{why}: looks at the clock every {MAX_WAIT:g} s; a start may be up to {MAX_WAIT:g} s "
        "late after a suspend or a set of the clock",
    )


class PollingWaiter:
    """Waits on the host's condition through the clock, at most `MAX_WAIT` s on a real one."""

    def __init__(self, clock: Clock, condition: threading.Condition) -> None:
        self._clock = clock
        self._condition = condition

    def sleep(self, start: datetime | None, budget_in: float | None, now: datetime) -> Woke:
        waits = [MAX_WAIT]
        if start is not None:
            waits.append((start - now).total_seconds())
        if budget_in is not None:
            waits.append(budget_in)
        untimed = start is None and budget_in is None
        self._clock.wait(self._condition, None if untimed else max(0.0, min(waits)))
        return _NOTHING

    def wake(self) -> None:
        self._condition.notify_all()

    def close(self) -> None:
        pass


class TimerfdWaiter:
    """A `CLOCK_REALTIME` timerfd (starts), a `CLOCK_BOOTTIME` one (budgets), an eventfd."""

    def __init__(self, lock: threading.Condition) -> None:
        from .._backends.linux.timerfd import ClockId, Timer

        self._lock = lock
        self._starts = Timer(ClockId.REALTIME, nonblocking=True)
        try:
            self._budgets = Timer(ClockId.BOOTTIME, nonblocking=True)
            self._event = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError:
            self.close()
            raise
        self._poll = select.poll()
        for fd in (self._starts.fileno(), self._budgets.fileno(), self._event):
            self._poll.register(fd, select.POLLIN)
        self._sleeping = False

    def sleep(self, start: datetime | None, budget_in: float | None, now: datetime) -> Woke:
        # with no start to wait for, the wall-clock timer still waits, a year off, to hear of sets
        at = now.timestamp() + _FAR_OFF if start is None else start.timestamp()
        self._starts.set(max(at, 1e-9), absolute=True, cancel_on_set=True)
        if budget_in is None:
            self._budgets.disarm()
        else:
            self._budgets.set(max(budget_in, 1e-9))  # 0 would disarm it
        self._sleeping = True
        self._lock.release()
        try:
            self._poll.poll()
        finally:
            self._lock.acquire()
            self._sleeping = False
        return self._drain()

    def _drain(self) -> Woke:
        """Read the descriptors empty: whether the clock was set, whether a budget is due."""
        from .._backends.linux.timerfd import ClockWasSet

        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._event)
        budget_due = False
        with contextlib.suppress(BlockingIOError):
            budget_due = self._budgets.read() > 0
        try:
            self._starts.read()
        except ClockWasSet:
            return Woke(True, budget_due)
        except BlockingIOError:
            pass
        return Woke(False, budget_due)

    def wake(self) -> None:
        if self._sleeping:
            os.eventfd_write(self._event, 1)

    def close(self) -> None:
        self._starts.close()
        budgets = getattr(self, "_budgets", None)
        if budgets is not None:
            budgets.close()
        event, self._event = getattr(self, "_event", -1), -1
        if event >= 0:
            os.close(event)


_NOTHING = Woke()
