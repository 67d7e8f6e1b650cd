"""The engine and late time: a host that slept, or a wall clock that jumped.

These drive the sans-I/O engine directly, as a host does after a suspend: one `advance` with
an instant well past the deadlines that came due meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from extended_runtime import InvalidationReason, SessionType
from extended_runtime._core.engine import Engine
from extended_runtime._core.events import (
    KeepAwake,
    SessionInvalidated,
    SessionStarted,
    SessionWillExpire,
    WakeAlarm,
)

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
START = T0 + timedelta(hours=8)


def _scheduled() -> Engine:
    engine = Engine()
    engine.register_app("org.example.sleep", SessionType.SMART_ALARM)
    outputs = engine.start_at("s1", "org.example.sleep", START, T0)
    assert WakeAlarm(START) in outputs
    return engine


def test_a_start_missed_while_asleep_fires_at_once_with_its_lateness() -> None:
    engine = _scheduled()
    woke = START + timedelta(minutes=10)
    outputs = engine.advance(woke)
    started = [o for o in outputs if isinstance(o, SessionStarted)]
    assert len(started) == 1
    assert started[0].at == woke
    assert started[0].lateness == timedelta(minutes=10)
    # the budget still runs from the requested date
    assert started[0].expiration_date == START + timedelta(minutes=30)
    assert any(isinstance(o, KeepAwake) and o.held for o in outputs)
    assert WakeAlarm(None) in outputs


def test_a_window_that_passed_entirely_while_asleep_starts_warns_and_expires() -> None:
    engine = _scheduled()
    outputs = engine.advance(START + timedelta(hours=2))
    lifecycle = SessionStarted | SessionWillExpire | SessionInvalidated
    kinds = [type(o) for o in outputs if isinstance(o, lifecycle)]
    assert kinds == [SessionStarted, SessionWillExpire, SessionInvalidated]
    ended = outputs[[type(o) for o in outputs].index(SessionInvalidated)]
    assert isinstance(ended, SessionInvalidated)
    assert ended.reason is InvalidationReason.EXPIRED
    assert engine.running_sessions() == {}
    # it never ran long enough to need keep-awake: none was asked for
    assert not any(isinstance(o, KeepAwake) for o in outputs)
    assert not engine.keep_awake_held


def test_a_wall_clock_jumping_back_fires_nothing_early() -> None:
    engine = _scheduled()
    assert engine.advance(T0 - timedelta(hours=5)) == []
    assert engine.next_deadline() == START
    assert engine.scheduled_count() == 1


def test_next_deadline_is_the_earliest_timer() -> None:
    engine = _scheduled()
    engine.register_app("org.example.care", SessionType.SELF_CARE)
    engine.start("s2", "org.example.care", T0)
    # the first CPU sample comes before self care's warning and the alarm's start
    assert engine.next_deadline() == T0 + timedelta(seconds=5)  # the first CPU sample
    engine.advance(T0 + timedelta(seconds=5))
    assert engine.next_deadline() == T0 + timedelta(seconds=10)
