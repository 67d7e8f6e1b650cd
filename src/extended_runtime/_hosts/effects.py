"""Running a host's effects: outside its lock, in order, each guarded, never stuck.

Theory
------
The engine decides under the host's lock; everything that touches the world (a sound, a D-Bus
call, a store write, a CPU reading, launching an app) is an *effect* the host hands to this
runner and performs after the lock is released. Effects go to named *channels*, one per
backend kind, and each channel performs its own in the order they were submitted; channels do
not wait for each other, so a sound server that hangs delays later sounds and nothing else.

Two kinds of channel:

* a *queue* keeps every job (alerts, store records, audit events, launches);
* a *latest* channel keeps only the newest value, merged with what is still pending (keep-awake
  and the wake alarm are levels: only the last one matters; CPU readings merge the trees asked
  for, so a burst of session starts costs one reading). A latest channel may also be *spaced*:
  its `spacing(last, new)` says how long after the channel last took a value a new one may be
  taken. A minor value (keep-awake's new label while it stays held, the wake alarm moved later,
  a CPU reading) waits a while, so a burst of starts relabels the inhibitor once, not once per
  start; a keep-awake release waits a moment after its hold, so a burst of short sessions keeps
  one inhibitor rather than taking and dropping one each; a value that matters at once (a hold,
  an earlier alarm) does not wait, nor does anything once the host settles, closes or is told
  the machine suspends (`expedite`). `spaced_by` makes the usual spacing: a fixed time for the
  values a test calls minor.

Every job is guarded. One that raises is reported (`report`), which the host turns into
`Engine.effect_failed`, and the channel goes on. A *latest* job that failed is tried again with
a backoff (1 s, doubling, at most 60 s) while it is still the newest value, so a keep-awake
release that failed once is still released.

Hangs: in threaded mode each channel has a worker thread, and a watchdog abandons a worker whose
job has run longer than `timeout`: the job is reported as timed out and a fresh worker carries on
with the channel. When the abandoned call returns at last, its worker ends, and a *latest*
channel applies its newest value again, so a hold that returned after its release is released.
Backends make this safe by being idempotent (see `abc`).

At interpreter shutdown Python (3.12 and later) refuses to start threads: a channel whose worker
cannot start keeps its jobs, and `settle` and `close` perform them in the calling thread.

In inline mode (the virtual host) jobs run in the caller's thread when the host calls `flush`,
in submission order across channels, which keeps a test deterministic; a raising job is still
reported and skipped.

The runner times jobs on the machine's monotonic clock whatever clock the host runs on: a hang
is a real-time matter.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._backends.threads import start_thread
from .._core.clock import SystemClock

__all__ = ["Effects", "Job", "Spacing", "spaced_by"]

#: How long after the last value a latest channel took it may take `new` (`last`, `new`; s).
Spacing = Callable[[Any, Any], float]


def spaced_by(seconds: float, minor: Callable[[Any, Any], bool] | None = None) -> Spacing:
    """A spacing of `seconds` for the values `minor(last, new)` calls minor (all by default),
    none for the others."""

    def spacing(last: Any, new: Any) -> float:
        return seconds if minor is None or minor(last, new) else 0.0

    return spacing


log = logging.getLogger("extended_runtime")

_RETRY_FIRST = 1.0
_RETRY_MAX = 60.0
_EMPTY: Any = object()  # no value pending (a value may itself be `None`: disarm)


@dataclass(frozen=True, slots=True)
class Job:
    """One effect to perform: what it is, which backend does it, and whom it concerns."""

    effect: str
    backend: str
    run: Callable[[], object]
    app_id: str | None = None
    session_id: str | None = None


#: Told of each failed job: the job, a message, and whether it timed out.
Report = Callable[[Job, str, bool], None]


class _Channel:
    """One backend's effects, performed in order by one worker."""

    __slots__ = (
        "busy_since",
        "current",
        "gen",
        "jobs",
        "last",
        "make",
        "merge",
        "name",
        "not_before",
        "pending",
        "ready",
        "retry",
        "spacing",
        "taken_at",
        "worker",
    )

    def __init__(
        self,
        name: str,
        ready: threading.Condition,
        make: Callable[[Any], Job] | None = None,
        merge: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.name = name
        self.ready = ready  # notified when work arrives
        self.jobs: deque[Job] = deque()
        #: For a latest channel: how a value becomes a job, how two pending values merge.
        self.make = make
        self.merge = merge
        self.pending: Any = _EMPTY
        self.last: Any = _EMPTY  # the newest value taken
        self.retry = 0.0
        self.not_before = 0.0
        #: A value waits until `spacing(last, value)` s after `taken_at`.
        self.spacing: Spacing | None = None
        self.taken_at = 0.0
        self.gen = 0
        self.worker: threading.Thread | None = None
        self.busy_since: float | None = None
        self.current: Job | None = None

    @property
    def latest(self) -> bool:
        return self.make is not None

    def has_work(self) -> bool:
        return bool(self.jobs) or self.pending is not _EMPTY

    def take(self) -> tuple[Job, Any]:
        """The next job, and for a latest channel the value it applies."""
        if self.jobs:
            return self.jobs.popleft(), None
        value, self.pending = self.pending, _EMPTY
        self.last = value
        assert self.make is not None
        return self.make(value), value


class Effects:
    """A host's effect channels (threaded, or inline for a virtual clock)."""

    def __init__(self, report: Report, *, threaded: bool, timeout: float = 5.0) -> None:
        self._report = report
        self._threaded = threaded
        self._timeout = timeout
        self._clock = SystemClock()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # a job finished
        self._busy = threading.Condition(self._lock)  # the watchdog's: a job started
        self._channels: dict[str, _Channel] = {}
        self._inline: deque[_Channel] = deque()
        self._flushing = False
        self._watchdog: threading.Thread | None = None
        self._closed = False
        self._local = threading.local()

    def in_worker(self) -> bool:
        """Whether the calling thread is one of this runner's workers (it must not settle)."""
        return bool(getattr(self._local, "worker", False))

    # ------------------------------------------------------------------ channels

    def queue(self, name: str) -> None:
        """Declare a channel that performs every job submitted to it, in order."""
        self._channels[name] = _Channel(name, threading.Condition(self._lock))

    def latest(
        self,
        name: str,
        make: Callable[[Any], Job],
        merge: Callable[[Any, Any], Any] = lambda old, new: new,
        *,
        spacing: Spacing | None = None,
    ) -> None:
        """Declare a channel that applies only its newest value (`merge`d with a pending one);
        with `spacing`, a value waits `spacing(last, value)` s after the last one was taken."""
        channel = _Channel(name, threading.Condition(self._lock), make, merge)
        channel.spacing = spacing
        self._channels[name] = channel

    def submit(self, name: str, job: Job) -> None:
        """Perform `job` on channel `name` after every job submitted there before it."""
        with self._lock:
            channel = self._channels[name]
            channel.jobs.append(job)
            self._wake(channel)

    def set(self, name: str, value: object) -> None:
        """Apply `value` on latest channel `name` (merged with a value not yet applied)."""
        with self._lock:
            channel = self._channels[name]
            assert channel.merge is not None
            pending = channel.pending
            waiting = pending is not _EMPTY and channel.retry == 0.0 and self._spaced(channel)
            channel.pending = value if pending is _EMPTY else channel.merge(pending, value)
            channel.retry = 0.0
            channel.not_before = 0.0
            if waiting and self._spaced(channel) and channel.worker is not None:
                return  # the worker waits out the spacing already, and takes the newest value
            self._wake(channel)

    def _spaced(self, channel: _Channel) -> bool:
        return self._threaded and self._spaced_until(channel) > self._clock.monotonic()

    def _wake(self, channel: _Channel) -> None:
        if not self._threaded:
            self._inline.append(channel)
        elif channel.worker is None:
            if not self._closed:
                self._start_worker(channel)
        else:
            channel.ready.notify()

    # ------------------------------------------------------------------ inline mode

    def flush(self) -> None:
        """Inline mode: perform what is pending now, in submission order (else nothing)."""
        if not self._inline or self._threaded or self._flushing:
            return
        self._flushing = True
        try:
            while self._inline:
                channel = self._inline.popleft()
                if channel.has_work():
                    job, _ = channel.take()
                    failure = self._guarded(job)
                    if failure is not None:
                        self._report(job, failure, False)
        finally:
            self._flushing = False

    # ------------------------------------------------------------------ threaded mode

    def _start_worker(self, channel: _Channel) -> None:
        channel.gen += 1
        # `None` at interpreter shutdown: jobs run at close
        channel.worker = _started(self._work, f"xrs-{channel.name}", (channel, channel.gen))
        if self._watchdog is None:
            self._watchdog = _started(self._watch, "xrs-watchdog")

    def _work(self, channel: _Channel, gen: int) -> None:
        self._local.worker = True
        while (picked := self._pick(channel, gen)) is not None:
            job, value = picked
            failure = self._guarded(job)
            with self._lock:
                if channel.gen != gen:  # abandoned while it ran: a fresh worker carries on
                    if channel.latest and channel.pending is _EMPTY:
                        channel.pending = channel.last  # apply the newest level again
                        channel.ready.notify()
                    return
                channel.busy_since = channel.current = None
                if failure is not None and channel.latest:
                    self._retry_later(channel, value)
                self._idle.notify_all()
            if failure is not None:
                self._report(job, failure, False)

    def _pick(self, channel: _Channel, gen: int) -> tuple[Job, Any] | None:
        with self._lock:
            while True:
                if channel.gen != gen or (self._closed and not channel.has_work()):
                    return None
                now = self._clock.monotonic()
                wait = max(channel.not_before, self._spaced_until(channel)) - now
                if channel.has_work() and wait <= 0:
                    break
                channel.ready.wait(wait if channel.has_work() else None)
            job, value = channel.take()
            channel.current = job
            channel.busy_since = channel.taken_at = self._clock.monotonic()
            self._busy.notify()
            return job, value

    def expedite(self) -> None:
        """Take every pending value now, spacing or not (the machine is about to suspend)."""
        with self._lock:
            for channel in self._channels.values():
                channel.taken_at = -math.inf
                channel.ready.notify()

    def _spaced_until(self, channel: _Channel) -> float:
        """When the pending value may be taken, as far as spacing goes (0: now); a closing
        runner does not wait."""
        spacing, pending = channel.spacing, channel.pending
        if spacing is None or pending is _EMPTY or channel.last is _EMPTY or self._closed:
            return 0.0
        seconds = spacing(channel.last, pending)
        return channel.taken_at + seconds if seconds > 0 else 0.0

    def _retry_later(self, channel: _Channel, value: object) -> None:
        """A latest job failed: try its value again later, unless a newer one came."""
        if channel.pending is not _EMPTY:
            return
        channel.retry = min(_RETRY_MAX, channel.retry * 2 or _RETRY_FIRST)
        channel.not_before = self._clock.monotonic() + channel.retry
        channel.pending = value

    def _watch(self) -> None:
        """Abandon any job that has run longer than the timeout."""
        with self._lock:
            while not self._closed:
                now = self._clock.monotonic()
                for channel in self._channels.values():
                    since = channel.busy_since
                    if since is not None and now - since >= self._timeout:
                        self._abandon(channel)
                busy = [c.busy_since for c in self._channels.values() if c.busy_since is not None]
                self._busy.wait(min(busy) + self._timeout - now if busy else None)

    def _abandon(self, channel: _Channel) -> None:
        job = channel.current
        channel.busy_since = channel.current = None
        self._start_worker(channel)
        self._idle.notify_all()
        if job is not None:
            message = f"{job.backend} did not return within {self._timeout:g} s"
            log.error("%s: %s; the host goes on without it", job.effect, message)
            _started(self._report, "xrs-report", (job, message, True))

    # ------------------------------------------------------------------ both modes

    def _guarded(self, job: Job) -> str | None:
        """Run a job; the message of its failure, or `None`."""
        try:
            job.run()
        except Exception as error:
            log.error("%s failed in %s: %s", job.effect, job.backend, error, exc_info=True)
            return f"{type(error).__name__}: {error}"
        return None

    def settle(self, timeout: float) -> bool:
        """Wait until every channel is idle (stuck jobs are abandoned); False if time ran out.

        Values waiting out their spacing are taken now; jobs waiting for a retry do not count:
        they are not due yet.
        """
        if not self._threaded:
            self.flush()
            return True
        self.expedite()
        self._run_stranded()
        deadline = self._clock.monotonic() + timeout
        with self._lock:
            while self._working():
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def _working(self) -> bool:
        now = self._clock.monotonic()
        return any(
            c.busy_since is not None or (c.worker and c.has_work() and c.not_before <= now)
            for c in self._channels.values()
        )

    def _run_stranded(self) -> None:
        """Perform, in this thread, the jobs of channels whose worker could not start (at
        interpreter shutdown, Python 3.12 and later refuse new threads)."""
        while True:
            with self._lock:
                stranded = [c for c in self._channels.values() if c.worker is None and c.has_work()]
                if not stranded:
                    return
                job, _ = stranded[0].take()
            failure = self._guarded(job)
            if failure is not None:
                self._report(job, failure, False)

    def close(self, timeout: float) -> None:
        """Finish what is pending (within `timeout`), then stop the workers."""
        self.settle(timeout)
        with self._lock:
            self._closed = True
            for channel in self._channels.values():
                channel.ready.notify_all()
            self._busy.notify_all()


def _started(
    target: Callable[..., object], name: str, args: tuple[Any, ...] = ()
) -> threading.Thread | None:
    """Start a thread; `None` if the interpreter is shutting down and refuses new threads."""
    try:
        return start_thread(target, name=name, args=args)
    except RuntimeError:
        return None
