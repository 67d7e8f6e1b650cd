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
may number in the hundreds of thousands, sit in a heap of their own of small tuples; everything
else (which exists only while sessions run) sits in the main heap.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from enum import IntEnum
from typing import Generic, TypeVar

__all__ = ["TimerKind", "TimerQueue"]

S = TypeVar("S")


class TimerKind(IntEnum):
    """What a timer does; the value is its rank among timers due at the same instant."""

    EXPIRE = 0
    DELEGATE_DEADLINE = 1
    START = 2
    WARN = 3
    ALERT = 4
    CPU_SAMPLE = 5


class TimerQueue(Generic[S]):
    """Two heaps merged in deadline order: scheduled starts, and every other timer."""

    __slots__ = ("_main", "_seq", "_starts")

    def __init__(self) -> None:
        self._main: list[tuple[datetime, int, int, S | None, int]] = []
        self._starts: list[tuple[datetime, int, S]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._main) + len(self._starts)

    def add(self, at: datetime, kind: TimerKind, subject: S | None, gen: int = 0) -> None:
        """Arm a timer of `kind` for `subject` (a session, or `None` for global timers)."""
        self._seq += 1
        if kind is TimerKind.START and subject is not None:
            heapq.heappush(self._starts, (at, self._seq, subject))
        else:
            heapq.heappush(self._main, (at, int(kind), self._seq, subject, gen))

    def peek_start(self) -> tuple[datetime, S] | None:
        """The earliest scheduled start still in the heap (possibly stale)."""
        if not self._starts:
            return None
        at, _, subject = self._starts[0]
        return at, subject

    def drop_start(self) -> None:
        """Remove the earliest scheduled start (after `peek_start` found it stale or used)."""
        heapq.heappop(self._starts)

    def next_deadline(self) -> datetime | None:
        """The earliest deadline of any timer, stale ones included."""
        main = self._main[0][0] if self._main else None
        start = self._starts[0][0] if self._starts else None
        if main is None:
            return start
        if start is None:
            return main
        return min(main, start)

    def pop_due(self, now: datetime) -> tuple[datetime, TimerKind, S | None, int] | None:
        """Remove and return the first timer due at or before `now`, or `None`."""
        main = self._main[0] if self._main else None
        start = self._starts[0] if self._starts else None
        if start is not None and start[0] <= now and (main is None or _start_first(start, main)):
            heapq.heappop(self._starts)
            return start[0], TimerKind.START, start[2], 0
        if main is not None and main[0] <= now:
            heapq.heappop(self._main)
            return main[0], TimerKind(main[1]), main[3], main[4]
        return None


def _start_first(
    start: tuple[datetime, int, S], main: tuple[datetime, int, int, S | None, int]
) -> bool:
    """Whether a start entry comes before a main entry in (deadline, kind, sequence) order."""
    return (start[0], int(TimerKind.START), start[1]) < (main[0], main[1], main[2])
