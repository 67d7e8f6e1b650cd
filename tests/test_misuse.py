"""Every row of the spec's misuse matrix (section 2.10), with its exact reason and error."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from extended_runtime import (
    ERROR_DOMAIN,
    App,
    ApplicationState,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import VirtualHost

from .conftest import T0, Call, Recorder

#: Apple's NSLocalizedDescription for code 3, from a device log (spec section 3.3).
APPLE_CODE_3 = (
    "The app must be active and before applicationWillResignActive to start or schedule a "
    "WKExtendedRuntimeSession."
)
LOGGER = "extended_runtime"
ALARM = SessionType.SMART_ALARM


def started(host: VirtualHost, app: App, call: str) -> tuple[ExtendedRuntimeSession, Call]:
    """Start a new session of `app` with `call`, deliver, and return its one invalidation."""
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(app=app, delegate=recorder)
    if call == "start":
        session.start()
    else:
        session.start_at(T0 + timedelta(minutes=10))
    assert session.state is SessionState.INVALID
    host.advance(0)
    return session, recorder.only_invalidation()


def assert_error(call: Call, code: ErrorCode, raw: int) -> ExtendedRuntimeSessionError:
    """`call` reports reason ERROR with `code` (raw value `raw`) in Apple's domain."""
    assert call.reason is InvalidationReason.ERROR
    assert int(call.reason) == -1
    error = call.error
    assert error is not None
    assert error.code is code
    assert int(error.code) == raw
    assert error.domain == ERROR_DOMAIN == "WKExtendedRuntimeSessionErrorDomain"
    assert error.message
    return error


def silence_alarms(host: VirtualHost, app: App) -> None:
    """Three alarm sessions in a row that ran and never alerted (Background App Refresh off)."""
    for _ in range(3):
        session = ExtendedRuntimeSession(app=app)
        session.start_at(host.now)
        session.invalidate()
    host.advance(0)


# ------------------------------------------------------------------ start / start_at


@pytest.mark.parametrize("state", [ApplicationState.INACTIVE, ApplicationState.BACKGROUND])
@pytest.mark.parametrize(
    ("call", "mode"),
    [
        ("start", SessionType.SELF_CARE),
        ("start", SessionType.PHYSICAL_THERAPY),
        ("start_at", ALARM),
    ],
)
def test_start_or_start_at_while_app_not_active_is_code_3_with_apples_message(
    host: VirtualHost, state: ApplicationState, call: str, mode: SessionType
) -> None:
    app = host.app("org.example.app", mode, state=state)
    session, ended = started(host, app, call)
    error = assert_error(ended, ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE, 3)
    assert error.message == APPLE_CODE_3
    assert APPLE_CODE_3 in str(error)
    assert session.error == error
    assert session.invalidation_reason is InvalidationReason.ERROR


@pytest.mark.parametrize(
    "mode",
    [
        SessionType.SELF_CARE,
        SessionType.MINDFULNESS,
        SessionType.PHYSICAL_THERAPY,
        SessionType.UNDERWATER_DEPTH,
    ],
)
def test_start_at_with_a_non_alarm_type_is_code_8(host: VirtualHost, mode: SessionType) -> None:
    _, ended = started(host, host.app("org.example.app", mode), "start_at")
    assert_error(ended, ErrorCode.NOT_APPROVED_TO_SCHEDULE, 8)


def test_start_at_more_than_36h_ahead_is_code_2(host: VirtualHost) -> None:
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM), delegate=recorder)
    session.start_at(T0 + timedelta(hours=36, seconds=1))
    assert session.state is SessionState.INVALID
    host.advance(0)
    assert_error(recorder.only_invalidation(), ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE, 2)


def test_start_at_more_than_1min_in_the_past_fails_with_unknown(host: VirtualHost) -> None:
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM), delegate=recorder)
    session.start_at(T0 - timedelta(minutes=1, seconds=1))
    assert session.state is SessionState.INVALID
    host.advance(0)
    error = assert_error(recorder.only_invalidation(), ErrorCode.UNKNOWN, 1)
    assert "past" in error.message


