"""Timers as data.

Theory
------
The engine never sleeps and never reads the clock: it keeps its future as a set of timers, each
a deadline plus what to do then, and a host asks `next_deadline()` and calls the engine back
when that instant has come. Timers live in two places:

* the *main heap* holds every timer of a running session (expiry, warning, alert, relaunch
  deadline) and the global CPU sample, as `[deadline, kind, sequence, subject]` lists. `kind`
  breaks ties between timers due at the same instant, in the order DESIGN.md fixes: ends first
  (expiry, the relaunch deadline), then starts, then warnings, then alerts, then CPU samples, so
  an alert due at the very instant its session expires never plays. `sequence` keeps arming order
  among equals, so entries never compare further. Lists compare in C, which keeps a heap
  operation at a few hundred nanoseconds;
* the *list of starts* holds the subjects of scheduled starts themselves (`Scheduled`: the app
  records that carry a waiting session), in start-date order, equal dates in session-id order (ids
  are unique among live sessions): hundreds of thousands may wait, and a waiting alarm then costs
  one list slot instead of an entry of its own. It is a sorted list cut into blocks of a few hundred
  subjects (as `sortedcontainers` does): a subject is found by bisection, so a start is removed the
  moment it is cancelled and the list never holds a dead one. A heap could not do that, and it could
  not keep a dead entry either: the subject is the app, whose next start would move the dead entry's
  key under the heap. Adding or removing a start bisects twice and moves at most a block's worth of
  pointers; comparisons use a key read in C (`attrgetter`), never a Python `__lt__`.

Cancelling a main-heap timer is O(1): `cancel(entry)` replaces the entry's subject with a marker,
so a cancelled timer holds nothing of its session, and counts it dead. Dead entries are skipped
when they come due, and when the heap holds more dead entries than live ones it is rebuilt
without them (the way trio prunes its deadlines), so memory follows live work: after any number
of sessions have come and gone, the heap and the list hold only what is still armed. Each
rebuild costs at most twice the dead entries it drops, so pruning adds O(1) per cancel,
amortised.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import IntEnum
from operator import attrgetter
from typing import Any, Generic, TypeVar

__all__ = ["Entry", "Scheduled", "StartList", "TimerKind", "TimerQueue"]


class TimerKind(IntEnum):
    """What a timer does; the value is its rank among timers due at the same instant."""

    EXPIRE = 0
    DELEGATE_DEADLINE = 1
    START = 2
    WARN = 3
    ALERT = 4
    CPU_SAMPLE = 5


class Scheduled:
    """A subject of scheduled starts: its own entry in the list of starts.

    `session_id` is the session that waits, and `start_date` the instant its start is armed for
    (`None`: not armed); neither may change while the start is armed, and no two armed subjects
    may have the same `session_id`.
    """

    __slots__ = ("session_id", "start_date")

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.start_date: datetime | None = None


S = TypeVar("S")  # the subject of a main-heap timer
W = TypeVar("W", bound=Scheduled)

#: A main-heap timer, `[deadline, kind, sequence, subject]`; the handle `cancel` takes.
Entry = list[Any]

_CANCELLED = object()  # the subject of a cancelled entry
_START = int(TimerKind.START)
_BLOCK = 512  # a block of the list of starts is split in two when it grows past twice this
_start_key = attrgetter("start_date", "session_id")  # list order, read in C


def _last_key(block: list[Any]) -> Any:
    return _start_key(block[-1])


class StartList(Generic[W]):
    """Armed subjects in start order: a sorted list cut into blocks, each non-empty."""

    __slots__ = ("_blocks", "_count")

    def __init__(self) -> None:
        self._blocks: list[list[W]] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def first(self) -> W | None:
        """The subject whose start comes first."""
        return self._blocks[0][0] if self._blocks else None

    def add(self, subject: W) -> None:
        """Insert `subject` at its place (its `start_date` is set)."""
        blocks = self._blocks
        self._count += 1
        if not blocks:
            blocks.append([subject])
            return
        key = _start_key(subject)
        at = min(bisect_left(blocks, key, key=_last_key), len(blocks) - 1)
        block = blocks[at]
        insort(block, subject, key=_start_key)
        if len(block) > 2 * _BLOCK:
            blocks[at : at + 1] = [block[:_BLOCK], block[_BLOCK:]]

    def extend(self, subjects: Iterable[W]) -> None:
        """Insert many subjects: one sort of them all rather than a search each."""
        added = list(subjects)
        if not added:
            return
        every = [subject for block in self._blocks for subject in block]
        every.extend(added)
        every.sort(key=_start_key)
        self._blocks = [every[at : at + _BLOCK] for at in range(0, len(every), _BLOCK)]
        self._count = len(every)

    def remove(self, subject: W) -> None:
        """Take out `subject`, which must be in the list with the date it was added with."""
        blocks = self._blocks
        key = _start_key(subject)
        at = bisect_left(blocks, key, key=_last_key)
        block = blocks[at]
        index = bisect_left(block, key, key=_start_key)
        assert block[index] is subject, "a start is removed once, with the date it was armed for"
        self._drop(at, index)

    def pop_first(self) -> W:
        """Take out and return the subject whose start comes first."""
        subject = self._blocks[0][0]
        self._drop(0, 0)
        return subject

    def _drop(self, at: int, index: int) -> None:
        block = self._blocks[at]
        del block[index]
        self._count -= 1
        if not block:
            del self._blocks[at]


class TimerQueue(Generic[S]):
    """The heap of timers and the list of starts, merged in deadline order."""

    __slots__ = ("_dead", "_main", "_seq", "_starts")

    def __init__(self) -> None:
        self._main: list[Entry] = []
        self._starts: StartList[Scheduled] = StartList()
        self._seq = 0
        self._dead = 0

    def __len__(self) -> int:
        """Entries held, dead ones included (they are pruned as they accumulate)."""
        return len(self._main) + len(self._starts)

    @property
    def live(self) -> int:
        """Timers still armed."""
        return len(self) - self._dead

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

    def add_start(self, at: datetime, subject: Scheduled) -> None:
        """Arm `subject`'s start at `at` (a subject has at most one start armed)."""
        subject.start_date = at
        self._starts.add(subject)

    def add_starts(self, subjects: Iterable[Scheduled]) -> None:
        """Arm the starts of many subjects at once (each has its `start_date` set)."""
        self._starts.extend(subjects)

    def cancel_start(self, subject: Scheduled) -> None:
        """Disarm `subject`'s armed start (its `start_date` still the one it was armed for)."""
        self._starts.remove(subject)

    def earliest_start(self) -> Scheduled | None:
        """The subject of the earliest start still to come."""
        return self._starts.first()

    def next_deadline(self) -> datetime | None:
        """The earliest deadline of any timer, dead ones included (firing skips them)."""
        # on every round of a host's loop: read the heap and the list here rather than build a pair
        main: datetime | None = self._main[0][0] if self._main else None
        blocks = self._starts._blocks  # the first start, read here: this runs on every round
        start = blocks[0][0].start_date if blocks else None
        if main is None:
            return start
        if start is None:
            return main
        return min(main, start)

    def next_deadlines(self) -> tuple[datetime | None, datetime | None]:
        """The earliest deadline of a running session's timers (lengths of time) and the earliest
        scheduled start (a wall-clock instant), dead ones included; a host times them apart."""
        main: datetime | None = self._main[0][0] if self._main else None
        first = self._starts.first()
        return main, None if first is None else first.start_date

    def pop_due(self, now: datetime) -> tuple[TimerKind, S | Scheduled | None] | None:
        """Remove the first live timer due at or before `now`; `None` when none is due.

        Returns its kind and subject; a START's subject is the `Scheduled` whose start it is,
        taken out of the list with its `start_date` still set.
        """
        blocks = self._starts._blocks  # read here, not through `first()`: a hot path
        while True:
            main = self._main[0] if self._main else None
            start = blocks[0][0] if blocks else None
            if start is not None:
                at = start.start_date
                assert at is not None  # `add_start` dated it
                if at <= now and (main is None or [at, _START] < main[:2]):
                    return TimerKind.START, self._starts.pop_first()
            if main is None or main[0] > now:
                return None
            heapq.heappop(self._main)
            subject = main[3]
            main[2] = -1  # fired: a later `cancel` of this handle does nothing
            if subject is _CANCELLED:
                self._dead -= 1
                continue
            return TimerKind(main[1]), subject
