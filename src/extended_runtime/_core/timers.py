"""Timers as data.

Theory
------
The engine never sleeps and never reads the clock: it keeps its future as a set of timers, each
a deadline plus what to do then, and a host asks `next_deadline()` and calls the engine back
when that instant has come. Timers live in binary heaps ordered by *(deadline, kind, sequence)*:

* `kind` breaks ties between timers due at the same instant, in the order DESIGN.md fixes:
  ends first (expiry, the relaunch deadline), then starts, then warnings, then alerts, then CPU
  samples. An alert due at the very instant its session expires therefore never plays;
* `sequence` keeps insertion order among equals and means tuples never compare further.

Cancelling is lazy: an entry carries the generation its subject had when it was armed, and
`Engine` drops an entry whose subject has moved on when it comes due. Scheduled starts, which
may number in the hundreds of thousands, sit in a heap of their own in which each subject is its
own entry (a `Scheduled`, ordered by its start date and arming sequence), so a waiting alarm
costs one list slot rather than a tuple as well; everything else (which exists only while
sessions run) sits in the main heap as tuples.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from enum import IntEnum
from typing import Generic, TypeVar

__all__ = ["Scheduled", "TimerKind", "TimerQueue"]


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
    `start_seq` is set by `TimerQueue.add` and keeps the order of arming among equal dates.
    """

    __slots__ = ("start_date", "start_seq")

    def __init__(self) -> None:
        self.start_date: datetime | None = None
        self.start_seq = 0

    def __lt__(self, other: Scheduled) -> bool:
        """Heap order: start date, then arming order (every armed start has a date)."""
        mine, theirs = self.start_date, other.start_date
        if mine is None or theirs is None or mine == theirs:
            return self.start_seq < other.start_seq
        return mine < theirs


S = TypeVar("S", bound=Scheduled)


class TimerQueue(Generic[S]):
    """Two heaps merged in deadline order: scheduled starts, and every other timer."""

    __slots__ = ("_main", "_seq", "_starts")

    def __init__(self) -> None:
        self._main: list[tuple[datetime, int, int, S | None, int]] = []
        self._starts: list[S] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._main) + len(self._starts)

    def add(self, at: datetime, kind: TimerKind, subject: S | None, gen: int = 0) -> None:
        """Arm a timer of `kind` for `subject` (a session, or `None` for global timers).

        A subject takes at most one START timer: its `start_date` becomes `at`.
        """
        self._seq += 1
        if kind is TimerKind.START and subject is not None:
            subject.start_date = at
            subject.start_seq = self._seq
            heapq.heappush(self._starts, subject)
        else:
            heapq.heappush(self._main, (at, int(kind), self._seq, subject, gen))

    def peek_start(self) -> S | None:
        """The subject of the earliest scheduled start still in the heap (possibly stale)."""
        return self._starts[0] if self._starts else None

    def drop_start(self) -> None:
        """Remove the earliest scheduled start (after `peek_start` found it stale or used)."""
        heapq.heappop(self._starts)

    def next_deadline(self) -> datetime | None:
        """The earliest deadline of any timer, stale ones included."""
        main = self._main[0][0] if self._main else None
        start = self._starts[0].start_date if self._starts else None
        if main is None:
            return start
        if start is None:
            return main
        return min(main, start)

    def pop_due(self, now: datetime) -> tuple[datetime, TimerKind, S | None, int] | None:
        """Remove and return the first timer due at or before `now`, or `None`."""
        main = self._main[0] if self._main else None
        if self._starts:
            start = self._starts[0]
            at = start.start_date
            assert at is not None  # `add` dated it
            if at <= now and (main is None or (at, _START, start.start_seq) < main[:3]):
                heapq.heappop(self._starts)
                return at, TimerKind.START, start, 0
        if main is not None and main[0] <= now:
            heapq.heappop(self._main)
            return main[0], TimerKind(main[1]), main[3], main[4]
        return None


_START = int(TimerKind.START)
