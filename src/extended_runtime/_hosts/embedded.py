"""The embedded host: the engine inside the app's own process, on real time.

Theory
------
Two daemon threads, both started on first need:

* the *timer thread* sleeps on a condition variable until the engine's next deadline (at most
  `MAX_WAIT` seconds, so a wall-clock jump is noticed soon), then calls `engine.advance(now)`
  and performs the outputs. Every command notifies the condition, so a new, earlier deadline
  wakes it at once. The condition shares the host's lock, so the engine is only ever touched by
  one thread at a time;
* the *delegate thread* runs posted calls one at a time, in order. A session created while an
  asyncio loop was running has its calls posted to that loop instead
  (`loop.call_soon_threadsafe`), so async apps hear their delegate on their own loop.

Nothing here blocks the caller beyond the lock: `start()` returns as soon as the engine has
decided. Keep-awake is released when the host closes, and, because backends tie their holds to
the process (a logind inhibitor is a file descriptor), when the process dies.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .._backends.select import Backends, embedded_backends
from .._core.clock import Clock, SystemClock
from .._core.engine import Engine
from .._core.policy import Policy
from .base import Host

__all__ = ["MAX_WAIT", "EmbeddedHost"]

log = logging.getLogger("extended_runtime")

#: The longest the timer thread sleeps without looking at the clock again (seconds).
MAX_WAIT = 5.0


class EmbeddedHost(Host):
    """An in-process host on the real clock."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        clock: Clock | None = None,
        backends: Backends | None = None,
    ) -> None:
        chosen = backends if backends is not None else embedded_backends()
        super().__init__(
            Engine(policy),
            alerts=chosen.alerts,
            keep_awake=chosen.keep_awake,
            wake_alarm=chosen.wake_alarm,
            sink=chosen.sink,
            store=chosen.store,
            cpu=chosen.cpu,
        )
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._wakeup = threading.Condition(self._lock)
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._timer_thread: threading.Thread | None = None
        self._delegate_thread: threading.Thread | None = None
        self._closed = False

    @property
    def now(self) -> datetime:
        """The current instant, from the host's clock."""
        return self._clock.now()

    # ------------------------------------------------------------------ delivery

    def _post(self, at: datetime, call: Callable[[], None], loop: object | None) -> None:
        if loop is not None and _post_to_loop(loop, call):
            return
        if self._delegate_thread is None:
            self._delegate_thread = _start("xrs-delegate", self._run_calls)
        self._calls.put(call)

    def _run_calls(self) -> None:
        while (call := self._calls.get()) is not None:
            try:
                call()
            except Exception:
                log.exception("a delegate call failed; the host goes on")

    # ------------------------------------------------------------------ timers

    def _timers_changed(self) -> None:
        if self._timer_thread is None and self.engine.next_deadline() is not None:
            self._timer_thread = _start("xrs-timer", self._run_timers)
        self._wakeup.notify()

    def _run_timers(self) -> None:
        with self._wakeup:
            while not self._closed:
                deadline = self.engine.next_deadline()
                now = self._clock.now()
                if deadline is not None and deadline <= now:
                    self._apply(self.engine.advance(now))
                    continue
                # with nothing due, sleep until a command; else look again at least every
                # MAX_WAIT seconds, so a jump of the wall clock is noticed soon
                wait = None if deadline is None else min(MAX_WAIT, (deadline - now).total_seconds())
                self._wakeup.wait(wait)

    # ------------------------------------------------------------------ life

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads after the calls already posted, and release keep-awake."""
        with self._lock:
            self._closed = True
            self._wakeup.notify()
            if self.engine.keep_awake_held:
                self.keep_awake_backend.release()
        self._calls.put(None)
        for thread in (self._timer_thread, self._delegate_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)


def _start(name: str, target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def _post_to_loop(loop: Any, call: Callable[[], None]) -> bool:
    """Schedule `call` on an asyncio loop; False if the loop is closed."""
    try:
        loop.call_soon_threadsafe(call)
    except RuntimeError:
        return False
    return True