def test_start_at_with_background_app_refresh_off_is_code_6(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    silence_alarms(host, app)
    _, ended = started(host, app, "start_at")
    assert_error(ended, ErrorCode.BAR_DISABLED, 6)


@pytest.mark.parametrize("call", ["start", "start_at"])
def test_start_with_no_session_mode_declared_is_code_7(host: VirtualHost, call: str) -> None:
    _, ended = started(host, host.app("org.example.plain", None), call)
    assert_error(ended, ErrorCode.NOT_APPROVED_TO_START_SESSION, 7)


@pytest.mark.parametrize(
    "mode", [SessionType.SELF_CARE, SessionType.MINDFULNESS, SessionType.PHYSICAL_THERAPY]
)
def test_second_session_while_one_runs_is_session_in_progress(
    host: VirtualHost, mode: SessionType
) -> None:
    app = host.app("org.example.app", mode)
    first_recorder = Recorder(host)
    first = ExtendedRuntimeSession(app=app, delegate=first_recorder)
    first.start()
    _, ended = started(host, app, "start")
    assert ended.reason is InvalidationReason.SESSION_IN_PROGRESS
    assert int(ended.reason) == 1
    assert ended.error is None
    assert first.state is SessionState.RUNNING
    assert first_recorder.names == ["did_start"]


def test_start_with_the_alarm_type_is_unsupported_session_type(host: VirtualHost) -> None:
    _, ended = started(host, host.app("org.example.sleep", ALARM), "start")
    assert_error(ended, ErrorCode.UNSUPPORTED_SESSION_TYPE, 10)


# ------------------------------------------------------------------ invalidate


def test_invalidate_before_any_start_is_error_code_4(host: VirtualHost) -> None:
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(
        app=host.app("org.example.care", SessionType.SELF_CARE), delegate=recorder
    )
    session.invalidate()
    assert session.state is SessionState.INVALID
    host.advance(0)
    assert_error(recorder.only_invalidation(), ErrorCode.NOT_YET_STARTED, 4)


@pytest.mark.parametrize("scheduled", [True, False], ids=["scheduled", "running"])
def test_invalidate_on_an_alarm_session_while_app_inactive_raises_code_3(
    host: VirtualHost, scheduled: bool
) -> None:
    app = host.app("org.example.sleep", ALARM)
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(app=app, delegate=recorder)
    session.start_at(T0 + timedelta(minutes=5) if scheduled else T0)
    state = session.state
    app.state = ApplicationState.INACTIVE
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        session.invalidate()
    error = caught.value
    assert error.code is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE
    assert error.domain == ERROR_DOMAIN
    assert error.message == APPLE_CODE_3
    assert session.state is state
    host.advance(0)
    assert "did_invalidate" not in recorder.names
    app.state = ApplicationState.ACTIVE
    session.invalidate()
    host.advance(0)
    assert recorder.calls[-1].reason is InvalidationReason.NONE
    assert recorder.calls[-1].error is None


def test_reusing_an_invalidated_object_raises_usage_error(host: VirtualHost) -> None:
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(
        app=host.app("org.example.care", SessionType.SELF_CARE), delegate=recorder
    )
    session.start()
    session.invalidate()
    host.advance(0)
    calls = list(recorder.calls)
    with pytest.raises(SessionUsageError, match="INVALID") as caught:
        session.start()
    assert isinstance(caught.value, RuntimeError)
    with pytest.raises(SessionUsageError, match="INVALID"):
        session.start_at(T0 + timedelta(minutes=5))
    host.advance(10)
    assert session.state is SessionState.INVALID
    assert session.invalidation_reason is InvalidationReason.NONE
    assert recorder.calls == calls
    assert not host.keep_awake_held


# ------------------------------------------------------------------ notify_user


@pytest.mark.parametrize("case", ["not-started", "scheduled", "invalid", "not-alarm"])
def test_notify_user_on_a_non_scheduled_or_non_running_session_is_ignored(
    host: VirtualHost, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    mode = SessionType.PHYSICAL_THERAPY if case == "not-alarm" else ALARM
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(app=host.app("org.example.app", mode), delegate=recorder)
    if case == "scheduled":
        session.start_at(T0 + timedelta(minutes=5))
    elif case == "invalid":
        session.start_at(T0)
        session.invalidate()
    elif case == "not-alarm":
        session.start()
    host.advance(0)
    state, calls = session.state, list(recorder.calls)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        session.notify_user(HapticType.NOTIFICATION, lambda _: 1.0)
        host.advance(10)
    assert host.alerts == []
    assert session.state is state
    assert recorder.calls == calls
    assert [r.levelno for r in caplog.records if "notify_user" in r.getMessage()] == [
        logging.WARNING
    ]


# ------------------------------------------------------------------ system-side misuse


def test_smart_alarm_that_never_plays_a_haptic_warns_and_three_disable_alarms(
    host: VirtualHost, caplog: pytest.LogCaptureFixture
) -> None:
    app = host.app("org.example.sleep", ALARM)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        silence_alarms(host, app)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [("ended without alerting" in m) for m in warnings].count(True) == 3
    assert any("disabled" in m and app.app_id in m for m in warnings)
    _, ended = started(host, app, "start_at")
    assert_error(ended, ErrorCode.BAR_DISABLED, 6)


def test_sustained_high_cpu_is_code_5(host: VirtualHost) -> None:
    app = host.app("org.example.pt", SessionType.PHYSICAL_THERAPY)
    recorder = Recorder(host)
    session = ExtendedRuntimeSession(app=app, delegate=recorder)
    session.start()
    host.set_cpu_load(app, 2.0)
    host.advance(120)
    assert session.state is SessionState.INVALID
    assert recorder.names == ["did_start", "did_invalidate"]
    assert_error(recorder.calls[-1], ErrorCode.EXCEEDED_RESOURCE_LIMITS, 5)


def test_delegate_not_set_in_the_relaunch_handler_ends_the_session_with_unknown(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    ExtendedRuntimeSession(app=app).start_at(T0 + timedelta(minutes=30))
    host.terminate(app)
    handed: list[ExtendedRuntimeSession] = []
    app.on_session(handed.append)
    host.advance(timedelta(minutes=31))
    assert len(handed) == 1
    session = handed[0]
    assert session.state is SessionState.INVALID
    assert session.invalidation_reason is InvalidationReason.ERROR
    assert session.error is not None
    assert session.error.code is ErrorCode.UNKNOWN
    assert session.error.domain == ERROR_DOMAIN
    assert not host.keep_awake_held


@pytest.mark.parametrize(
    "mode",
    [
        SessionType.SELF_CARE,
        SessionType.MINDFULNESS,
        SessionType.PHYSICAL_THERAPY,
        SessionType.UNDERWATER_DEPTH,
    ],
)
def test_auto_launch_request_with_an_unsupported_type_is_code_10(
    host: VirtualHost, mode: SessionType
) -> None:
    app = host.app("org.example.app", mode)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    assert caught.value.code is ErrorCode.UNSUPPORTED_SESSION_TYPE
    assert int(caught.value.code) == 10
    assert caught.value.domain == ERROR_DOMAIN


@pytest.mark.parametrize("state", [ApplicationState.INACTIVE, ApplicationState.BACKGROUND])
def test_auto_launch_request_while_not_foreground_before_any_prompt_is_code_9(
    host: VirtualHost, state: ApplicationState
) -> None:
    app = host.app("org.example.sleep", ALARM, state=state)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    assert caught.value.code is ErrorCode.MUST_BE_ACTIVE_TO_PROMPT
    assert int(caught.value.code) == 9
    assert caught.value.domain == ERROR_DOMAIN
