"""A wall clock that is set: scheduled starts keep their instants, running budgets their length.

DESIGN.md row "36 h and time": the scheduled instant is on the wall clock in UTC and a jump is
noticed at once; a session's budget counts real elapsed time. The embedded host's real timer loop
runs here on a `MockClock`, whose `set()` moves the wall clock without time passing (as an
administrator or NTP does) and whose `jump()` lets time pass; the engine's part is checked
directly too. `test_real_time.py` does the same on the machine's clock in real processes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from extended_runtime import (
    EmbeddedHost,
    ExtendedRuntimeSession,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime._backends.memory import MemoryEventSink
from extended_runtime._backends.select import Backends
from extended_runtime._core.engine import Engine
from extended_runtime._core.events import (
    ExpirationMoved,
    KeepAwake,
    SessionInvalidated,
    SessionStarted,
    SessionWillExpire,
)
from extended_runtime.testing import MockClock

from .helpers import LOGGER, T0, Recorder

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> MockClock:
    return MockClock(T0)


@pytest.fixture
def sink() -> MemoryEventSink:
    return MemoryEventSink()


@pytest.fixture
def host(clock: MockClock, sink: MemoryEventSink) -> Iterator[EmbeddedHost]:
    embedded = EmbeddedHost(clock=clock, backends=Backends(sink=sink, cpu=None))
    yield embedded
    embedded.close()


def _last_start(sink: MemoryEventSink) -> SessionStarted:
    return [e for e in sink.events if isinstance(e, SessionStarted)][-1]


def _mindful_and_alarm(
    host: EmbeddedHost,
) -> tuple[ExtendedRuntimeSession, Recorder, ExtendedRuntimeSession, Recorder]:
    mindful_calls, alarm_calls = Recorder(host), Recorder(host)
    mindful = ExtendedRuntimeSession(
        host.app("org.example.breathe", SessionType.MINDFULNESS), mindful_calls
    )
    alarm = ExtendedRuntimeSession(
        host.app("org.example.wake", SessionType.SMART_ALARM), alarm_calls
    )
    mindful.start()
    alarm.start_at(T0 + 30 * MINUTE)
    assert host.settle()
    return mindful, mindful_calls, alarm, alarm_calls


def test_a_forward_set_starts_a_passed_alarm_at_once_and_keeps_the_running_budget(
    host: EmbeddedHost, clock: MockClock, sink: MemoryEventSink, caplog: pytest.LogCaptureFixture
) -> None:
    mindful, mindful_calls, alarm, alarm_calls = _mindful_and_alarm(host)
    clock.jump(10 * MINUTE)
    with caplog.at_level(logging.WARNING, LOGGER):
        clock.set(T0 + 40 * MINUTE)  # no time passes; the wall clock shows 30 minutes more
        assert host.settle()
    # the alarm's wall-clock instant (06:30) has passed: it starts now, 10 minutes late, and
    # its budget runs from its instant, as after a sleep
    assert alarm.state is SessionState.RUNNING
    assert alarm_calls.names == ["did_start"]
    started = _last_start(sink)
    assert (started.at, started.lateness) == (T0 + 40 * MINUTE, 10 * MINUTE)
    assert alarm.expiration_date == T0 + HOUR
    # the mindfulness session has used 10 of its 60 minutes: 50 are left, on the new clock
    assert mindful.state is SessionState.RUNNING
    assert mindful.expiration_date == T0 + 90 * MINUTE
    messages = [r.getMessage() for r in caplog.records]
    assert any("set forward by 0:30:00" in m for m in messages), messages
    assert any("started 0:10:00 late" in m for m in messages), messages
    clock.jump(49 * MINUTE)
    assert host.settle()
    assert mindful_calls.names == ["did_start", "will_expire"]
    clock.jump(MINUTE)
    assert host.settle()
    assert mindful_calls.names == ["did_start", "will_expire", "did_invalidate"]
    assert mindful_calls.calls[-1].reason is InvalidationReason.EXPIRED


def test_a_backward_set_leaves_the_alarm_on_its_instant_and_the_budget_whole(
    host: EmbeddedHost, clock: MockClock, sink: MemoryEventSink
) -> None:
    mindful, mindful_calls, alarm, alarm_calls = _mindful_and_alarm(host)
    clock.jump(10 * MINUTE)
    clock.set(T0 + 10 * MINUTE - HOUR)
    assert host.settle()
    assert mindful.expiration_date == T0  # 50 minutes from the new now
    # 20 minutes later by the elapsed clock the alarm's instant is still an hour away
    clock.jump(20 * MINUTE)
    assert host.settle()
    assert alarm_calls.names == []
    assert alarm.state is SessionState.SCHEDULED
    # the mindfulness session ends when its 60 minutes have passed, by the elapsed clock
    clock.jump(30 * MINUTE)
    assert host.settle()
    assert mindful_calls.names == ["did_start", "will_expire", "did_invalidate"]
    assert mindful.state is SessionState.INVALID
    # and the alarm starts when the wall clock shows its instant
    clock.jump(HOUR - 30 * MINUTE - MINUTE)
    assert host.settle()
    assert alarm_calls.names == []
    clock.jump(MINUTE)
    assert host.settle()
    assert alarm_calls.names == ["did_start"]
    started = _last_start(sink)
    assert started.at == T0 + 30 * MINUTE
    assert started.lateness == timedelta(0)


def test_a_small_drift_is_not_a_set(
    host: EmbeddedHost, clock: MockClock, sink: MemoryEventSink
) -> None:
    """Without a report from the kernel, the clocks may drift apart by under a second between
    rounds (NTP slews); that moves nothing."""
    mindful, _, _, _ = _mindful_and_alarm(host)
    clock.set(T0 + timedelta(milliseconds=500))
    assert host.settle()
    assert mindful.expiration_date == T0 + HOUR
    assert not [e for e in sink.events if isinstance(e, ExpirationMoved)]


def test_the_engine_moves_running_timers_and_leaves_starts() -> None:
    engine = Engine()
    engine.register_app("org.example.breathe", SessionType.MINDFULNESS)
    engine.register_app("org.example.wake", SessionType.SMART_ALARM)
    engine.start("m", "org.example.breathe", T0)
    engine.start_at("a", "org.example.wake", T0 + 30 * MINUTE, T0)
    later = T0 + HOUR + 5 * MINUTE  # set forward by an hour, five minutes after the start
    outputs = engine.clock_set(HOUR, later)
    moved = [o for o in outputs if isinstance(o, ExpirationMoved)]
    assert [(m.session_id, m.expiration_date, m.moved_by) for m in moved] == [
        ("m", T0 + 2 * HOUR, HOUR)
    ]
    started = [o for o in outputs if isinstance(o, SessionStarted)]
    assert [(s.session_id, s.lateness) for s in started] == [("a", 35 * MINUTE)]
    keep = [o for o in outputs if isinstance(o, KeepAwake)]
    assert keep and keep[-1].why.startswith("mindfulness session until 08:00:00 UTC")
    # the warning and the expiry of the mindfulness session moved with the clock
    assert not [
        o for o in engine.advance(T0 + 2 * HOUR - 2 * MINUTE) if isinstance(o, SessionWillExpire)
    ]
    warned = engine.advance(T0 + 2 * HOUR - MINUTE)
    assert [type(o) for o in warned if isinstance(o, SessionWillExpire)] == [SessionWillExpire]
    ended = engine.advance(T0 + 2 * HOUR)
    assert [o.reason for o in ended if isinstance(o, SessionInvalidated)] == [
        InvalidationReason.EXPIRED
    ]
