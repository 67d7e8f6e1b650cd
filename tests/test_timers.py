"""Timers as data: cancelling frees the session at once, and dead entries are pruned.

STYLE.md: stale deadlines are dropped and the heap compacted, so memory follows live work
(trio's `Deadlines` and `_prune`). A cancelled entry keeps no reference to its session, and a
heap is rebuilt once its dead entries outnumber the live ones.
"""

from __future__ import annotations

import gc
from datetime import timedelta

from extended_runtime import SessionType
from extended_runtime._core.engine import Engine
from extended_runtime._core.live import LiveSession
from extended_runtime._core.timers import Scheduled, TimerKind, TimerQueue

from .helpers import T0


class Subject(Scheduled):
    """A subject a test can watch die (`__weakref__`), with a session id of its own."""

    __slots__ = ("__weakref__",)

    _made = 0

    def __init__(self) -> None:
        super().__init__()
        Subject._made += 1
        self.session_id = f"{Subject._made:06d}"


def _at(seconds: float) -> object:
    return T0 + timedelta(seconds=seconds)


def test_a_cancelled_timer_is_skipped_and_holds_nothing() -> None:
    queue: TimerQueue[Subject] = TimerQueue()
    subject = Subject()
    entry = queue.add(T0, TimerKind.EXPIRE, subject)
    other = queue.add(T0, TimerKind.WARN, Subject())
    queue.cancel(entry)
    assert subject not in entry
    assert queue.pop_due(T0) == (TimerKind.WARN, other[3])
    assert queue.pop_due(T0) is None
    assert queue.live == 0


def test_cancelling_a_fired_timer_changes_nothing() -> None:
    queue: TimerQueue[Subject] = TimerQueue()
    entry = queue.add(T0, TimerKind.ALERT, Subject())
    kept = queue.add(T0 + timedelta(seconds=1), TimerKind.ALERT, Subject())
    assert queue.pop_due(T0) is not None
    queue.cancel(entry)
    assert queue.live == 1
    assert queue.pop_due(T0 + timedelta(seconds=1)) == (TimerKind.ALERT, kept[3])


def test_dead_entries_are_pruned_once_they_outnumber_the_live_ones() -> None:
    queue: TimerQueue[Subject] = TimerQueue()
    entries = [
        queue.add(T0 + timedelta(seconds=i), TimerKind.EXPIRE, Subject()) for i in range(100)
    ]
    for entry in entries[:50]:
        queue.cancel(entry)
    assert len(queue) == 100  # half dead: not yet
    queue.cancel(entries[50])
    assert len(queue) == 49 == queue.live
    for entry in entries[51:]:
        queue.cancel(entry)
    assert len(queue) == 0
    assert queue.next_deadline() is None


def test_a_cancelled_start_leaves_the_list_at_once() -> None:
    queue: TimerQueue[Subject] = TimerQueue()
    subjects = [Subject() for _ in range(10)]
    for seconds, subject in enumerate(subjects):
        queue.add_start(T0 + timedelta(seconds=seconds), subject)
    for subject in subjects[:6]:
        queue.cancel_start(subject)
    assert len(queue) == 4 == queue.live
    assert queue.earliest_start() is subjects[6]
    assert queue.pop_due(T0 + timedelta(hours=1)) == (TimerKind.START, subjects[6])


def test_starts_come_in_date_order_then_session_id_order_across_blocks() -> None:
    queue: TimerQueue[Subject] = TimerQueue()
    subjects = [Subject() for _ in range(3_000)]
    dates = [T0 + timedelta(seconds=(n * 7_919) % 1_000) for n in range(len(subjects))]
    for subject, date in zip(reversed(subjects), dates, strict=True):
        queue.add_start(date, subject)
    for subject in subjects[::3]:
        queue.cancel_start(subject)
    expected = sorted(subjects[1::3] + subjects[2::3], key=lambda s: (s.start_date, s.session_id))
    fired = []
    while (due := queue.pop_due(T0 + timedelta(hours=1))) is not None:
        fired.append(due[1])
    assert fired == expected
    assert len(queue) == 0
    assert queue.next_deadline() is None


def test_a_start_that_fired_is_out_of_the_list() -> None:
    queue: TimerQueue[Subject] = TimerQueue()
    fired, waiting = Subject(), Subject()
    queue.add_start(T0, fired)
    queue.add_start(T0 + timedelta(hours=1), waiting)
    assert queue.pop_due(T0) == (TimerKind.START, fired)
    assert queue.live == 1 == len(queue)
    assert queue.next_deadline() == T0 + timedelta(hours=1)


def _census() -> int:
    gc.collect()
    return sum(isinstance(o, LiveSession) for o in gc.get_objects())


def _engine_with(apps: int) -> Engine:
    engine = Engine()
    for number in range(apps):
        engine.register_app(f"org.example.a{number}", SessionType.PHYSICAL_THERAPY)
        engine.register_app(f"org.example.s{number}", SessionType.SMART_ALARM)
    return engine


def test_the_engine_holds_nothing_of_sessions_started_and_invalidated() -> None:
    """1,000 start/invalidate pairs once left 2,001 dead heap entries, each holding a session."""
    engine = _engine_with(10)
    before = _census()
    for number in range(1_000):
        app_id = f"org.example.a{number % 10}"
        engine.start(f"s{number}", app_id, T0)
        engine.invalidate(f"s{number}", app_id, T0)
    assert engine.live_sessions() == 0
    assert engine.timer_entries == 0
    assert engine.next_deadline() is None
    assert _census() == before


def test_the_engine_holds_nothing_of_alarms_scheduled_and_cancelled() -> None:
    engine = _engine_with(10)
    before = _census()
    for number in range(1_000):
        app_id = f"org.example.s{number % 10}"
        engine.start_at(f"s{number}", app_id, T0 + timedelta(hours=1, seconds=number), T0)
        engine.invalidate(f"s{number}", app_id, T0)
    assert engine.live_sessions() == 0
    assert engine.timer_entries == 0
    assert _census() == before


def test_memory_follows_live_sessions_while_others_come_and_go() -> None:
    engine = _engine_with(100)
    for number in range(100):
        engine.start(f"keep{number}", f"org.example.a{number}", T0)
    live = engine.timer_entries  # expiry and warning each, and the CPU sample
    for round_ in range(20):
        for number in range(50):
            app_id = f"org.example.s{number}"
            engine.start_at(f"r{round_}-{number}", app_id, T0 + timedelta(hours=1), T0)
            engine.invalidate(f"r{round_}-{number}", app_id, T0)
    assert engine.live_sessions() == 100
    assert engine.timer_entries <= 2 * live
