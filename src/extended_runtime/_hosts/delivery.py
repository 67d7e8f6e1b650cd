"""Delivering delegate calls: on the session's asyncio loop, else on one thread; none is lost.

Theory
------
DESIGN.md: delegate calls run serially per process, on the asyncio loop that created the session
if one was running, otherwise on one dedicated delegate thread. This module keeps that promise
through the two ways a call can go missing:

* the *delegate thread* is a daemon thread (a hanging delegate must not keep the process alive),
  so the interpreter would kill it at exit with calls still queued. `drain` waits, within a
  bound, until the queue is empty and no call runs, and the embedded host drains at exit and on
  `close()`;
* a call *posted to a loop* that stops or closes before running it would never run. Every call
  posted to a loop is remembered until it runs; calls still waiting on a loop that is not running
  any more are *rescued*: moved, in the order they were posted, to the delegate thread. A new call
  for a closed loop rescues that loop's older calls first, so a session's calls stay in order.

Each call posted to a loop is run at most once: whoever claims it first, the loop or the rescue,
runs it. At interpreter shutdown Python (3.12 and later) refuses new threads; if the delegate
thread has not started by then, `drain` delivers in the calling thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._backends.threads import start_thread
from .._core.clock import SystemClock

__all__ = ["Delivery"]

log = logging.getLogger("extended_runtime")

#: How often `loops_ran` looks again whether a loop it waits for has stopped (seconds).
_RECHECK = 0.05


class _Posted:
    """A call posted to an asyncio loop, until it runs there or is rescued."""

    __slots__ = ("call", "delivery", "loop")

    def __init__(self, call: Callable[[], None], loop: Any, delivery: Delivery) -> None:
        self.call = call
        self.loop = loop
        self.delivery = delivery

    def run(self) -> None:
        """On the loop: run the call unless it was rescued already."""
        if self.delivery._claim(self):
            _guarded(self.call)


class Delivery:
    """Serial delivery of posted calls to loops and to one delegate thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._ran = threading.Condition(self._lock)  # a call posted to a loop ran or moved
        self._queue: deque[Callable[[], None]] = deque()
        self._pending: dict[_Posted, None] = {}  # posted to loops, not run yet, in order
        self._thread: threading.Thread | None = None
        self._busy = False
        self._closed = False
        self._clock = SystemClock()

    def post(self, call: Callable[[], None], loop: object | None) -> None:
        """Run `call` later on `loop` (if it is still open), else on the delegate thread."""
        if loop is not None and self._to_loop(call, loop):
            return
        with self._lock:
            if loop is not None:
                self._rescue(lambda posted: posted.loop is loop)
            self._enqueue(call)

    def _to_loop(self, call: Callable[[], None], loop: Any) -> bool:
        posted = _Posted(call, loop, self)
        with self._lock:
            self._pending[posted] = None
        try:
            if loop.is_closed():
                raise RuntimeError("the loop is closed")
            loop.call_soon_threadsafe(posted.run)
        except RuntimeError:
            with self._lock:
                self._pending.pop(posted, None)
            return False
        return True

    def _claim(self, posted: _Posted) -> bool:
        with self._lock:
            if posted not in self._pending:
                return False
            del self._pending[posted]
            self._ran.notify_all()
            return True

    def _rescue(self, which: Callable[[_Posted], bool]) -> None:
        """Move waiting loop calls chosen by `which` to the delegate thread, in order."""
        for posted in [p for p in self._pending if which(p)]:
            del self._pending[posted]
            self._enqueue(posted.call)

    def _enqueue(self, call: Callable[[], None]) -> None:
        self._queue.append(call)
        if self._thread is not None:
            self._ready.notify()
            return
        try:
            self._thread = start_thread(self._run, name="xrs-delegate")
        except RuntimeError:  # interpreter shutdown: `drain` delivers in the calling thread
            return

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return
                call = self._queue.popleft()
                self._busy = True
            _guarded(call)
            with self._lock:
                self._busy = False
                self._idle.notify_all()

    def idle(self) -> bool:
        """Whether no call waits on the delegate thread or runs there."""
        with self._lock:
            return not self._queue and not self._busy

    def drain(self, timeout: float) -> bool:
        """Rescue calls of loops that stopped, then wait until the thread is idle (bounded)."""
        deadline = self._clock.monotonic() + timeout
        with self._lock:
            self._rescue(lambda posted: not _running(posted.loop))
        if self._thread is None:
            self._deliver_here()
        with self._lock:
            while self._queue or self._busy:
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def loops_ran(self, timeout: float) -> bool:
        """Wait until every call posted to a loop has run there (bounded); calls of loops that
        stop meanwhile are rescued. Never call it from a loop that has calls waiting."""
        deadline = self._clock.monotonic() + timeout
        with self._lock:
            while True:
                self._rescue(lambda posted: not _running(posted.loop))
                if not self._pending:
                    return True
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    return False
                self._ran.wait(min(left, _RECHECK))

    def _deliver_here(self) -> None:
        """No delegate thread could start (interpreter shutdown): deliver in this thread."""
        while True:
            with self._lock:
                if not self._queue:
                    return
                call = self._queue.popleft()
            _guarded(call)

    def close(self, timeout: float) -> None:
        """Deliver what is pending (bounded by `timeout`), then let the thread end."""
        self.drain(timeout)
        with self._lock:
            self._closed = True
            self._ready.notify_all()


def _running(loop: Any) -> bool:
    return bool(not loop.is_closed() and loop.is_running())


def _guarded(call: Callable[[], None]) -> None:
    try:
        call()
    except Exception:
        log.exception("a delegate call failed; the host goes on")
