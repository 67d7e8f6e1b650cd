"""What `start()` and `start_at()` accept, what they refuse, and which refusal wins.

DESIGN.md rows "`start()` / `start_at()` on a session not NOT_STARTED", "Smart alarm through
`start()`", "`start_at()` more than 60 s in the past" (with its boundaries), "Several
preconditions fail at once", "App has no declared background mode", and the "Frontmost" rule
that starting needs ACTIVE. Misuse-matrix rows (spec 2.10) are marked `@misuse(row)`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from extended_runtime import (
    ApplicationState,
    ErrorCode,
    ExtendedRuntimeSession,
    InvalidationReason,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    APPLE_CODE_3,
    MINDFULNESS,
    SELF_CARE,
    T0,
    THERAPY,
    UNDERWATER,
    Call,
    Recorder,
    assert_error,
    begin,
    ended,
    error_code,
    misuse,
    open_session,
    run_silent_alarm,
    sec,
)

_R = InvalidationReason
_S = SessionState

NOT_APPROVED_TO_START = (
    "The app is not approved to start a session: it declares no background mode, "
    "or the user denied it."
)
TOO_FAR_AHEAD = "A session can be scheduled at most 36 hours in advance."


def refused(host: VirtualHost, app_id: str, mode: SessionType | None, call: str) -> Call:
    """Begin a new session of a new app with `call` (start_at: 10 min ahead); its one call."""
    session, rec = open_session(host, host.app(app_id, mode))
    begin(session, call, T0 + sec(600))
    assert session.state is _S.INVALID
    host.advance(0)
    return rec.only_invalidation()


# ====================================================================== the app must be active


@misuse("start()/start(at:) while app not active")
@pytest.mark.parametrize("state", [ApplicationState.INACTIVE, ApplicationState.BACKGROUND])
@pytest.mark.parametrize(
    ("call", "mode"),
    [("start", SELF_CARE), ("start", THERAPY), ("start_at", ALARM)],
)
def test_start_or_start_at_while_app_not_active_is_code_3_with_apples_message(
    host: VirtualHost, state: ApplicationState, call: str, mode: SessionType
) -> None:
    """INACTIVE (the user looked away) is not enough: starting needs ACTIVE."""
    app = host.app("org.example.app", mode, state=state)
    session, rec = open_session(host, app)
    begin(session, call, T0 + sec(600))
    assert session.state is _S.INVALID
    host.advance(0)
    call_ = rec.only_invalidation()
    assert_error(call_, ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE, APPLE_CODE_3)
    assert session.error == call_.error
    assert session.invalidation_reason is _R.ERROR
    assert not host.keep_awake_held


# ====================================================================== what may be scheduled


@misuse("start(at:) with a non-alarm type")
@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS, THERAPY, UNDERWATER])
def test_start_at_with_a_non_alarm_type_is_not_approved_to_schedule(
    host: VirtualHost, mode: SessionType
) -> None:
    ended_ = refused(host, "org.example.app", mode, "start_at")
    assert_error(
        ended_, ErrorCode.NOT_APPROVED_TO_SCHEDULE, "Only smart-alarm sessions can be scheduled."
    )


@misuse("start() with the alarm type")
def test_smart_alarm_through_start_is_unsupported_session_type(host: VirtualHost) -> None:
    ended_ = refused(host, "org.example.sleep", ALARM, "start")
    assert_error(
        ended_,
        ErrorCode.UNSUPPORTED_SESSION_TYPE,
        "a smart-alarm session must be scheduled with start_at(), not start()",
    )
    assert not host.keep_awake_held


@misuse("Start with no ERS mode in Info.plist")
@pytest.mark.parametrize("call", ["start", "start_at"])
def test_app_without_background_mode_is_not_approved_to_start(host: VirtualHost, call: str) -> None:
    session, rec = open_session(host, host.app("org.example.plain", None))
    assert session.session_type is None
    begin(session, call, T0 + sec(60))
    host.advance(0)
    assert_error(
        rec.only_invalidation(), ErrorCode.NOT_APPROVED_TO_START_SESSION, NOT_APPROVED_TO_START
    )


def test_not_approved_when_the_user_denied_the_app(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    host.engine.set_approved(app.app_id, False, host.now)
    session, rec = open_session(host, app)
    session.start()
    host.advance(0)
    assert_error(
        rec.only_invalidation(), ErrorCode.NOT_APPROVED_TO_START_SESSION, NOT_APPROVED_TO_START
    )
    host.engine.set_approved(app.app_id, True, host.now)
    again, _rec2 = open_session(host, app)
    again.start()
    assert again.state is _S.RUNNING


# ====================================================================== start dates


@misuse("start(at:) more than 36 h ahead")
@pytest.mark.parametrize(
    ("offset", "state", "code"),
    [
        (timedelta(hours=36), _S.SCHEDULED, None),
        (timedelta(hours=36, microseconds=1), _S.INVALID, ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE),
        (-sec(60), _S.RUNNING, None),
        (-timedelta(seconds=60, microseconds=1), _S.INVALID, ErrorCode.UNKNOWN),
        (timedelta(0), _S.RUNNING, None),
    ],
    ids=["36h", "36h+1us", "-60s", "-60s-1us", "now"],
)
def test_start_at_boundaries(
    host: VirtualHost, offset: timedelta, state: SessionState, code: ErrorCode | None
) -> None:
    """`when <= now + 36 h` is accepted; `when < now - 60 s` fails."""
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 + offset)
    assert session.state is state
    host.advance(0)
    if code is None:
        assert "did_invalidate" not in rec.names
    elif code is ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE:
        assert_error(rec.only_invalidation(), code, TOO_FAR_AHEAD)
    else:
        assert_error(rec.only_invalidation(), code)


@misuse("start(at:) more than 1 min in the past")
def test_start_at_more_than_60s_in_the_past_fails_with_unknown_saying_so(
    host: VirtualHost,
) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 - sec(61))
    assert session.state is _S.INVALID
    host.advance(0)
    assert_error(
        rec.only_invalidation(),
        ErrorCode.UNKNOWN,
        "the start date 2026-01-05T05:58:59+00:00 is 61 s in the past; "
        "start_at() accepts dates at most 60 s in the past",
    )


def test_start_at_up_to_60s_in_the_past_starts_at_once_with_budget_from_the_requested_date(
    host: VirtualHost,
) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 - sec(45))
    assert session.state is _S.RUNNING
    assert session.expiration_date == T0 - sec(45) + sec(1800)
    assert host.keep_awake_held
    host.advance(3600)
    assert rec.calls == [
        Call("did_start", T0),
        Call("will_expire", T0 - sec(45) + sec(1740)),
        ended(_R.EXPIRED, T0 - sec(45) + sec(1800)),
    ]


# ====================================================================== starting twice


def _session_in(host: VirtualHost, setup: str) -> tuple[ExtendedRuntimeSession, Recorder]:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    if setup == "scheduled":
        session.start_at(T0 + sec(600))
    elif setup == "running":
        session.start_at(T0)
    elif setup == "invalid-after-running":
        session.start_at(T0)
        session.invalidate()
    else:
        session.invalidate()
    host.advance(0)
    return session, rec


@misuse("Reusing an invalidated object")
@pytest.mark.parametrize(
    ("setup", "state"),
    [
        ("scheduled", _S.SCHEDULED),
        ("running", _S.RUNNING),
        ("invalid-after-running", _S.INVALID),
        ("invalid-unstarted", _S.INVALID),
    ],
)
@pytest.mark.parametrize("call", ["start", "start_at"])
def test_start_or_start_at_on_a_started_session_raises_usage_error_naming_the_state(
    host: VirtualHost, setup: str, state: SessionState, call: str
) -> None:
    session, rec = _session_in(host, setup)
    assert session.state is state
    engine_state = host.engine.session_state(session.session_id)
    expiration, reason = session.expiration_date, session.invalidation_reason
    calls, keep_awake = list(rec.calls), host.keep_awake_held
    message = (
        f"{call}() on a session that is {state.name}: a session runs at most once; "
        "create a new ExtendedRuntimeSession"
    )
    with pytest.raises(SessionUsageError) as caught:
        begin(session, call, T0 + sec(1200))
    assert str(caught.value) == message
    assert session.state is state
    assert session.expiration_date == expiration
    assert session.invalidation_reason is reason
    assert host.engine.session_state(session.session_id) is engine_state
    host.advance(10)
    assert session.state is state
    assert rec.calls == calls
    assert host.keep_awake_held is keep_awake


# ====================================================================== precondition order


def test_precondition_order_usage_error_before_must_be_active(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    running, rec = open_session(host, app)
    running.start()
    app.state = ApplicationState.INACTIVE
    with pytest.raises(SessionUsageError):
        running.start()
    assert running.state is _S.RUNNING
    refused_, _ = open_session(host, app)
    refused_.start()
    app.state = ApplicationState.BACKGROUND
    with pytest.raises(SessionUsageError):
        refused_.start_at(T0 + sec(60))
    host.advance(0)
    assert rec.calls[0].name == "did_start"


@pytest.mark.parametrize("call", ["start", "start_at"])
def test_precondition_order_must_be_active_before_not_approved(
    host: VirtualHost, call: str
) -> None:
    app = host.app("org.example.nomode", None, state=ApplicationState.INACTIVE)
    session, rec = open_session(host, app)
    begin(session, call, T0 + sec(60))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE


@pytest.mark.parametrize(
    ("mode", "call"),
    [(ALARM, "start"), (SELF_CARE, "start_at")],
    ids=["denied-vs-unsupported", "denied-vs-not-approved-to-schedule"],
)
def test_precondition_order_not_approved_before_type_errors(
    host: VirtualHost, mode: SessionType, call: str
) -> None:
    """The user denied the app (`set_approved`): that beats the type's own refusal."""
    app = host.app("org.example.app", mode)
    assert host.engine.set_approved(app.app_id, False, host.now) == []
    session, rec = open_session(host, app)
    begin(session, call, T0 + sec(60))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.NOT_APPROVED_TO_START_SESSION


