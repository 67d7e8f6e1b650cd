"""The app's process exits during a running session: what happens depends on the type.

DESIGN.md row "App exits during a running session", and the test host contract of
`host.terminate` (objects of the exited process hear nothing more, their `state` still reads
true). What the app hears at its next launch is in `test_relaunch.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from extended_runtime import (
    ErrorCode,
    ExtendedRuntimeSession,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    MINDFULNESS,
    SELF_CARE,
    T0,
    THERAPY,
    Call,
    Recorder,
    allow_auto_launch,
    ended,
    open_session,
    sec,
)

_R = InvalidationReason
_S = SessionState


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS])
def test_app_exit_frontmost_ends_resigned_frontmost(host: VirtualHost, mode: SessionType) -> None:
    app = host.app("org.example.app", mode)
    session, rec = open_session(host, app)
    session.start()
    host.advance(60)
    host.terminate(app)
    assert session.state is _S.INVALID
    assert host.engine.running_sessions() == {}
    assert not host.keep_awake_held
    host.advance(3600)
    assert rec.calls == [Call("did_start", T0)]
    heard: list[Recorder] = []

    @app.on_session
    def handle(handed: ExtendedRuntimeSession) -> None:
        heard.append(Recorder(host))
        handed.delegate = heard[-1]

    host.launch(app)
    host.advance(0)
    # delivered at the launch (T0 + 60 s + 1 h), not at the instant it happened
    assert heard[0].calls == [ended(_R.RESIGNED_FRONTMOST, T0 + sec(3660))]


def test_app_exit_physical_therapy_ends_unknown(host: VirtualHost) -> None:
    """Even with auto-launch allowed; the exited process's object reads the truth."""
    app = host.app("org.example.pt", THERAPY)
    host.set_auto_launch_answer(app, True)
    session, rec = open_session(host, app)
    session.start()
    host.advance(60)
    host.terminate(app)
    assert session.state is _S.INVALID
    assert host.engine.running_sessions() == {}
    assert not host.keep_awake_held
    assert host.launches == []
    assert session.invalidation_reason is _R.ERROR
    assert session.error is not None
    assert session.error.code is ErrorCode.UNKNOWN
    assert session.error.message == "the app exited during its physical-therapy session"
    host.advance(60)
    assert rec.names == ["did_start"]


def test_app_exit_objects_of_the_exited_process_follow_their_session_to_its_end(
    host: VirtualHost,
) -> None:
    """An alarm taken over by the host: the old object reads RUNNING, then INVALID at expiry."""
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0)
    host.terminate(app)
    host.advance(600)
    assert session.state is _S.RUNNING
    host.advance(timedelta(hours=1))
    assert session.state is _S.INVALID
    assert session.invalidation_reason is _R.EXPIRED
    assert rec.names == []


def test_app_exit_stops_calls_to_its_repeat_handler(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(T0)
    calls: list[datetime] = []

    def handler(played: HapticType) -> float:
        calls.append(host.now)
        return 1.0

    session.notify_user(HapticType.NOTIFICATION, handler)
    host.advance(2)
    assert calls == [T0, T0 + sec(1), T0 + sec(2)]
    session.notify_user(HapticType.NOTIFICATION, handler)
    host.terminate(app)
    host.advance(10)
    assert calls == [T0, T0 + sec(1), T0 + sec(2)]
    later = [a for a in host.alerts if a.at > T0 + sec(2)]
    assert later
    assert all(a.by_host for a in later)


def test_app_exit_smart_alarm_with_auto_launch_relaunches_into_running_session(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM)
    allow_auto_launch(host, app)
    session, rec = open_session(host, app)
    session.start_at(T0)
    host.advance(0)
    heard: list[tuple[ExtendedRuntimeSession, Recorder]] = []

    @app.on_session
    def handle(handed: ExtendedRuntimeSession) -> None:
        assert handed.state is _S.RUNNING
        recorder = Recorder(host)
        handed.delegate = recorder
        heard.append((handed, recorder))

    host.advance(120)
    host.terminate(app)
    assert host.launches == [(T0 + sec(120), app.app_id)]
    assert host.keep_awake_held
    host.advance(0)
    assert len(heard) == 1
    handed, recorder = heard[0]
    assert recorder.names == ["did_start"]
    host.advance(timedelta(hours=1))
    assert handed.expiration_date == T0 + sec(1800)
    assert recorder.names == ["did_start", "will_expire", "did_invalidate"]
    assert recorder.calls[-1] == ended(_R.EXPIRED, T0 + sec(1800))
    assert rec.names == ["did_start"]


def test_app_exit_smart_alarm_without_auto_launch_host_takes_over_alerting(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(T0)
    session.notify_user(HapticType.CLICK, lambda _: 30.0)
    host.advance(40)
    host.terminate(app)
    host.advance(7)
    assert host.launches == []
    assert [(a.at, a.by_host, a.haptic) for a in host.alerts] == [
        (T0, False, HapticType.CLICK),
        (T0 + sec(30), False, HapticType.CLICK),
        (T0 + sec(40), True, HapticType.NOTIFICATION),
        (T0 + sec(43), True, HapticType.NOTIFICATION),
        (T0 + sec(46), True, HapticType.NOTIFICATION),
    ]
    assert host.keep_awake_held
