"""How the embedded host's timer thread sleeps until its next deadline.

Theory
------
The thread holds the host's lock, asks the engine for its next deadline (a wall-clock instant),
and sleeps until then, until a command changes the deadlines (`wake()`), or until the wall clock
is set. It must be early to nothing, late to nothing, and cost nothing while it waits: no polling.

`TimerfdWaiter` (Linux) arms one timerfd on `CLOCK_REALTIME` at the deadline as an absolute time
with cancel-on-set, and waits in `poll` on it and on an eventfd that `wake()` writes:

* the kernel keeps an absolute `REALTIME` expiry on the wall clock, so the timer fires at the
  wall-clock instant however long the machine slept (Python's own timed waits follow the
  monotonic clock, which stops during suspend, and wake late after a resume);
* when anyone sets the clock, and when the machine resumes from suspend, the kernel cancels the
  timer and the wait ends at once (`clock_was_set`): the host then measures the set against its
  elapsed clock (BOOTTIME, which counts suspended time) and moves running budgets by it;
* the timer has nanosecond resolution (`epoll` rounds its timeout up to a millisecond);
* a process stopped past its deadline finds the timer fired when it continues.

One timer serves any number of sessions: it is re-armed at the engine's next deadline each round,
and `wake()` writes the eventfd only while the thread sleeps.

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
from typing import Protocol

from .._core.clock import Clock, SystemClock

__all__ = ["MAX_WAIT", "PollingWaiter", "TimerfdWaiter", "Waiter", "waiter_for"]

log = logging.getLogger("extended_runtime")

#: The longest `PollingWaiter` sleeps on a real clock without looking at it again (seconds).
MAX_WAIT = 5.0


class Waiter(Protocol):
    """Sleeps the timer thread; `sleep` and `wake` are called with the host's lock held."""

    def sleep(self, deadline: datetime | None, now: datetime) -> bool:
        """Release the lock until `deadline` (`None`: no deadline), a `wake()`, or a set of
        the wall clock; True when the clock may have been set (or the machine resumed)."""
        ...

    def wake(self) -> None:
        """End a `sleep` in progress (the deadlines changed, or the host closes)."""
        ...

    def close(self) -> None:
        """Let go of what the waiter holds (after the timer thread has stopped)."""
        ...


def waiter_for(clock: Clock, lock: threading.Condition) -> Waiter:
    """The waiter for `clock`: a timerfd for the machine's clock on Linux, else polling."""
    if type(clock) is SystemClock and sys.platform == "linux":
        try:
            return TimerfdWaiter(lock)
        except OSError as error:  # a kernel without timerfd, or no descriptors left
            log.warning("no timerfd (%s): the timer thread polls every %g s", error, MAX_WAIT)
    return PollingWaiter(clock, lock)


class PollingWaiter:
    """Waits on the host's condition through the clock, at most `MAX_WAIT` s on a real one."""

    def __init__(self, clock: Clock, condition: threading.Condition) -> None:
        self._clock = clock
        self._condition = condition

    def sleep(self, deadline: datetime | None, now: datetime) -> bool:
        wait = None if deadline is None else min(MAX_WAIT, (deadline - now).total_seconds())
        self._clock.wait(self._condition, wait)
        return False

    def wake(self) -> None:
        self._condition.notify_all()

    def close(self) -> None:
        pass


class TimerfdWaiter:
    """One `CLOCK_REALTIME` timerfd (absolute, cancel-on-set) and an eventfd, in `poll`."""

    def __init__(self, lock: threading.Condition) -> None:
        from .._backends.linux.timerfd import ClockId, Timer

        self._lock = lock
        self._timer = Timer(ClockId.REALTIME, nonblocking=True)
        try:
            self._event = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError:
            self._timer.close()
            raise
        self._poll = select.poll()
        self._poll.register(self._timer.fileno(), select.POLLIN)
        self._poll.register(self._event, select.POLLIN)
        self._sleeping = False

    def sleep(self, deadline: datetime | None, now: datetime) -> bool:
        if deadline is None:
            self._timer.disarm()
        else:
            self._timer.set(max(deadline.timestamp(), 1e-9), absolute=True, cancel_on_set=True)
        self._sleeping = True
        self._lock.release()
        try:
            self._poll.poll()
        finally:
            self._lock.acquire()
            self._sleeping = False
        return self._drain()

    def _drain(self) -> bool:
        """Read both descriptors empty; whether the timer says the clock was set."""
        from .._backends.linux.timerfd import ClockWasSet

        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._event)
        try:
            self._timer.read()
        except ClockWasSet:
            return True
        except BlockingIOError:
            pass
        return False

    def wake(self) -> None:
        if self._sleeping:
            os.eventfd_write(self._event, 1)

    def close(self) -> None:
        self._timer.close()
        event, self._event = self._event, -1
        if event >= 0:
            os.close(event)