@pytest.mark.parametrize(
    ("mode", "offset"),
    [(SELF_CARE, timedelta(hours=40)), (SELF_CARE, -timedelta(hours=2)), (THERAPY, sec(1))],
    ids=["too-far-ahead", "too-far-past", "fine-date"],
)
def test_precondition_order_not_approved_to_schedule_before_date_errors(
    host: VirtualHost, mode: SessionType, offset: timedelta
) -> None:
    session, rec = open_session(host, host.app("org.example.app", mode))
    session.start_at(T0 + offset)
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.NOT_APPROVED_TO_SCHEDULE


def test_precondition_order_unsupported_type_before_bar_disabled(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    for _ in range(3):
        run_silent_alarm(host, app)
    assert host.engine.alarms_disabled(app.app_id)
    session, rec = open_session(host, app)
    session.start()
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.UNSUPPORTED_SESSION_TYPE


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (timedelta(hours=37), ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE),
        (-timedelta(minutes=5), ErrorCode.UNKNOWN),
        (timedelta(hours=1), ErrorCode.BAR_DISABLED),
    ],
    ids=["too-far-ahead", "too-far-past", "fine-date"],
)
def test_precondition_order_date_errors_before_bar_disabled(
    host: VirtualHost, offset: timedelta, code: ErrorCode
) -> None:
    app = host.app("org.example.sleep", ALARM)
    for _ in range(3):
        run_silent_alarm(host, app)
    session, rec = open_session(host, app)
    session.start_at(T0 + offset)
    host.advance(0)
    assert error_code(rec.only_invalidation()) is code


