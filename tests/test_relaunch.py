"""Scheduled starts for an app that is not running, relaunch, and calls the app missed.

DESIGN.md rows "Scheduled start while the app is not running" and "Relaunch (`handle(_:)`)",
and the test host contract of `host.terminate`, `host.launch` and `app.on_session`; misuse-
matrix row "Delegate not set in handle(_:)" (spec 2.10). Exits during a running session are
in `test_app_exit.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from extended_runtime import (
    ERROR_DOMAIN,
    App,
    ApplicationState,
    ErrorCode,
    ExtendedRuntimeSession,
    HapticType,
    InvalidationReason,
    SessionState,
)
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    T0,
    THERAPY,
    Call,
    Recorder,
    allow_auto_launch,
    ended,
    error_code,
    misuse,
    open_session,
    sec,
)

_R = InvalidationReason
_S = SessionState


def scheduled_then_exited(host: VirtualHost) -> tuple[App, datetime, list[ExtendedRuntimeSession]]:
    """An alarm app with auto-launch allowed schedules an hour ahead and exits.

    Returns the app, the start date, and the list its `on_session` handler appends to (it sets
    no delegate).
    """
    app = host.app("org.example.sleep", ALARM)
    allow_auto_launch(host, app)
    start = T0 + timedelta(hours=1)
    ExtendedRuntimeSession(app=app).start_at(start)
    host.terminate(app)
    handed: list[ExtendedRuntimeSession] = []
    app.on_session(handed.append)
    return app, start, handed


# ====================================================================== auto-launch ACTIVE


def test_auto_launch_active_relaunches_through_on_session_with_session_running(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM, launch=["sleep-app", "--alarm"])
    allow_auto_launch(host, app)
    original, original_rec = open_session(host, app)
    start = T0 + timedelta(hours=8)
    original.start_at(start)
    host.terminate(app)
    assert host.launches == []
    journal: list[tuple[str, Call]] = []
    handed: list[tuple[ExtendedRuntimeSession, SessionState, datetime, ApplicationState]] = []
    relaunched = Recorder(host, "relaunched", journal)

    @app.on_session
    def handle(session: ExtendedRuntimeSession) -> None:
        handed.append((session, session.state, host.now, app.state))
        journal.append(("handler", Call("handle", host.now)))
        session.delegate = relaunched

    host.advance(timedelta(hours=8))
    assert host.launches == [(start, app.app_id)]
    assert len(handed) == 1
    session, state, at, app_state = handed[0]
    assert session is not original
    assert session.session_id == original.session_id
    assert (state, at, app_state) == (_S.RUNNING, start, ApplicationState.BACKGROUND)
    assert session.expiration_date == start + timedelta(minutes=30)
    assert [(label, call.name, call.at) for label, call in journal] == [
        ("handler", "handle", start),
        ("relaunched", "did_start", start),
    ]
    host.advance(timedelta(hours=1))
    assert relaunched.names == ["did_start", "will_expire", "did_invalidate"]
    assert relaunched.calls[-1].reason is _R.EXPIRED
    assert original_rec.calls == []


# ====================================================================== auto-launch not ACTIVE


def test_scheduled_start_while_app_not_running_host_alerts_until_stop(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    start = T0 + sec(600)
    session.start_at(start)
    host.terminate(app)
    host.advance(600)
    assert host.launches == []
    assert host.keep_awake_held
    assert len(host.alerts) == 1
    first = host.alerts[0]
    assert (first.at, first.by_host, first.haptic) == (start, True, HapticType.NOTIFICATION)
    assert first.session_id == session.session_id
    host.advance(10)
    assert [a.at for a in host.alerts] == [start + sec(s) for s in (0, 3, 6, 9)]
    host.stop_alarm(app)
    assert not host.keep_awake_held
    host.advance(600)
    assert len(host.alerts) == 4
    assert rec.calls == []
    heard: list[Recorder] = []

    @app.on_session
    def handle(handed: ExtendedRuntimeSession) -> None:
        assert handed.state is _S.INVALID
        recorder = Recorder(host)
        heard.append(recorder)
        handed.delegate = recorder

    host.launch(app)
    host.advance(0)
    # everything it missed, once, at the launch that hands it over: never in the past
    assert len(heard) == 1
    assert heard[0].calls == [
        Call("did_start", start + sec(610)),
        ended(_R.NONE, start + sec(610)),
    ]


def test_scheduled_start_while_app_not_running_host_alerts_until_expiry(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(T0 + sec(60))
    host.terminate(app)
    host.advance(timedelta(hours=2))
    assert len(host.alerts) == 600
    assert all(alert.by_host for alert in host.alerts)
    assert host.alerts[-1].at < T0 + sec(60 + 1800)
    assert not host.keep_awake_held
    assert host.engine.running_sessions() == {}
    assert session.invalidation_reason is _R.EXPIRED


# ====================================================================== relaunch handlers


@misuse("Delegate not set in handle(_:)")
def test_relaunch_without_delegate_within_10s_ends_with_unknown(host: VirtualHost) -> None:
    _app, _start, handed = scheduled_then_exited(host)
    host.advance(timedelta(hours=1))
    assert len(handed) == 1
    session = handed[0]
    assert session.state is _S.RUNNING
    host.advance(9.999)
    assert session.state is _S.RUNNING
    host.advance(0.001)
    assert session.state is _S.INVALID
    assert session.invalidation_reason is _R.ERROR
    assert session.error is not None
    assert session.error.code is ErrorCode.UNKNOWN
    assert session.error.domain == ERROR_DOMAIN
    assert session.error.message == "the relaunched app set no delegate within 10 s"
    assert not host.keep_awake_held


def test_relaunch_with_delegate_set_within_10s_runs_on(host: VirtualHost) -> None:
    _app, start, handed = scheduled_then_exited(host)
    host.advance(timedelta(hours=1))
    host.advance(9)
    rec = Recorder(host)
    handed[0].delegate = rec
    host.advance(timedelta(hours=1))
    assert rec.calls == [
        Call("did_start", start + sec(9)),  # delivered when the delegate is set
        Call("will_expire", start + timedelta(minutes=29)),
        ended(_R.EXPIRED, start + timedelta(minutes=30)),
    ]


def test_session_created_by_the_app_without_delegate_is_valid(host: VirtualHost) -> None:
    """The 10 s delegate rule is for relaunch only."""
    session = ExtendedRuntimeSession(app=host.app("org.example.pt", THERAPY))
    session.start()
    host.advance(1800)
    assert session.state is _S.RUNNING


def test_relaunched_app_starts_background_user_launch_starts_active(host: VirtualHost) -> None:
    app, _start, handed = scheduled_then_exited(host)
    assert app.state is ApplicationState.BACKGROUND
    host.advance(timedelta(hours=1))
    assert len(handed) == 1
    assert app.state is ApplicationState.BACKGROUND
    other = host.app("org.example.pt", THERAPY)
    host.terminate(other)
    host.launch(other)
    assert other.state is ApplicationState.ACTIVE


def test_calls_before_the_delegate_is_set_come_after_the_backlog(host: VirtualHost) -> None:
    """A handed-over session whose delegate comes late hears everything once, in order."""
    _app, start, handed = scheduled_then_exited(host)
    host.advance(timedelta(hours=1))
    assert len(handed) == 1
    host.advance(5)
    late = Recorder(host)
    handed[0].delegate = late
    host.advance(timedelta(hours=1))
    assert late.names == ["did_start", "will_expire", "did_invalidate"]
    assert late.calls[0].at == start + sec(5)


# ====================================================================== missed calls


def test_missed_did_invalidate_is_delivered_at_next_launch_through_handlers(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.pt", THERAPY)
    session, rec = open_session(host, app)
    session.start()
    host.advance(100)
    host.terminate(app)
    host.advance(timedelta(hours=3))
    assert rec.calls == [Call("did_start", T0)]
    heard: list[tuple[ExtendedRuntimeSession, Recorder]] = []

    @app.on_session
    def handle(handed: ExtendedRuntimeSession) -> None:
        recorder = Recorder(host)
        handed.delegate = recorder
        heard.append((handed, recorder))

    host.launch(app)
    host.advance(0)
    assert len(heard) == 1
    handed, recorder = heard[0]
    assert handed.session_id == session.session_id
    assert handed.state is _S.INVALID
    assert recorder.names == ["did_invalidate"]
    call = recorder.calls[0]
    assert call.reason is _R.ERROR
    assert error_code(call) is ErrorCode.UNKNOWN
    host.terminate(app)
    host.launch(app)
    host.advance(0)
    assert len(heard) == 1, "a missed did_invalidate is delivered once"


def test_a_handover_to_a_process_that_exits_at_once_is_offered_again(host: VirtualHost) -> None:
    """Launched and gone before its handler ran: the next launch hears the session."""
    app = host.app("org.example.pt", THERAPY)
    session, _rec = open_session(host, app)
    session.start()
    host.terminate(app)
    heard: list[Recorder] = []

    @app.on_session
    def handle(handed: ExtendedRuntimeSession) -> None:
        heard.append(Recorder(host))
        handed.delegate = heard[-1]

    host.launch(app)
    host.terminate(app)  # before any delivery
    host.advance(0)
    assert heard == []
    host.launch(app)
    host.advance(0)
    assert len(heard) == 1
    assert heard[0].names == ["did_invalidate"]


def test_an_app_that_keeps_exiting_is_launched_at_most_max_launches_times(
    host: VirtualHost,
) -> None:
    """An app that dies as soon as it is launched into its alarm is not launched without end:
    after `Policy.max_launches` launches the host rings the alarm itself (never lost)."""
    app = host.app("org.example.crashy", ALARM, launch=["crashy"])
    allow_auto_launch(host, app)
    session, _ = open_session(host, app)
    start = T0 + sec(60)
    session.start_at(start)
    host.terminate(app)
    host.advance(60)
    assert len(host.launches) == 1
    for _ in range(5):
        host.terminate(app)  # the launched process dies at once, again and again
        host.advance(1)
    assert len(host.launches) == host.engine.policy.max_launches == 3
    assert host.alerts and host.alerts[-1].by_host
