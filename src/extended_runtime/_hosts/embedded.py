"""The embedded host: the engine inside the app's own process.

Theory
------
Three kinds of thread, each started on first need, none of them holding the host's lock for
more than an engine call:

* the *timer thread* sleeps until the engine's next deadlines through a `Waiter` (`waiting.py`:
  on Linux a timerfd on the wall clock for the next scheduled start and one on BOOTTIME for the
  next timer of a running session, never polling), then calls `engine.advance(now)` and hands
  the outputs on. Every command wakes it, so a new, earlier deadline is armed at once.
  Nothing can end the loop but `close()`: an error in one round is logged and the next round
  goes on;
* the *effect workers* of the `Effects` runner perform keep-awake, alerts, audit records, CPU
  readings and launches, outside the lock, so a hanging backend delays neither timers nor
  commands;
* the *delegate thread* (`Delivery`) runs posted calls one at a time, in order, for sessions not
  created inside a running asyncio loop; the others hear their delegate on their own loop.

Exit and close: at interpreter exit (atexit, within `EXIT_TIMEOUT` seconds) and on `close()`,
every live session ends as DESIGN.md's "process of an embedded host exits" row says, the effects
still pending are performed (keep-awake is released; a scheduled alarm that will not ring is
named in a WARNING), the backends let go of what they hold (bus connections, the sleep delay
lock, the wake alarm's timer) and every posted delegate call is delivered. Because backends tie
their holds to the process (a logind inhibitor is a file descriptor), a process that dies
without exiting releases them too.

Time and its jumps: the engine runs on the wall clock in UTC, where scheduled starts are. Each
round the timer thread sets the wall clock against the elapsed clock (`Clock.elapsed`, BOOTTIME on
Linux, which counts suspended time). While nobody sets the clock the two move together, through a
suspend too; when they move apart by more than `JUMP_TOLERANCE` (or by any amount after the
timerfd reported a set), the wall clock was set, and the engine is told (`Engine.clock_set`):
scheduled starts stay on their wall-clock instants, running budgets keep their length. The
running sessions' timers are slept on BOOTTIME, and when that timer says a deadline came, it is
due even if NTP slewing keeps the wall clock a little behind. So a budget counts elapsed time,
suspended time included, and a start whose instant passed while the machine slept or the process
was stopped fires at once on waking, its lateness in `did_start`'s event and in the log.

A clock a test controls (`extended_runtime.testing.MockClock`) drives this same loop, and
`settle()` waits until everything due has happened, so the production scheduling code is tested
deterministically rather than a copy of it.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

from .._backends.select import Backends, embedded_backends
from .._backends.threads import start_thread
from .._core.clock import Clock, SystemClock
from .._core.engine import Engine
from .._core.metering import CpuReadings
from .._core.policy import Policy
from ..abc import CpuSource
from .base import Host
from .delivery import Delivery
from .waiting import Woke, waiter_for

__all__ = ["EXIT_TIMEOUT", "JUMP_TOLERANCE", "EmbeddedHost"]

log = logging.getLogger("extended_runtime")

#: How long the interpreter's exit may wait for sessions to end and calls to be delivered.
EXIT_TIMEOUT = 2.0
#: How far the wall clock may drift from the elapsed clock between two rounds before it counts
#: as set, when no timerfd said so (NTP slews a clock by at most 0.5 ms a second).
JUMP_TOLERANCE = timedelta(seconds=1)
#: Below this a difference of the two clocks is the noise of reading them one after the other.
_READ_NOISE = timedelta(milliseconds=1)


class EmbeddedHost(Host):
    """An in-process host: sessions run in this process, on the real clock by default.

    `EmbeddedHost(policy=...)` gives sessions other limits, lead times or budgets;
    `host.app(app_id, mode)` makes an app that runs on it. Use it as a context manager, or call
    `close()`, to end its sessions and stop its threads; at interpreter exit that happens by
    itself.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        clock: Clock | None = None,
        backends: Backends | None = None,
        effect_timeout: float = 5.0,
    ) -> None:
        chosen = backends if backends is not None else embedded_backends()
        engine = Engine(policy, cpu=_readings(chosen.cpu))
        super().__init__(engine, chosen, threaded=True, effect_timeout=effect_timeout)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._real = SystemClock()  # bounds real waits (exit, settle) whatever the clock
        self._wakeup = threading.Condition(self._lock)
        self._waiter = waiter_for(self._clock, self._wakeup)
        #: The wall clock and the elapsed clock read together, to tell a set from time passing.
        self._anchor: tuple[datetime, float] | None = None
        self._delivery = Delivery()
        self._timer_thread: threading.Thread | None = None
        #: The deadline the sleeping timer thread will wake at by itself (`None`: awake, or
        #: sleeping with nothing armed). A command that leaves no deadline before it does not
        #: wake the thread (a deadline cancelled costs at most one early wake-up later), so a
        #: burst of commands costs no thread switch each.
        self._armed: datetime | None = None
        self._stopping = False
        atexit.register(self._at_exit)
        self._listen()

    @property
    def now(self) -> datetime:
        """The current instant, from the host's clock."""
        return self._clock.now()

    # ------------------------------------------------------------------ commands and delivery

    def _post(self, at: datetime, call: Callable[[], None], loop: object | None) -> None:
        self._delivery.post(call, loop)

    # ------------------------------------------------------------------ timers

    def _timers_changed(self) -> None:
        if self._closed or self._stopping:
            return
        due = self.engine.next_deadline()
        if self._timer_thread is None and due is not None:
            self._timer_thread = start_thread(self._run_timers, name="xrs-timer")
        armed = self._armed
        if due is None or (armed is not None and due >= armed):
            return  # nothing earlier to arm: the sleeping thread re-arms when it next wakes
        self._waiter.wake()

    def _run_timers(self) -> None:
        with self._wakeup:
            woke = Woke()
            while not self._closed:
                try:
                    woke = self._round(woke)
                except Exception:
                    woke = Woke()
                    log.exception("the timer loop failed in one round; it goes on")
                    self._clock.wait(self._wakeup, 0.05)

    def _round(self, woke: Woke) -> Woke:
        """Fire what is due, or sleep until the next deadlines (called with the lock held)."""
        now = self._clock.now()
        self._notice_clock_set(now, woke.clock_was_set)
        budget, start = self.engine.next_deadlines()
        if woke.budget_due:
            now = _spent(budget, start, now)
        deadline = budget if start is None else start if budget is None else min(budget, start)
        if deadline is not None and deadline <= now:
            self._apply(self.engine.advance(now))
            return Woke()
        if self._idle(deadline, now):
            return Woke()  # time passed meanwhile: look again
        budget_in = None if budget is None else (budget - now).total_seconds()
        self._armed = deadline
        try:
            return self._waiter.sleep(start, budget_in, now)
        finally:
            self._armed = None

    def _idle(self, deadline: datetime | None, now: datetime) -> bool:
        """Called by the timer thread (the lock held) before it sleeps until `deadline`
        (`None`: nothing is due): work that may use the gap; whether it did any."""
        return False

    def _notice_clock_set(self, now: datetime, reported: bool) -> None:
        """Tell the engine if the wall clock was set since the last round, and by how much."""
        elapsed = self._clock.elapsed()
        anchor, self._anchor = self._anchor, (now, elapsed)
        if anchor is None:
            return
        delta = (now - anchor[0]) - timedelta(seconds=elapsed - anchor[1])
        if reported:
            log.debug("the kernel reported a set of the wall clock or a resume: off by %s", delta)
        if abs(delta) < (_READ_NOISE if reported else JUMP_TOLERANCE):
            return
        log.warning(
            "the wall clock was set %s by %s: scheduled starts keep their instants, running "
            "sessions the rest of their budgets",
            "forward" if delta > timedelta(0) else "back",
            abs(delta),
        )
        self._apply(self.engine.clock_set(delta, now))

    # ------------------------------------------------------------------ settling and closing

    def settle(self, timeout: float = 5.0, *, loops: bool = False) -> bool:
        """Wait until everything due by the clock has happened: timers fired, effects performed,
        delegate calls delivered (those of the delegate thread; with `loops`, those posted to
        asyncio loops too, so never from such a loop's own thread). False if `timeout` ran out.

        For tests on a `MockClock`: move the clock, then `settle()`.
        """
        deadline = self._real.monotonic() + timeout
        while (left := deadline - self._real.monotonic()) > 0:
            with self._lock:
                now = self._clock.now()
                self._notice_clock_set(now, False)
                due = self.engine.next_deadline()
                if due is not None and due <= now:
                    self._apply(self.engine.advance(now))
                    continue
            if self._effects.settle(left) and self._delivered(left, loops) and self._quiet():
                return True
        return False

    def _delivered(self, timeout: float, loops: bool) -> bool:
        if not self._delivery.drain(timeout):
            return False
        return not loops or self._delivery.loops_ran(timeout)

    def _quiet(self) -> bool:
        with self._lock:
            due = self.engine.next_deadline()
            nothing_due = due is None or due > self._clock.now()
        return nothing_due and self._effects.settle(0) and self._delivery.idle()

    def close(self, timeout: float = 5.0) -> None:
        """End every live session (their calls delivered), release keep-awake, stop threads."""
        self._shut_down("the host was closed", timeout)
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        self._shut_down("the process exited", EXIT_TIMEOUT)

    def _shut_down(self, message: str, timeout: float) -> None:
        if self._closed:
            return
        deadline = self._real.monotonic() + timeout
        self._stopping = True  # no timer thread starts now: every session is about to end
        try:
            self._stop_engine(message)
        finally:
            with self._lock:
                self._closed = True
                self._waiter.wake()
                self._wakeup.notify_all()
        self._effects.close(max(0.0, deadline - self._real.monotonic()))
        self._delivery.close(max(0.0, deadline - self._real.monotonic()))
        self.backends.close()
        thread = self._timer_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - self._real.monotonic()))
        if thread is None or not thread.is_alive():  # a thread still sleeping keeps its timer
            self._waiter.close()

    def __enter__(self) -> EmbeddedHost:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _spent(budget: datetime | None, start: datetime | None, now: datetime) -> datetime:
    """The instant to advance to once the elapsed clock says the next budget deadline came:
    that deadline, when the wall clock (slewed by NTP) still shows a moment before it, unless
    a scheduled start lies in between (a wall-clock instant must not come early)."""
    if budget is None or budget <= now or (start is not None and start <= budget):
        return now
    return budget


def _readings(cpu: CpuSource | None) -> CpuReadings:
    if cpu is None:
        return CpuReadings.OFF
    return CpuReadings.PUSHED if cpu.reports_changes else CpuReadings.POLLED