def test_precondition_order_bar_disabled_before_session_in_progress(host: VirtualHost) -> None:
    """Both at once need a session in progress while alarms are off.

    Alarms go off only when an alarm ends, so the engine is told the app was re-registered
    with another mode (a reinstalled app, as `Engine.register_app` allows) to run a
    physical-therapy session meanwhile.
    """
    app = host.app("org.example.sleep", ALARM)
    for _ in range(3):
        run_silent_alarm(host, app)
    host.engine.register_app(app.app_id, THERAPY)
    therapy = ExtendedRuntimeSession(app=app)
    therapy.start()
    assert therapy.state is _S.RUNNING
    host.engine.register_app(app.app_id, ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0 + sec(600))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.BAR_DISABLED
    assert therapy.state is _S.RUNNING


def test_precondition_order_session_in_progress_before_suppressed(host: VirtualHost) -> None:
    """A scheduled alarm, then the app is re-registered as self-care and starts while paused."""
    app = host.app("org.example.app", ALARM)
    scheduled = ExtendedRuntimeSession(app=app)
    scheduled.start_at(T0 + sec(600))
    host.set_suppressed(True)
    host.engine.register_app(app.app_id, SELF_CARE)
    session, rec = open_session(host, app)
    session.start()
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.SESSION_IN_PROGRESS
    assert call.error is None
    assert scheduled.state is _S.SCHEDULED


def test_precondition_order_suppressed_is_last(host: VirtualHost) -> None:
    host.set_suppressed(True)
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.SUPPRESSED_BY_SYSTEM
    assert call.error is None
