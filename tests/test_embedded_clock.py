"""The embedded host's own loop on a clock the test moves: deterministic, and in microseconds.

`MockClock` drives the production timer thread, effect channels and delegate delivery (the way
trio's `MockClock` drives its real event loop): the test moves the clock with `jump()`, then
`settle()` waits until everything due at the new instant has happened. Nothing here sleeps on
real time, so an hour-long session is tested exactly, on the real threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from extended_runtime import (
    EmbeddedHost,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime.testing import MockClock

from .helpers import T0

MINUTE = timedelta(minutes=1)


class Recorder(ExtendedRuntimeSessionDelegate):
    """Each call with the clock's instant and the thread it ran on."""

    def __init__(self, clock: MockClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime, str]] = []
        self.reason: InvalidationReason | None = None
        self.error: ExtendedRuntimeSessionError | None = None

    def _note(self, name: str) -> None:
        self.calls.append((name, self.clock.now(), threading.current_thread().name))

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self._note("did_start")

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self._note("will_expire")

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self._note("did_invalidate")
        self.reason, self.error = reason, error


@pytest.fixture
def clock() -> MockClock:
    return MockClock(T0)


@pytest.fixture
def host(clock: MockClock) -> Iterator[EmbeddedHost]:
    embedded = EmbeddedHost(clock=clock)
    yield embedded
    embedded.close()


def _session(
    host: EmbeddedHost, clock: MockClock, mode: SessionType
) -> tuple[ExtendedRuntimeSession, Recorder]:
    recorder = Recorder(clock)
    return ExtendedRuntimeSession(host.app(f"org.example.{mode.value}", mode), recorder), recorder


def test_an_hour_of_mindfulness_on_the_real_loop(host: EmbeddedHost, clock: MockClock) -> None:
    session, recorder = _session(host, clock, SessionType.MINDFULNESS)
    session.start()
    assert host.settle()
    clock.jump(58 * MINUTE)
    assert host.settle()
    assert [name for name, _, _ in recorder.calls] == ["did_start"]
    clock.jump(MINUTE)
    assert host.settle()
    clock.jump(MINUTE)
    assert host.settle()
    assert recorder.calls == [
        ("did_start", T0, "xrs-delegate"),
        ("will_expire", T0 + 59 * MINUTE, "xrs-delegate"),
        ("did_invalidate", T0 + 60 * MINUTE, "xrs-delegate"),
    ]
    assert recorder.reason is InvalidationReason.EXPIRED
    assert not host.engine.keep_awake_held


def test_one_jump_past_several_deadlines_fires_them_in_order(
    host: EmbeddedHost, clock: MockClock
) -> None:
    care, care_calls = _session(host, clock, SessionType.SELF_CARE)
    therapy, therapy_calls = _session(host, clock, SessionType.PHYSICAL_THERAPY)
    care.start()
    therapy.start()
    clock.jump(timedelta(hours=2))
    assert host.settle()
    assert [name for name, _, _ in care_calls.calls] == [
        "did_start",
        "will_expire",
        "did_invalidate",
    ]
    assert [name for name, _, _ in therapy_calls.calls] == [
        "did_start",
        "will_expire",
        "did_invalidate",
    ]
    assert (care.state, therapy.state) == (SessionState.INVALID, SessionState.INVALID)


def test_an_alarm_scheduled_for_the_morning_rings_every_3_s(
    host: EmbeddedHost, clock: MockClock
) -> None:
    alarm, recorder = _session(host, clock, SessionType.SMART_ALARM)
    wake = T0 + timedelta(hours=7, minutes=30)
    alarm.start_at(wake)
    assert host.settle()
    assert host.engine.next_deadline() == wake  # the wake alarm is armed for it
    clock.jump(timedelta(hours=7, minutes=30))
    assert host.settle()
    assert recorder.calls == [("did_start", wake, "xrs-delegate")]
    played: list[datetime] = []

    def handler(haptic: HapticType) -> float:
        played.append(clock.now())
        return 3.0

    alarm.notify_user(HapticType.NOTIFICATION, handler)
    for _ in range(3):
        assert host.settle()
        clock.jump(3)
    assert host.settle()
    assert played == [wake + timedelta(seconds=s) for s in (0, 3, 6, 9)]
    alarm.invalidate()
    assert host.settle()
    assert recorder.reason is InvalidationReason.NONE


def test_a_handler_asking_for_a_flood_is_held_to_one_alert_a_second(
    host: EmbeddedHost, clock: MockClock
) -> None:
    alarm, _ = _session(host, clock, SessionType.SMART_ALARM)
    alarm.start_at(T0)
    played: list[datetime] = []

    def flood(haptic: HapticType) -> float:
        played.append(clock.now())
        return 0.001

    alarm.notify_user(HapticType.NOTIFICATION, flood)
    for _ in range(5):
        assert host.settle()
        clock.jump(0.5)
    assert host.settle()
    assert played == [T0 + timedelta(seconds=s) for s in (0, 1, 2)]


def test_a_failing_start_is_heard_on_the_delegate_thread(
    host: EmbeddedHost, clock: MockClock
) -> None:
    alarm, recorder = _session(host, clock, SessionType.SMART_ALARM)
    alarm.start_at(T0 + timedelta(hours=37))
    assert alarm.state is SessionState.INVALID
    assert host.settle()
    assert recorder.calls == [("did_invalidate", T0, "xrs-delegate")]
    assert recorder.error is not None
    assert recorder.error.code is ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE


def test_with_running_on_the_real_loop(host: EmbeddedHost, clock: MockClock) -> None:
    session, recorder = _session(host, clock, SessionType.MINDFULNESS)
    with session.running() as running:
        assert running is session
        assert session.state is SessionState.RUNNING
        clock.jump(10 * MINUTE)
    assert session.state is SessionState.INVALID
    assert host.settle()
    assert recorder.calls[-1] == ("did_invalidate", T0 + 10 * MINUTE, "xrs-delegate")
    assert recorder.reason is InvalidationReason.NONE
