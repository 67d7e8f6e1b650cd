"""CPU metering: the sub-machine that holds running sessions to their type's CPU budget.

Theory
------
DESIGN.md's rule: the CPU seconds used by the app's process tree in the last `cpu_window`,
divided by the window, strictly above the type's budget, end the session with
EXCEEDED_RESOURCE_LIMITS; time before the session started counts as zero.

Readings are per *process tree*, not per app: several apps may share one tree (every app of an
embedded host lives in the host's own process), and one reading then serves all of them. For a
tree the meter keeps a window of readings `(instant, cpu_seconds)`, a counter that only grows.
A session's average is `(C(now) - max(C(window start), baseline)) / window`, where `baseline`
is the tree's reading when the session started; so the full-window average
`(C(now) - C(window start)) / window` bounds every session of the tree from above, and only when
it exceeds the smallest budget does the meter look at sessions one by one. A reading that has not
moved since the last one checked cannot push any average up, and costs a comparison.

Sampling follows the source of readings (`CpuReadings`):

* POLLED (a real process tree, read with psutil): while any metered session runs, the meter asks
  for a reading of its trees every `cpu_sample_interval` (`SampleCpu`), plus one when a session
  starts, for its baseline. Hosts coalesce these, so a burst of starts costs one reading;
* PUSHED (a source that announces when a tree's load changes, such as the virtual host's): a tree
  is *hot* from an announced change (`changed`) until a reading shows it has stopped moving, and
  only hot trees are sampled. A session that starts on a tree never announced gets no record at
  all until the first change enrols it. An idle app costs nothing per sample, nor per start:
  cost follows events, not running sessions times time;
* OFF: no source; nothing is metered.

Sessions whose budget is infinite (`Policy` with `math.inf`) are not metered at all.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta
from enum import Enum

from .enums import SessionType
from .events import SampleCpu
from .live import LiveSession
from .policy import Policy
from .timers import Entry, TimerKind, TimerQueue

__all__ = ["CpuMeter", "CpuReadings"]


class CpuReadings(Enum):
    """How a host obtains CPU readings (see the module docstring)."""

    POLLED = "polled"
    PUSHED = "pushed"
    OFF = "off"


class _Tree:
    """One process tree: its window of readings and the metered sessions it serves."""

    __slots__ = ("checked", "hot", "last", "pending", "samples", "sessions")

    def __init__(self) -> None:
        self.samples: deque[tuple[datetime, float]] = deque()
        self.last: float | None = None
        #: The last reading checked against the budgets, and when it was taken.
        self.checked: tuple[datetime, float] | None = None
        self.sessions: dict[str, LiveSession] = {}
        self.pending: list[LiveSession] = []  # started, baseline not read yet
        self.hot = False


class CpuMeter:
    """Every metered running session, grouped by process tree."""

    __slots__ = (
        "_budgets",
        "_interval",
        "_min_budget",
        "_readings",
        "_sampled",
        "_seconds",
        "_tick",
        "_timers",
        "_trees",
        "_window",
    )

    def __init__(
        self, policy: Policy, timers: TimerQueue[LiveSession], readings: CpuReadings
    ) -> None:
        self._timers = timers
        self._readings = readings
        self._window = policy.cpu_window
        self._seconds = policy.cpu_window.total_seconds()
        self._interval = policy.cpu_sample_interval
        self._budgets = {kind: policy.cpu_budget(kind) for kind in SessionType}
        self._min_budget = min(self._budgets.values())
        self._trees: dict[str, _Tree] = {}
        self._sampled: dict[str, _Tree] = {}  # trees read at every tick
        self._tick: Entry | None = None

    def shift(self, delta: timedelta) -> None:
        """The wall clock was set by `delta`: move the instants of the readings with it, so the
        window keeps covering the same stretch of real time."""
        for tree in self._trees.values():
            tree.samples = deque((at + delta, value) for at, value in tree.samples)
            if tree.checked is not None:
                tree.checked = (tree.checked[0] + delta, tree.checked[1])

    def start(self, session: LiveSession, now: datetime) -> SampleCpu | None:
        """Meter a session that now runs in its app's current process; maybe read its tree."""
        if self._readings is CpuReadings.OFF or math.isinf(self._budgets[session.type]):
            return None
        key = session.app.tree
        tree = self._trees.get(key)
        if tree is None and self._readings is CpuReadings.PUSHED:
            return None  # a still tree with no record: `changed` enrols its sessions
        if tree is None:
            tree = self._trees[key] = _Tree()
        tree.sessions[session.id] = session
        run = session.started
        if self._readings is CpuReadings.PUSHED and not tree.hot:
            run.cpu_baseline = tree.last  # still; `None` is settled by the next change
            if run.cpu_baseline is None:
                tree.pending.append(session)
            return None
        run.cpu_baseline = None
        tree.pending.append(session)
        self._sample(key, tree, now)
        return SampleCpu((key,))

    def stop(self, session: LiveSession) -> None:
        """The session ended, or its process exited: stop metering it."""
        key = session.app.tree
        tree = self._trees.get(key)
        if tree is None or tree.sessions.pop(session.id, None) is None:
            return
        if session in tree.pending:
            tree.pending.remove(session)
        if not tree.sessions:
            self._unsample(key)
            if not tree.hot or self._readings is CpuReadings.POLLED:
                del self._trees[key]

    def changed(
        self, key: str, cpu_seconds: float, now: datetime, running: list[LiveSession]
    ) -> None:
        """A PUSHED source says the tree's load changes now; `cpu_seconds` is its total so far.

        `running` are the metered-to-be sessions of the tree: those that started while it was
        still and had no record are enrolled, with this reading as their baseline (a still tree
        used nothing between their start and now)."""
        tree = self._trees.get(key)
        if tree is None:
            tree = self._trees[key] = _Tree()
        for session in running:
            if session.id not in tree.sessions and not math.isinf(self._budgets[session.type]):
                tree.sessions[session.id] = session
                session.started.cpu_baseline = cpu_seconds
        self._settle(tree, cpu_seconds)
        self._record(tree, cpu_seconds, now)
        tree.hot = True
        if tree.sessions:
            self._sample(key, tree, now)

    def due(self, now: datetime) -> SampleCpu | None:
        """The sample tick came: read every sampled tree, and tick again."""
        self._tick = None
        if not self._sampled:
            return None
        self._arm(now)
        return SampleCpu(tuple(self._sampled))

    def observe(self, readings: dict[str, float], now: datetime) -> list[LiveSession]:
        """Readings arrived: the sessions now over their budget (to end)."""
        over: list[LiveSession] = []
        for key, cpu_seconds in readings.items():
            tree = self._trees.get(key)
            if tree is not None and tree.sessions:
                over.extend(self._observe(key, tree, cpu_seconds, now))
        return over

    def _observe(self, key: str, tree: _Tree, value: float, now: datetime) -> list[LiveSession]:
        self._settle(tree, value)
        # still: the reading checked last, some time later (at the same instant it says
        # nothing); no average can have risen since that check
        checked, tree.checked = tree.checked, (now, value)
        still = checked is not None and value == checked[1] and now > checked[0]
        self._record(tree, value, now)
        if still:
            if self._readings is CpuReadings.PUSHED:
                tree.hot = False
                self._unsample(key)
            return []
        start = tree.samples[0][1]
        if (value - start) / self._seconds <= self._min_budget:
            return []
        return [
            s for s in tree.sessions.values() if self._average(s, start, value) > self._budget(s)
        ]

    def _record(self, tree: _Tree, value: float, now: datetime) -> None:
        """Add a reading and drop those before the window (keeping one at or before its start)."""
        tree.last = value
        samples = tree.samples
        samples.append((now, value))
        horizon = now - self._window
        while len(samples) > 1 and samples[1][0] <= horizon:
            samples.popleft()

    def _average(self, session: LiveSession, start: float, value: float) -> float:
        baseline = session.started.cpu_baseline
        return (value - max(start, value if baseline is None else baseline)) / self._seconds

    def _budget(self, session: LiveSession) -> float:
        return self._budgets[session.type]

    def _settle(self, tree: _Tree, value: float) -> None:
        """Sessions waiting for a baseline take this reading (they started just before it)."""
        for session in tree.pending:
            session.started.cpu_baseline = value
        tree.pending.clear()

    def _sample(self, key: str, tree: _Tree, now: datetime) -> None:
        self._sampled[key] = tree
        if self._tick is None:
            self._arm(now)

    def _unsample(self, key: str) -> None:
        self._sampled.pop(key, None)
        if not self._sampled and self._tick is not None:
            self._timers.cancel(self._tick)
            self._tick = None

    def _arm(self, now: datetime) -> None:
        self._tick = self._timers.add(now + self._interval, TimerKind.CPU_SAMPLE, None)
