"""Timers as data.

Theory
------
The engine never sleeps and never reads the clock: it keeps its future as a set of timers, each
a deadline plus what to do then, and a host asks `next_deadline()` and calls the engine back
when that instant has come. Timers live in two binary heaps:

* the *main heap* holds every timer of a running session (expiry, warning, alert, relaunch
  deadline) and the global CPU sample, as `[deadline, kind, sequence, subject]` lists. `kind`
  breaks ties between timers due at the same instant, in the order DESIGN.md fixes: ends first
  (expiry, the relaunch deadline), then starts, then warnings, then alerts, then CPU samples, so
  an alert due at the very instant its session expires never plays. `sequence` keeps arming order
  among equals, so entries never compare further. Lists compare in C, which keeps a heap
  operation at a few hundred nanoseconds;
* the *heap of starts* holds the scheduled sessions themselves (`Scheduled`, ordered by start
  date, then arming order): hundreds of thousands may wait, and a waiting alarm then costs one
  list slot instead of an entry of its own.

Cancelling is O(1): `cancel(entry)` replaces the entry's subject with a marker, so a cancelled
timer holds nothing of its session, and counts it dead; a scheduled session that ends before its
date is counted dead with `cancel_start()`. Dead entries are skipped when they come due, and
when a heap holds more dead entries than live ones it is rebuilt without them (the way trio
prunes its deadlines), so memory follows live work: after any number of sessions have come and
gone, the heaps hold only what is still armed. Each rebuild costs at most twice the dead entries
it drops, so pruning adds O(1) per cancel, amortised.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, Generic, TypeVar

__all__ = ["Entry", "Scheduled", "TimerKind", "TimerQueue"]


class TimerKind(IntEnum):
    """What a timer does; the value is its rank among timers due at the same instant."""

    EXPIRE = 0
    DELEGATE_DEADLINE = 1
    START = 2
    WARN = 3
    ALERT = 4
    CPU_SAMPLE = 5


class Scheduled:
    """A subject of scheduled starts: its own entry in the heap of starts.

    `start_date` is the instant its start is armed for and must not change while armed;
    `start_seq` is set by `TimerQueue.add_start` and keeps the order of arming among equal dates.
    Subclasses say whether the start still stands (`awaiting_start`).
    """

    __slots__ = ("start_date", "start_seq")

    def __init__(self) -> None:
        self.start_date: datetime | None = None
        self.start_seq = 0

    def awaiting_start(self) -> bool:
        """Whether this subject's start is still to come (a cancelled one is not)."""
        raise NotImplementedError

    def __lt__(self, other: Scheduled) -> bool:
        """Heap order: start date, then arming order (every armed start has a date)."""
        mine, theirs = self.start_date, other.start_date
        if mine is None or theirs is None or mine == theirs:
            return self.start_seq < other.start_seq
        return mine < theirs


S = TypeVar("S", bound=Scheduled)

#: A main-heap timer, `[deadline, kind, sequence, subject]`; the handle `cancel` takes.
Entry = list[Any]

_CANCELLED = object()  # the subject of a cancelled entry
_START = int(TimerKind.START)


class TimerQueue(Generic[S]):
    """Two heaps merged in deadline order: scheduled starts, and every other timer."""

    __slots__ = ("_dead", "_dead_starts", "_main", "_seq", "_starts")

    def __init__(self) -> None:
        self._main: list[Entry] = []
        self._starts: list[S] = []
        self._seq = 0
        self._dead = 0
        self._dead_starts = 0

    def __len__(self) -> int:
        """Entries held, dead ones included (they are pruned as they accumulate)."""
        return len(self._main) + len(self._starts)

    @property
    def live(self) -> int:
        """Timers still armed."""
        return len(self) - self._dead - self._dead_starts

    def add(self, at: datetime, kind: TimerKind, subject: S | None) -> Entry:
        """Arm a timer of `kind` for `subject` (`None`: a global timer); returns its handle."""
        self._seq += 1
        entry: Entry = [at, int(kind), self._seq, subject]
        heapq.heappush(self._main, entry)
        return entry

    def cancel(self, entry: Entry | None) -> None:
        """Cancel a main-heap timer (no effect if it fired or was cancelled already)."""
        if entry is None or entry[3] is _CANCELLED or entry[2] < 0:
            return
        entry[3] = _CANCELLED
        self._dead += 1
        if self._dead > len(self._main) - self._dead:
            self._main = [e for e in self._main if e[3] is not _CANCELLED]
            heapq.heapify(self._main)
            self._dead = 0

    def shift(self, delta: timedelta) -> None:
        """Move every main-heap timer by `delta`; the starts stay where they are.

        The wall clock was set: a running session's timers measure durations and move with it,
        scheduled starts are wall-clock instants and do not. A uniform shift keeps heap order.
        """
        for entry in self._main:
            entry[0] += delta

    def add_start(self, at: datetime, subject: S) -> None:
        """Arm `subject`'s start at `at` (a subject has at most one start)."""
        self._seq += 1
        subject.start_date = at
        subject.start_seq = self._seq
        heapq.heappush(self._starts, subject)

    def cancel_start(self, subject: S) -> None:
        """`subject` no longer awaits its start: count its entry dead while it is in the heap.

        Call it once `subject.awaiting_start()` is false. A start that fired, or was never armed
        (`start_seq` 0), is not in the heap and needs nothing.
        """
        if subject.start_seq == 0:
            return
        self._dead_starts += 1
        if self._dead_starts > len(self._starts) - self._dead_starts:
            self._starts = [s for s in self._starts if s.awaiting_start()]
            heapq.heapify(self._starts)
            self._dead_starts = 0

    def earliest_start(self) -> S | None:
        """The subject of the earliest start still to come (dead ones on top are dropped)."""
        starts = self._starts
        while starts and not starts[0].awaiting_start():
            heapq.heappop(starts)
            self._dead_starts -= 1
        return starts[0] if starts else None

    def next_deadline(self) -> datetime | None:
        """The earliest deadline of any timer, dead ones included (firing skips them)."""
        # on every round of a host's loop: read the heaps here rather than build a pair
        main: datetime | None = self._main[0][0] if self._main else None
        start = self._starts[0].start_date if self._starts else None
        if main is None:
            return start
        if start is None:
            return main
        return min(main, start)

    def next_deadlines(self) -> tuple[datetime | None, datetime | None]:
        """The earliest deadline of a running session's timers (lengths of time) and the earliest
        scheduled start (a wall-clock instant), dead ones included; a host times them apart."""
        main: datetime | None = self._main[0][0] if self._main else None
        return main, self._starts[0].start_date if self._starts else None

    def pop_due(self, now: datetime) -> tuple[TimerKind, S | None] | None:
        """Remove the first live timer due at or before `now`; `None` when none is due.

        Returns its kind and subject; a START's subject is the scheduled session.
        """
        while True:
            main = self._main[0] if self._main else None
            start = self._starts[0] if self._starts else None
            if start is not None:
                at = start.start_date
                assert at is not None  # `add_start` dated it
                if at <= now and (main is None or [at, _START, start.start_seq] < main[:3]):
                    heapq.heappop(self._starts)
                    if start.awaiting_start():
                        start.start_seq = 0  # out of the heap: nothing left to cancel
                        return TimerKind.START, start
                    self._dead_starts -= 1
                    continue
            if main is None or main[0] > now:
                return None
            heapq.heappop(self._main)
            subject = main[3]
            main[2] = -1  # fired: a later `cancel` of this handle does nothing
            if subject is _CANCELLED:
                self._dead -= 1
                continue
            return TimerKind(main[1]), subject
