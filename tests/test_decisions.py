"""Every row of DESIGN.md's "Decisions where Apple is silent", as scenarios on the VirtualHost.

Each test is named after the rule it checks. Times are exact: the virtual clock fires each
timer at its deadline, and a delegate call sees `host.now` at the instant of its cause.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from extended_runtime import (
    ERROR_DOMAIN,
    App,
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    Policy,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import VirtualHost

from .conftest import T0, Call, Recorder

_R = InvalidationReason
_S = SessionState
ALARM = SessionType.SMART_ALARM
SELF_CARE = SessionType.SELF_CARE
MINDFULNESS = SessionType.MINDFULNESS
THERAPY = SessionType.PHYSICAL_THERAPY
UNDERWATER = SessionType.UNDERWATER_DEPTH
LOGGER = "extended_runtime"


def sec(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def open_session(
    host: VirtualHost,
    app: App,
    label: str = "",
    journal: list[tuple[str, Call]] | None = None,
) -> tuple[ExtendedRuntimeSession, Recorder]:
    """A new session of `app` with a recording delegate."""
    recorder = Recorder(host, label, journal)
    return ExtendedRuntimeSession(app=app, delegate=recorder), recorder


def begin(session: ExtendedRuntimeSession, call: str, when: datetime) -> None:
    """`start()` when `call` is "start", else `start_at(when)`."""
    if call == "start":
        session.start()
    else:
        session.start_at(when)


def error_code(call: Call) -> ErrorCode | None:
    return None if call.error is None else call.error.code


def ended(reason: InvalidationReason, at: datetime) -> Call:
    """The expected `did_invalidate` call for a reason without an error."""
    return Call("did_invalidate", at, reason, None)


def run_silent_alarm(host: VirtualHost, app: App) -> None:
    """An alarm session that reaches RUNNING and ends without alerting."""
    session = ExtendedRuntimeSession(app=app)
    session.start_at(host.now)
    assert session.state is _S.RUNNING
    session.invalidate()
    host.advance(0)


def run_alerting_alarm(host: VirtualHost, app: App) -> None:
    """An alarm session that alerts once, then is invalidated."""
    session = ExtendedRuntimeSession(app=app)
    session.start_at(host.now)
    session.notify_user(HapticType.NOTIFICATION, lambda _: None)
    session.invalidate()
    host.advance(0)


def set_conditions(host: VirtualHost, **changes: Any) -> None:
    host.set_conditions(replace(host.engine.conditions, **changes))


# ====================================================================== will_expire lead time


@pytest.mark.parametrize(
    ("session_type", "limit"),
    [(SELF_CARE, 600), (MINDFULNESS, 3600), (THERAPY, 3600)],
    ids=["self-care", "mindfulness", "physical-therapy"],
)
def test_will_expire_comes_60s_before_expiry(
    host: VirtualHost, session_type: SessionType, limit: int
) -> None:
    app = host.app("org.example.app", session_type)
    session, rec = open_session(host, app)
    session.start()
    host.advance(limit + 100)
    assert session.expiration_date == T0 + sec(limit)
    assert rec.calls == [
        Call("did_start", T0),
        Call("will_expire", T0 + sec(limit - 60)),
        ended(_R.EXPIRED, T0 + sec(limit)),
    ]
    assert session.state is _S.INVALID


def test_will_expire_comes_60s_before_expiry_for_smart_alarm(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    start = T0 + timedelta(hours=2)
    session.start_at(start)
    host.advance(timedelta(hours=3))
    assert session.expiration_date == start + timedelta(minutes=30)
    assert rec.calls == [
        Call("did_start", start),
        Call("will_expire", start + timedelta(minutes=29)),
        ended(_R.EXPIRED, start + timedelta(minutes=30)),
    ]


def test_will_expire_lead_is_a_policy_knob() -> None:
    host = VirtualHost(now=T0, policy=Policy(will_expire_lead=sec(150)))
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(700)
    assert rec.calls[1] == Call("will_expire", T0 + sec(450))


@pytest.mark.parametrize("how", ["invalidate", "resign", "suppress", "cpu"])
def test_will_expire_is_sent_only_when_the_session_ends_by_expiry(
    host: VirtualHost, how: str
) -> None:
    app = host.app("org.example.care", SELF_CARE)
    session, rec = open_session(host, app)
    session.start()
    host.advance(500)
    if how == "invalidate":
        session.invalidate()
    elif how == "resign":
        app.state = ApplicationState.BACKGROUND
    elif how == "suppress":
        host.set_suppressed(True)
    else:
        host.set_cpu_load(app, 8.0)
    host.advance(1000)
    assert rec.names == ["did_start", "did_invalidate"]
    assert rec.calls[1].reason is not _R.EXPIRED


def test_will_expire_right_after_did_start_when_less_than_lead_remains() -> None:
    host = VirtualHost(now=T0, policy=Policy().with_limits(self_care=45))
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    assert rec.calls == []
    host.advance(0)
    assert rec.calls == [Call("did_start", T0), Call("will_expire", T0)]
    host.advance(100)
    assert rec.calls[2:] == [ended(_R.EXPIRED, T0 + sec(45))]


def test_will_expire_right_after_did_start_for_a_late_start_at() -> None:
    """A start date 50 s in the past with a 100 s limit leaves 50 s: less than the lead."""
    host = VirtualHost(now=T0, policy=Policy().with_limits(smart_alarm=100))
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 - sec(50))
    host.advance(200)
    assert session.expiration_date == T0 + sec(50)
    assert rec.calls == [
        Call("did_start", T0),
        Call("will_expire", T0),
        ended(_R.EXPIRED, T0 + sec(50)),
    ]


def test_will_expire_is_sent_once() -> None:
    host = VirtualHost(now=T0, policy=Policy().with_limits(self_care=30))
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    for _ in range(10):
        host.advance(2)
    assert rec.names == ["did_start", "will_expire"]
    host.advance(30)
    assert rec.names == ["did_start", "will_expire", "did_invalidate"]


def test_no_will_expire_for_a_type_without_limit() -> None:
    host = VirtualHost(now=T0, policy=Policy(underwater_supported=True))
    session, rec = open_session(host, host.app("org.example.dive", UNDERWATER))
    session.start()
    host.advance(timedelta(hours=48))
    assert session.expiration_date is None
    assert session.state is _S.RUNNING
    assert rec.names == ["did_start"]


# ====================================================================== when state changes


def test_state_changes_synchronously_inside_start(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    assert session.state is _S.NOT_STARTED
    assert session.expiration_date is None
    session.start()
    assert session.state is _S.RUNNING
    assert session.expiration_date == T0 + sec(600)
    assert rec.calls == []
    host.advance(0)
    assert rec.calls == [Call("did_start", T0)]


def test_state_changes_synchronously_inside_start_at(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 + sec(60))
    assert session.state is _S.SCHEDULED
    assert session.expiration_date is None
    host.advance(59)
    assert session.state is _S.SCHEDULED
    assert rec.calls == []
    host.advance(1)
    assert session.state is _S.RUNNING
    assert session.expiration_date == T0 + sec(60 + 1800)


def test_state_changes_synchronously_inside_invalidate(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(10)
    session.invalidate()
    assert session.state is _S.INVALID
    assert session.invalidation_reason is _R.NONE
    assert rec.names == ["did_start"]
    host.advance(0)
    assert rec.calls[1:] == [ended(_R.NONE, T0 + sec(10))]


def test_expiration_date_is_kept_after_invalidation(host: VirtualHost) -> None:
    session, _ = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    session.invalidate()
    assert session.expiration_date == T0 + sec(600)
    assert session.expiration_date.tzinfo is not None
    assert session.expiration_date.utcoffset() == timedelta(0)


def test_refused_start_is_invalid_at_once(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE, state=ApplicationState.INACTIVE)
    session, rec = open_session(host, app)
    session.start()
    assert session.state is _S.INVALID
    assert session.expiration_date is None
    assert rec.calls == []


# ====================================================================== delegate delivery


def test_delegate_calls_are_never_made_from_inside_start_start_at_or_invalidate(
    host: VirtualHost,
) -> None:
    care = host.app("org.example.care", SELF_CARE)
    alarm = host.app("org.example.sleep", ALARM)
    started, started_rec = open_session(host, care)
    started.start()
    assert started_rec.calls == []
    late, late_rec = open_session(host, alarm)
    late.start_at(T0 - sec(30))
    assert late.state is _S.RUNNING
    assert late_rec.calls == []
    late.invalidate()
    assert late_rec.calls == []
    unstarted, unstarted_rec = open_session(host, care)
    unstarted.invalidate()
    assert unstarted_rec.calls == []
    refused, refused_rec = open_session(host, alarm)
    refused.start()
    assert refused_rec.calls == []
    resigned, resigned_rec = open_session(host, host.app("org.example.calm", MINDFULNESS))
    resigned.start()
    resigned.app.state = ApplicationState.BACKGROUND
    assert resigned.state is _S.INVALID
    assert resigned_rec.calls == []
    host.advance(0)
    assert started_rec.names == ["did_start"]
    assert late_rec.names == ["did_start", "did_invalidate"]
    assert unstarted_rec.names == ["did_invalidate"]
    assert refused_rec.names == ["did_invalidate"]
    assert resigned_rec.names == ["did_start", "did_invalidate"]


def test_delegate_starting_a_session_inside_did_invalidate_hears_did_start_after_return(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.care", SELF_CARE)
    journal: list[tuple[str, Call]] = []
    second, second_rec = open_session(host, app, "second", journal)
    inside: list[list[str]] = []

    class Restarter(Recorder):
        def did_invalidate(
            self,
            session: ExtendedRuntimeSession,
            reason: InvalidationReason,
            error: ExtendedRuntimeSessionError | None,
        ) -> None:
            super().did_invalidate(session, reason, error)
            second.start()
            inside.append(list(second_rec.names))

    first = ExtendedRuntimeSession(app=app, delegate=Restarter(host, "first", journal))
    first.start()
    host.advance(10)
    first.invalidate()
    host.advance(5)
    assert inside == [[]]
    assert [(label, call.name, call.at) for label, call in journal] == [
        ("first", "did_start", T0),
        ("first", "did_invalidate", T0 + sec(10)),
        ("second", "did_start", T0 + sec(10)),
    ]
    assert second.expiration_date == T0 + sec(610)


def test_host_now_inside_a_delegate_call_is_the_instant_of_its_cause(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(5000)
    assert host.now == T0 + sec(5000)
    assert [call.at for call in rec.calls] == [T0, T0 + sec(540), T0 + sec(600)]


def test_host_now_inside_did_invalidate_is_the_instant_of_invalidate(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(100)
    session.invalidate()
    host.advance(50)
    assert rec.calls[-1] == ended(_R.NONE, T0 + sec(100))


def test_delegate_calls_are_delivered_in_order_across_sessions(host: VirtualHost) -> None:
    journal: list[tuple[str, Call]] = []
    a, _ = open_session(host, host.app("org.example.a", SELF_CARE), "a", journal)
    b, _ = open_session(host, host.app("org.example.b", THERAPY), "b", journal)
    c, _ = open_session(host, host.app("org.example.c", MINDFULNESS), "c", journal)
    b.start()
    a.start()
    c.start()
    a.invalidate()
    b.invalidate()
    host.advance(0)
    assert [(label, call.name) for label, call in journal] == [
        ("b", "did_start"),
        ("a", "did_start"),
        ("c", "did_start"),
        ("a", "did_invalidate"),
        ("b", "did_invalidate"),
    ]


def test_delegate_gets_the_session_object_in_its_new_state(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(700)
    assert rec.seen == [
        (session, _S.RUNNING),
        (session, _S.RUNNING),
        (session, _S.INVALID),
    ]


def test_delegate_exception_is_logged_and_does_not_affect_the_session(
    host: VirtualHost, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(Recorder):
        def did_start(self, session: ExtendedRuntimeSession) -> None:
            super().did_start(session)
            raise RuntimeError("boom in did_start")

    rec = Failing(host)
    session = ExtendedRuntimeSession(app=host.app("org.example.care", SELF_CARE), delegate=rec)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        session.start()
        host.advance(700)
    assert rec.names == ["did_start", "will_expire", "did_invalidate"]
    assert rec.calls[-1].reason is _R.EXPIRED
    assert any(r.exc_info and "did_start" in r.getMessage() for r in caplog.records)


# ====================================================================== invalidate() rules


def test_invalidate_before_any_start_is_not_yet_started(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.invalidate()
    assert session.state is _S.INVALID
    assert session.expiration_date is None
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.ERROR
    assert error_code(call) is ErrorCode.NOT_YET_STARTED
    assert call.error is not None
    assert call.error.domain == ERROR_DOMAIN


@pytest.mark.parametrize("ending", ["expired", "invalidated", "refused", "unstarted"])
def test_invalidate_on_an_invalid_session_has_no_effect(host: VirtualHost, ending: str) -> None:
    app = host.app("org.example.care", SELF_CARE)
    session, rec = open_session(host, app)
    if ending == "expired":
        session.start()
        host.advance(700)
    elif ending == "invalidated":
        session.start()
        session.invalidate()
    elif ending == "refused":
        app.state = ApplicationState.INACTIVE
        session.start()
    else:
        session.invalidate()
    host.advance(0)
    before = list(rec.calls)
    reason = session.invalidation_reason
    session.invalidate()
    session.invalidate()
    host.advance(100)
    assert session.state is _S.INVALID
    assert session.invalidation_reason is reason
    assert rec.calls == before
    assert rec.names.count("did_invalidate") == 1


def test_invalidate_on_an_invalid_alarm_while_app_not_active_has_no_effect(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0)
    session.invalidate()
    app.state = ApplicationState.BACKGROUND
    session.invalidate()
    host.advance(0)
    assert rec.names == ["did_start", "did_invalidate"]


# ====================================================================== start twice


def _session_in(host: VirtualHost, state: SessionState) -> ExtendedRuntimeSession:
    app = host.app("org.example.sleep", ALARM)
    session = ExtendedRuntimeSession(app=app)
    if state is _S.SCHEDULED:
        session.start_at(T0 + sec(600))
    elif state is _S.RUNNING:
        session.start_at(T0)
    else:
        session.invalidate()
    assert session.state is state
    return session


@pytest.mark.parametrize("state", [_S.SCHEDULED, _S.RUNNING, _S.INVALID], ids=lambda s: s.name)
@pytest.mark.parametrize("call", ["start", "start_at"])
def test_start_or_start_at_on_a_started_session_raises_usage_error(
    host: VirtualHost, state: SessionState, call: str
) -> None:
    session = _session_in(host, state)
    engine_state = host.engine.session_state(session.session_id)
    expiration = session.expiration_date
    with pytest.raises(SessionUsageError, match=state.name):
        begin(session, call, T0 + sec(1200))
    assert session.state is state
    assert session.expiration_date == expiration
    assert host.engine.session_state(session.session_id) is engine_state
    host.advance(0)
    assert session.state is state


# ====================================================================== smart alarm via start()


def test_smart_alarm_through_start_is_unsupported_session_type(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start()
    assert session.state is _S.INVALID
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.ERROR
    assert error_code(call) is ErrorCode.UNSUPPORTED_SESSION_TYPE
    assert call.error is not None
    assert "start_at" in call.error.message
    assert not host.keep_awake_held


# ====================================================================== start_at in the past


def test_start_at_more_than_60s_in_the_past_fails_with_unknown(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 - sec(61))
    assert session.state is _S.INVALID
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.ERROR
    assert error_code(call) is ErrorCode.UNKNOWN
    assert call.error is not None
    assert "in the past" in call.error.message
    assert "61" in call.error.message


def test_start_at_up_to_60s_in_the_past_starts_at_once_with_budget_from_the_requested_date(
    host: VirtualHost,
) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 - sec(45))
    assert session.state is _S.RUNNING
    assert session.expiration_date == T0 - sec(45) + timedelta(minutes=30)
    assert host.keep_awake_held
    host.advance(timedelta(hours=1))
    assert rec.calls == [
        Call("did_start", T0),
        Call("will_expire", T0 - sec(45) + timedelta(minutes=29)),
        ended(_R.EXPIRED, T0 - sec(45) + timedelta(minutes=30)),
    ]


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
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 + offset)
    assert session.state is state
    host.advance(0)
    if code is None:
        assert "did_invalidate" not in rec.names
    else:
        assert error_code(rec.only_invalidation()) is code


# ====================================================================== precondition order


def test_precondition_order_usage_error_before_must_be_active(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    running, rec = open_session(host, app)
    running.start()
    app.state = ApplicationState.INACTIVE
    with pytest.raises(SessionUsageError):
        running.start()
    assert running.state is _S.RUNNING
    refused, _ = open_session(host, app)
    refused.start()
    app.state = ApplicationState.BACKGROUND
    with pytest.raises(SessionUsageError):
        refused.start_at(T0 + sec(60))
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


def test_not_approved_when_the_user_denied_the_app(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    host.engine.set_approved(app.app_id, False, host.now)
    session, rec = open_session(host, app)
    session.start()
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.NOT_APPROVED_TO_START_SESSION
    host.engine.set_approved(app.app_id, True, host.now)
    again, _rec2 = open_session(host, app)
    again.start()
    assert again.state is _S.RUNNING


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

    Alarms go off only when an alarm ends, so the app re-declares its mode (as
    `register_app` allows) to run a physical-therapy session meanwhile.
    """
    app = host.app("org.example.sleep", ALARM)
    for _ in range(3):
        run_silent_alarm(host, app)
    app.background_mode = THERAPY
    host.register_app(app)
    therapy = ExtendedRuntimeSession(app=app)
    therapy.start()
    assert therapy.state is _S.RUNNING
    app.background_mode = ALARM
    host.register_app(app)
    session, rec = open_session(host, app)
    session.start_at(T0 + sec(600))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.BAR_DISABLED
    assert therapy.state is _S.RUNNING


def test_precondition_order_session_in_progress_before_suppressed(host: VirtualHost) -> None:
    """A scheduled alarm, then the app re-declares itself self-care and starts while paused."""
    app = host.app("org.example.app", ALARM)
    scheduled = ExtendedRuntimeSession(app=app)
    scheduled.start_at(T0 + sec(600))
    host.set_suppressed(True)
    app.background_mode = SELF_CARE
    host.register_app(app)
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


def test_precondition_order_auto_launch_unsupported_before_must_be_active_to_prompt(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.care", SELF_CARE, state=ApplicationState.BACKGROUND)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    assert caught.value.code is ErrorCode.UNSUPPORTED_SESSION_TYPE


# ====================================================================== timers at one instant


def test_timers_due_at_same_instant_end_before_start(host: VirtualHost) -> None:
    """The start is armed first, so insertion order alone would start first."""
    journal: list[tuple[str, Call]] = []
    alarm, _ = open_session(host, host.app("org.example.sleep", ALARM), "alarm", journal)
    alarm.start_at(T0 + sec(600))
    care, _ = open_session(host, host.app("org.example.care", SELF_CARE), "care", journal)
    care.start()
    host.advance(600)
    assert [(label, call.name, call.at) for label, call in journal][-2:] == [
        ("care", "did_invalidate", T0 + sec(600)),
        ("alarm", "did_start", T0 + sec(600)),
    ]


def test_timers_due_at_same_instant_start_before_warning(host: VirtualHost) -> None:
    journal: list[tuple[str, Call]] = []
    care, _ = open_session(host, host.app("org.example.care", SELF_CARE), "care", journal)
    care.start()
    alarm, _ = open_session(host, host.app("org.example.sleep", ALARM), "alarm", journal)
    alarm.start_at(T0 + sec(540))
    host.advance(540)
    assert [(label, call.name, call.at) for label, call in journal][-2:] == [
        ("alarm", "did_start", T0 + sec(540)),
        ("care", "will_expire", T0 + sec(540)),
    ]


def test_timers_due_at_same_instant_warning_before_alert() -> None:
    """An alert timer armed before a warning due at the same instant still comes after it."""
    host = VirtualHost(now=T0, policy=Policy().with_limits(self_care=120))
    order: list[tuple[str, datetime]] = []
    alarm = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM))
    alarm.start_at(T0)

    def every_minute(haptic: HapticType) -> float:
        order.append(("repeat", host.now))
        return 60.0

    alarm.notify_user(HapticType.NOTIFICATION, every_minute)
    host.advance(0)

    class Warned(Recorder):
        def will_expire(self, session: ExtendedRuntimeSession) -> None:
            order.append(("will_expire", host.now))

    care = ExtendedRuntimeSession(app=host.app("org.example.care", SELF_CARE))
    care.delegate = Warned(host)
    care.start()
    host.advance(60)
    assert order == [
        ("repeat", T0),
        ("will_expire", T0 + sec(60)),
        ("repeat", T0 + sec(60)),
    ]
    assert [a.at for a in host.alerts] == [T0, T0 + sec(60)]


def test_timers_due_at_same_instant_end_before_alert(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0)
    session.notify_user(HapticType.DIRECTION_UP, lambda _: 60.0)
    host.advance(timedelta(hours=1))
    times = [a.at for a in host.alerts]
    assert times == [T0 + sec(60 * i) for i in range(30)]
    assert rec.calls[-1] == ended(_R.EXPIRED, T0 + sec(1800))


def test_timers_due_at_same_instant_end_before_host_alert(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(T0 + sec(60))
    host.terminate(app)
    host.advance(timedelta(hours=1))
    times = [a.at for a in host.alerts]
    assert len(times) == 600
    assert times[-1] == T0 + sec(60 + 1797)
    assert all(a.by_host for a in host.alerts)


# ====================================================================== one session per app


@pytest.mark.parametrize("first_state", ["running", "scheduled"])
def test_second_session_while_one_is_running_or_scheduled_is_session_in_progress(
    host: VirtualHost, first_state: str
) -> None:
    app = host.app("org.example.sleep", ALARM)
    first, first_rec = open_session(host, app)
    first.start_at(T0 if first_state == "running" else T0 + sec(600))
    state = first.state
    expiration = first.expiration_date
    second, second_rec = open_session(host, app)
    second.start_at(T0 + sec(900))
    assert second.state is _S.INVALID
    host.advance(0)
    call = second_rec.only_invalidation()
    assert call.reason is _R.SESSION_IN_PROGRESS
    assert call.error is None
    assert first.state is state
    assert first.expiration_date == expiration
    assert "did_invalidate" not in first_rec.names


def test_second_session_of_a_running_frontmost_app_is_session_in_progress(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.care", SELF_CARE)
    first, first_rec = open_session(host, app)
    first.start()
    second, second_rec = open_session(host, app)
    second.start()
    host.advance(700)
    assert second_rec.only_invalidation().reason is _R.SESSION_IN_PROGRESS
    assert first_rec.names == ["did_start", "will_expire", "did_invalidate"]
    assert first_rec.calls[-1].reason is _R.EXPIRED


def test_sessions_of_different_apps_run_side_by_side(host: VirtualHost) -> None:
    a, _a_rec = open_session(host, host.app("org.example.a", SELF_CARE))
    b, _b_rec = open_session(host, host.app("org.example.b", SELF_CARE))
    a.start()
    b.start()
    assert a.state is b.state is _S.RUNNING
    assert len(host.engine.running_sessions()) == 2


def test_a_new_session_may_start_after_the_first_ends(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    first, _ = open_session(host, app)
    first.start()
    first.invalidate()
    second, _rec = open_session(host, app)
    second.start()
    assert second.state is _S.RUNNING


# ====================================================================== no background mode


@pytest.mark.parametrize("call", ["start", "start_at"])
def test_app_without_background_mode_is_not_approved_to_start(host: VirtualHost, call: str) -> None:
    session, rec = open_session(host, host.app("org.example.plain", None))
    assert session.session_type is None
    begin(session, call, T0 + sec(60))
    host.advance(0)
    call_ = rec.only_invalidation()
    assert call_.reason is _R.ERROR
    assert error_code(call_) is ErrorCode.NOT_APPROVED_TO_START_SESSION


# ====================================================================== alarm invalidate rules


@pytest.mark.parametrize("app_state", [ApplicationState.INACTIVE, ApplicationState.BACKGROUND])
@pytest.mark.parametrize("session_state", [_S.SCHEDULED, _S.RUNNING], ids=lambda s: s.name)
def test_invalidate_of_smart_alarm_while_app_not_active_raises_must_be_active(
    host: VirtualHost, app_state: ApplicationState, session_state: SessionState
) -> None:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0 if session_state is _S.RUNNING else T0 + sec(600))
    app.state = app_state
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        session.invalidate()
    assert caught.value.code is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE
    assert caught.value.domain == ERROR_DOMAIN
    assert session.state is session_state
    assert host.engine.session_state(session.session_id) is session_state
    host.advance(0)
    assert "did_invalidate" not in rec.names


@pytest.mark.parametrize("session_state", [_S.SCHEDULED, _S.RUNNING], ids=lambda s: s.name)
def test_user_can_always_stop_an_alarm_reason_none(
    host: VirtualHost, session_state: SessionState
) -> None:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0 if session_state is _S.RUNNING else T0 + sec(600))
    app.state = ApplicationState.BACKGROUND
    host.advance(30)
    host.stop_alarm(app)
    assert session.state is _S.INVALID
    host.advance(0)
    assert rec.calls[-1] == ended(_R.NONE, T0 + sec(30))
    assert not host.keep_awake_held


def test_stop_alarm_leaves_other_types_alone(host: VirtualHost) -> None:
    app = host.app("org.example.pt", THERAPY)
    session, _ = open_session(host, app)
    session.start()
    host.stop_alarm(app)
    assert session.state is _S.RUNNING


def test_invalidate_of_a_background_type_works_while_app_not_active(host: VirtualHost) -> None:
    app = host.app("org.example.pt", THERAPY)
    session, rec = open_session(host, app)
    session.start()
    app.state = ApplicationState.BACKGROUND
    session.invalidate()
    host.advance(0)
    assert rec.calls[-1] == ended(_R.NONE, T0)


# ====================================================================== notify_user


def running_alarm(host: VirtualHost) -> tuple[App, ExtendedRuntimeSession, Recorder]:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0)
    assert session.state is _S.RUNNING
    return app, session, rec


def test_notify_user_first_alert_plays_at_once_inside_the_call(host: VirtualHost) -> None:
    app, session, _ = running_alarm(host)
    host.advance(5)
    assert host.alerts == []
    session.notify_user(HapticType.SUCCESS)
    assert len(host.alerts) == 1
    alert = host.alerts[0]
    assert (alert.at, alert.app_id, alert.session_id) == (
        T0 + sec(5),
        app.app_id,
        session.session_id,
    )
    assert alert.haptic is HapticType.SUCCESS
    assert not alert.by_host


def test_notify_user_default_interval_is_3s(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.RETRY)
    host.advance(10)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(3), T0 + sec(6), T0 + sec(9)]
    assert {a.haptic for a in host.alerts} == {HapticType.RETRY}


def test_notify_user_repeat_handler_is_called_after_each_play_with_the_haptic_played(
    host: VirtualHost,
) -> None:
    _, session, _ = running_alarm(host)
    seen: list[tuple[HapticType, datetime]] = []

    def handler(played: HapticType) -> float:
        seen.append((played, host.now))
        return 2.5

    session.notify_user(HapticType.CLICK, handler)
    host.advance(6)
    assert seen == [
        (HapticType.CLICK, T0),
        (HapticType.CLICK, T0 + sec(2.5)),
        (HapticType.CLICK, T0 + sec(5)),
    ]
    assert [a.at for a in host.alerts] == [T0, T0 + sec(2.5), T0 + sec(5)]


@pytest.mark.parametrize("result", [0, 0.0, -1.0, -0.001, math.nan, None], ids=repr)
def test_notify_user_handler_result_zero_negative_nan_or_none_stops(
    host: VirtualHost, result: float | None
) -> None:
    _, session, _ = running_alarm(host)
    calls: list[datetime] = []

    def handler(played: HapticType) -> float | None:
        calls.append(host.now)
        return result

    session.notify_user(HapticType.NOTIFICATION, handler)
    host.advance(600)
    assert len(host.alerts) == 1
    assert calls == [T0]
    assert session.state is _S.RUNNING


@pytest.mark.parametrize("result", [60.0001, 61, 3600.0, math.inf], ids=repr)
def test_notify_user_interval_above_60s_is_clamped_to_60(host: VirtualHost, result: float) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION, lambda _: result)
    host.advance(200)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(60), T0 + sec(120), T0 + sec(180)]


def test_notify_user_interval_of_exactly_60s_is_kept(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION, lambda _: 60)
    host.advance(130)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(60), T0 + sec(120)]


def test_notify_user_handler_exception_stops_and_is_logged(
    host: VirtualHost, caplog: pytest.LogCaptureFixture
) -> None:
    _, session, _ = running_alarm(host)

    def handler(played: HapticType) -> float:
        raise ValueError("handler broke")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        session.notify_user(HapticType.NOTIFICATION, handler)
        host.advance(120)
    assert len(host.alerts) == 1
    assert session.state is _S.RUNNING
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1
    assert "repeat handler" in logged[0].getMessage()
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], ValueError)


def test_notify_user_again_replaces_the_current_repetition(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    first_calls: list[datetime] = []

    def first(played: HapticType) -> float:
        first_calls.append(host.now)
        return 3.0

    session.notify_user(HapticType.DIRECTION_UP, first)
    host.advance(4)
    session.notify_user(HapticType.DIRECTION_DOWN, lambda _: 10.0)
    host.advance(30)
    assert [(a.at, a.haptic) for a in host.alerts] == [
        (T0, HapticType.DIRECTION_UP),
        (T0 + sec(3), HapticType.DIRECTION_UP),
        (T0 + sec(4), HapticType.DIRECTION_DOWN),
        (T0 + sec(14), HapticType.DIRECTION_DOWN),
        (T0 + sec(24), HapticType.DIRECTION_DOWN),
        (T0 + sec(34), HapticType.DIRECTION_DOWN),
    ]
    assert first_calls == [T0, T0 + sec(3)]


def test_notify_user_again_before_the_handler_answers_replaces_it(host: VirtualHost) -> None:
    """The first handler's pending answer is stale once notify_user is called again."""
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.DIRECTION_UP, lambda _: 1.0)
    session.notify_user(HapticType.START, lambda _: 5.0)
    host.advance(12)
    assert [(a.at, a.haptic) for a in host.alerts] == [
        (T0, HapticType.DIRECTION_UP),
        (T0, HapticType.START),
        (T0 + sec(5), HapticType.START),
        (T0 + sec(10), HapticType.START),
    ]


def test_notify_user_alert_due_at_the_very_instant_the_session_ends_does_not_play(
    host: VirtualHost,
) -> None:
    _, session, rec = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION)
    host.advance(timedelta(hours=1))
    times = [a.at for a in host.alerts]
    assert len(times) == 600
    assert times[-1] == T0 + sec(1797)
    assert T0 + sec(1800) not in times
    assert rec.calls[-1] == ended(_R.EXPIRED, T0 + sec(1800))


def test_notify_user_handler_tuple_changes_the_next_haptic(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    cycle = [HapticType.DIRECTION_UP, HapticType.DIRECTION_DOWN]

    def handler(played: HapticType) -> tuple[float, HapticType]:
        return 1.0, cycle[int(played is HapticType.DIRECTION_UP)]

    session.notify_user(HapticType.SUCCESS, handler)
    host.advance(3.5)
    assert [a.haptic for a in host.alerts] == [
        HapticType.SUCCESS,
        HapticType.DIRECTION_UP,
        HapticType.DIRECTION_DOWN,
        HapticType.DIRECTION_UP,
    ]


@pytest.mark.parametrize(
    "result",
    [
        "soon",
        b"1",
        [5.0],
        True,
        (5.0, "x"),
        (5.0, 99),
        (5.0, True),
        (5.0, 1, 2),
        ("5", 1),
        object(),
    ],
    ids=lambda v: type(v).__name__ + ":" + repr(v)[:12],
)
def test_notify_user_garbage_handler_result_stops_and_warns(
    host: VirtualHost, caplog: pytest.LogCaptureFixture, result: object
) -> None:
    _, session, _ = running_alarm(host)

    def handler(played: HapticType) -> Any:
        return result

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        session.notify_user(HapticType.NOTIFICATION, handler)
        host.advance(120)
    assert len(host.alerts) == 1
    assert session.state is _S.RUNNING
    assert any("repeat handler" in r.getMessage() for r in caplog.records)


def test_notify_user_repetition_ends_with_the_session(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION)
    host.advance(7)
    session.invalidate()
    host.advance(600)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(3), T0 + sec(6)]


@pytest.mark.parametrize("case", ["not-started", "scheduled", "invalid", "self-care", "therapy"])
def test_notify_user_is_ignored_with_a_warning_unless_running_smart_alarm(
    host: VirtualHost, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    mode = {"self-care": SELF_CARE, "therapy": THERAPY}.get(case, ALARM)
    session, _rec = open_session(host, host.app("org.example.app", mode))
    if case == "scheduled":
        session.start_at(T0 + sec(600))
    elif case == "invalid":
        session.start_at(T0)
        session.invalidate()
    elif case in ("self-care", "therapy"):
        session.start()
    state = session.state
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        session.notify_user(HapticType.NOTIFICATION)
        host.advance(30)
    assert host.alerts == []
    assert session.state is state
    assert any("notify_user ignored" in r.getMessage() for r in caplog.records)


# ====================================================================== silent alarms


def test_three_silent_alarms_disable_alarms(
    host: VirtualHost, caplog: pytest.LogCaptureFixture
) -> None:
    app = host.app("org.example.sleep", ALARM)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            run_silent_alarm(host, app)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("ended without alerting" in m for m in messages) == 3
    assert sum("disabled" in m for m in messages) == 1
    assert host.engine.alarms_disabled(app.app_id)
    session, rec = open_session(host, app)
    session.start_at(T0 + sec(600))
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.ERROR
    assert error_code(call) is ErrorCode.BAR_DISABLED


def test_alarms_work_again_once_the_user_allows_them(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    for _ in range(3):
        run_silent_alarm(host, app)
    host.allow_alarms(app)
    assert not host.engine.alarms_disabled(app.app_id)
    session, rec = open_session(host, app)
    session.start_at(T0 + sec(600))
    host.advance(0)
    assert session.state is _S.SCHEDULED
    assert rec.calls == []
    session.invalidate()
    for _ in range(2):  # the count starts again from zero
        run_silent_alarm(host, app)
    assert not host.engine.alarms_disabled(app.app_id)


def test_two_silent_alarms_do_not_disable_alarms(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    for _ in range(2):
        run_silent_alarm(host, app)
    session, _ = open_session(host, app)
    session.start_at(T0 + sec(600))
    assert session.state is _S.SCHEDULED


def test_an_expired_silent_alarm_counts(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    expired = ExtendedRuntimeSession(app=app)
    expired.start_at(T0)
    host.advance(timedelta(hours=1))
    assert expired.invalidation_reason is _R.EXPIRED
    run_silent_alarm(host, app)
    assert not host.engine.alarms_disabled(app.app_id)
    run_silent_alarm(host, app)
    assert host.engine.alarms_disabled(app.app_id)


def test_an_alerting_alarm_resets_the_silent_count(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    run_silent_alarm(host, app)
    run_silent_alarm(host, app)
    run_alerting_alarm(host, app)
    run_silent_alarm(host, app)
    run_silent_alarm(host, app)
    assert not host.engine.alarms_disabled(app.app_id)
    run_silent_alarm(host, app)
    assert host.engine.alarms_disabled(app.app_id)


def test_only_alarms_that_reached_running_count_as_silent(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    run_silent_alarm(host, app)
    run_silent_alarm(host, app)
    for _ in range(3):
        cancelled = ExtendedRuntimeSession(app=app)
        cancelled.start_at(T0 + sec(600))
        cancelled.invalidate()
        refused = ExtendedRuntimeSession(app=app)
        refused.start_at(T0 + timedelta(hours=40))
    host.advance(0)
    assert not host.engine.alarms_disabled(app.app_id)
    run_silent_alarm(host, app)
    assert host.engine.alarms_disabled(app.app_id)


def test_silent_alarms_disable_only_that_app(host: VirtualHost) -> None:
    quiet = host.app("org.example.quiet", ALARM)
    other = host.app("org.example.other", ALARM)
    for _ in range(3):
        run_silent_alarm(host, quiet)
    session = ExtendedRuntimeSession(app=other)
    session.start_at(T0 + sec(600))
    assert session.state is _S.SCHEDULED


# ====================================================================== suppression


def test_set_suppressed_ends_running_sessions(host: VirtualHost) -> None:
    sessions = []
    for app_id, mode in [("a", SELF_CARE), ("b", THERAPY), ("c", MINDFULNESS), ("d", ALARM)]:
        session, rec = open_session(host, host.app(f"org.example.{app_id}", mode))
        if mode is ALARM:
            session.start_at(T0)
        else:
            session.start()
        sessions.append((session, rec))
    host.advance(20)
    assert host.keep_awake_held
    host.set_suppressed(True)
    assert not host.keep_awake_held
    assert host.engine.running_sessions() == {}
    host.advance(0)
    for session, rec in sessions:
        assert session.state is _S.INVALID
        assert rec.calls[-1] == ended(_R.SUPPRESSED_BY_SYSTEM, T0 + sec(20))


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS, THERAPY])
def test_start_fails_while_suppressed(host: VirtualHost, mode: SessionType) -> None:
    host.set_suppressed(True)
    session, rec = open_session(host, host.app("org.example.app", mode))
    session.start()
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.SUPPRESSED_BY_SYSTEM
    assert call.error is None
    assert not host.keep_awake_held


def test_start_works_again_after_suppression_is_lifted(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    host.set_suppressed(True)
    host.set_suppressed(False)
    session, _ = open_session(host, app)
    session.start()
    assert session.state is _S.RUNNING


def test_start_at_while_suppressed_still_schedules_and_ends_suppressed_if_paused_at_its_date(
    host: VirtualHost,
) -> None:
    host.set_suppressed(True)
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 + sec(600))
    assert session.state is _S.SCHEDULED
    host.advance(599)
    assert session.state is _S.SCHEDULED
    host.advance(1)
    assert session.state is _S.INVALID
    assert session.expiration_date is None
    assert not host.keep_awake_held
    assert rec.calls == [ended(_R.SUPPRESSED_BY_SYSTEM, T0 + sec(600))]


def test_scheduled_session_runs_if_suppression_is_lifted_before_its_date(
    host: VirtualHost,
) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 + sec(600))
    host.set_suppressed(True)
    host.advance(300)
    assert session.state is _S.SCHEDULED
    host.set_suppressed(False)
    host.advance(300)
    assert session.state is _S.RUNNING
    assert rec.calls == [Call("did_start", T0 + sec(600))]


def test_scheduled_session_whose_date_is_now_ends_suppressed_if_paused(
    host: VirtualHost,
) -> None:
    host.set_suppressed(True)
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0 - sec(10))
    assert session.state is _S.INVALID
    host.advance(0)
    assert rec.only_invalidation().reason is _R.SUPPRESSED_BY_SYSTEM


def test_power_saver_does_not_suppress_alarm(host: VirtualHost) -> None:
    running, _running_rec = open_session(host, host.app("org.example.a", ALARM))
    running.start_at(T0)
    scheduled, scheduled_rec = open_session(host, host.app("org.example.b", ALARM))
    scheduled.start_at(T0 + sec(600))
    set_conditions(host, power_saver=True)
    host.advance(600)
    assert running.state is _S.RUNNING
    assert scheduled.state is _S.RUNNING
    assert scheduled_rec.calls == [Call("did_start", T0 + sec(600))]
    late, _ = open_session(host, host.app("org.example.c", ALARM))
    late.start_at(host.now)
    assert late.state is _S.RUNNING


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS, THERAPY])
def test_power_saver_suppresses_frontmost_and_physical_therapy(
    host: VirtualHost, mode: SessionType
) -> None:
    running, running_rec = open_session(host, host.app("org.example.a", mode))
    running.start()
    set_conditions(host, power_saver=True)
    host.advance(0)
    assert running_rec.calls[-1] == ended(_R.SUPPRESSED_BY_SYSTEM, T0)
    fresh, fresh_rec = open_session(host, host.app("org.example.b", mode))
    fresh.start()
    host.advance(0)
    assert fresh_rec.only_invalidation().reason is _R.SUPPRESSED_BY_SYSTEM


def test_shutting_down_suppresses_everything_including_alarms(host: VirtualHost) -> None:
    alarm, alarm_rec = open_session(host, host.app("org.example.a", ALARM))
    alarm.start_at(T0)
    set_conditions(host, shutting_down=True)
    host.advance(0)
    assert alarm_rec.calls[-1] == ended(_R.SUPPRESSED_BY_SYSTEM, T0)


@pytest.mark.parametrize(
    ("percent", "charging", "suppressed"),
    [(20.0, False, True), (3.0, False, True), (20.5, False, False), (5.0, True, False)],
)
def test_battery_under_threshold_suppresses_physical_therapy_but_not_alarm(
    host: VirtualHost, percent: float, charging: bool, suppressed: bool
) -> None:
    set_conditions(host, battery_percent=percent, charging=charging)
    therapy, _ = open_session(host, host.app("org.example.pt", THERAPY))
    therapy.start()
    alarm, _ = open_session(host, host.app("org.example.sleep", ALARM))
    alarm.start_at(T0)
    assert therapy.state is (_S.INVALID if suppressed else _S.RUNNING)
    assert alarm.state is _S.RUNNING


# ====================================================================== CPU limit


def test_cpu_over_budget_ends_exceeded_resource_limits(host: VirtualHost) -> None:
    """0.75 cores against a 0.5 budget: 30/60 at 40 s is not above it; 33.75/60 at 45 s is."""
    app = host.app("org.example.pt", THERAPY)
    session, rec = open_session(host, app)
    host.set_cpu_load(app, 0.75)
    session.start()
    host.advance(44)
    assert session.state is _S.RUNNING
    host.advance(100)
    call = rec.calls[-1]
    assert (call.name, call.at, call.reason) == ("did_invalidate", T0 + sec(45), _R.ERROR)
    assert error_code(call) is ErrorCode.EXCEEDED_RESOURCE_LIMITS
    assert not host.keep_awake_held


def test_cpu_over_budget_frontmost_budget_is_one_core(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    session, rec = open_session(host, app)
    host.set_cpu_load(app, 1.5)
    session.start()
    host.advance(100)
    assert rec.calls[-1].at == T0 + sec(45)
    assert error_code(rec.calls[-1]) is ErrorCode.EXCEEDED_RESOURCE_LIMITS


@pytest.mark.parametrize(("mode", "cores"), [(THERAPY, 0.5), (SELF_CARE, 1.0), (ALARM, 0.5)])
def test_cpu_exactly_at_budget_is_not_over(
    host: VirtualHost, mode: SessionType, cores: float
) -> None:
    app = host.app("org.example.app", mode)
    session, rec = open_session(host, app)
    host.set_cpu_load(app, cores)
    if mode is ALARM:
        session.start_at(T0)
    else:
        session.start()
    host.advance(timedelta(hours=2))
    assert rec.calls[-1].reason is _R.EXPIRED


def test_cpu_time_before_start_counts_zero(host: VirtualHost) -> None:
    app = host.app("org.example.pt", THERAPY)
    host.set_cpu_load(app, 4.0)
    host.advance(120)
    host.set_cpu_load(app, 0.25)
    session, rec = open_session(host, app)
    session.start()
    host.advance(timedelta(hours=2))
    assert rec.calls[-1].reason is _R.EXPIRED


def test_cpu_brief_spike_is_amortised_over_60s(host: VirtualHost) -> None:
    """3 cores for 10 s is 30/60 = 0.5 (allowed); for 11 s it is 33/60 (not)."""
    for app_id, spike in [("org.example.short", 10), ("org.example.long", 11)]:
        app = host.app(app_id, THERAPY)
        session, rec = open_session(host, app)
        start = host.now
        host.set_cpu_load(app, 3.0)
        session.start()
        host.advance(spike)
        host.set_cpu_load(app, 0.0)
        host.advance(120)
        if spike == 10:
            assert session.state is _S.RUNNING
            session.invalidate()
        else:
            assert rec.calls[-1].at == start + sec(15)
            assert error_code(rec.calls[-1]) is ErrorCode.EXCEEDED_RESOURCE_LIMITS


def test_cpu_window_slides_over_the_last_60s(host: VirtualHost) -> None:
    """After 10 min at 0.25 cores, 0.75 cores: above 0.5 on average once 30 s of it are in."""
    app = host.app("org.example.pt", THERAPY)
    session, rec = open_session(host, app)
    host.set_cpu_load(app, 0.25)
    session.start()
    host.advance(600)
    host.set_cpu_load(app, 0.75)
    host.advance(34)
    assert session.state is _S.RUNNING
    host.advance(10)
    assert rec.calls[-1].at == T0 + sec(635)
    assert error_code(rec.calls[-1]) is ErrorCode.EXCEEDED_RESOURCE_LIMITS


def test_cpu_budget_is_a_policy_knob() -> None:
    host = VirtualHost(now=T0, policy=Policy(cpu_budget_background=0.25))
    app = host.app("org.example.pt", THERAPY)
    session, rec = open_session(host, app)
    host.set_cpu_load(app, 0.375)
    session.start()
    host.advance(100)
    assert rec.calls[-1].at == T0 + sec(45)


# ====================================================================== auto-launch


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS, THERAPY, UNDERWATER, None])
def test_auto_launch_is_unsupported_for_types_other_than_smart_alarm(
    host: VirtualHost, mode: SessionType | None
) -> None:
    app = host.app("org.example.app", mode)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    assert caught.value.code is ErrorCode.UNSUPPORTED_SESSION_TYPE
    assert caught.value.domain == ERROR_DOMAIN


@pytest.mark.parametrize("state", [ApplicationState.INACTIVE, ApplicationState.BACKGROUND])
def test_auto_launch_must_be_active_to_prompt_when_never_asked(
    host: VirtualHost, state: ApplicationState
) -> None:
    app = host.app("org.example.sleep", ALARM, state=state)
    host.set_auto_launch_answer(app, True)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    assert caught.value.code is ErrorCode.MUST_BE_ACTIVE_TO_PROMPT
    assert host.engine.auto_launch_status(app.app_id) is AutoLaunchAuthorizationStatus.UNKNOWN


def test_auto_launch_status_is_unknown_until_asked(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    assert host.engine.auto_launch_status(app.app_id) is AutoLaunchAuthorizationStatus.UNKNOWN


def test_auto_launch_never_set_answer_is_inactive(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    status = ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    assert status is AutoLaunchAuthorizationStatus.INACTIVE


def test_auto_launch_user_is_asked_once(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    request = ExtendedRuntimeSession.request_auto_launch_authorization_status
    assert request(app) is AutoLaunchAuthorizationStatus.ACTIVE
    host.set_auto_launch_answer(app, False)
    assert request(app) is AutoLaunchAuthorizationStatus.ACTIVE
    app.state = ApplicationState.BACKGROUND
    assert request(app) is AutoLaunchAuthorizationStatus.ACTIVE


def test_auto_launch_declined_answer_is_kept(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    request = ExtendedRuntimeSession.request_auto_launch_authorization_status
    assert request(app) is AutoLaunchAuthorizationStatus.INACTIVE
    host.set_auto_launch_answer(app, True)
    app.state = ApplicationState.INACTIVE
    assert request(app) is AutoLaunchAuthorizationStatus.INACTIVE


def test_auto_launch_async_twin_gives_the_same_answer(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    request = ExtendedRuntimeSession.request_auto_launch_authorization_status_async
    assert asyncio.run(request(app)) is AutoLaunchAuthorizationStatus.ACTIVE


def test_auto_launch_active_relaunches_through_on_session_with_session_running(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM, launch=["sleep-app", "--alarm"])
    host.set_auto_launch_answer(app, True)
    ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
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


# ====================================================================== not running at start


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
    assert len(heard) == 1
    assert heard[0].names.count("did_invalidate") == 1
    assert heard[0].calls[-1].reason is _R.NONE
    # a missed call is delivered at the launch that hands it over, never in the past
    assert heard[0].calls[-1].at == start + sec(610)


def test_scheduled_start_while_app_not_running_host_alerts_until_expiry(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(T0 + sec(60))
    host.terminate(app)
    host.advance(timedelta(hours=2))
    assert len(host.alerts) == 600
    assert not host.keep_awake_held
    assert host.engine.running_sessions() == {}


def test_host_alert_counts_as_alerting_for_the_silent_rule(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    for _ in range(2):
        run_silent_alarm(host, app)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(host.now + sec(60))
    host.terminate(app)
    host.advance(timedelta(hours=1))
    host.launch(app)
    for _ in range(2):
        run_silent_alarm(host, app)
    assert not host.engine.alarms_disabled(app.app_id)


# ====================================================================== relaunch


def _relaunch_setup(host: VirtualHost) -> tuple[App, datetime, list[ExtendedRuntimeSession]]:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    start = T0 + timedelta(hours=1)
    ExtendedRuntimeSession(app=app).start_at(start)
    host.terminate(app)
    handed: list[ExtendedRuntimeSession] = []
    app.on_session(handed.append)
    return app, start, handed


def test_relaunch_without_delegate_within_10s_ends_with_unknown(host: VirtualHost) -> None:
    _app, _start, handed = _relaunch_setup(host)
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
    assert "10" in session.error.message
    assert not host.keep_awake_held


def test_relaunch_with_delegate_set_within_10s_runs_on(host: VirtualHost) -> None:
    _app, start, handed = _relaunch_setup(host)
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
    session = ExtendedRuntimeSession(app=host.app("org.example.pt", THERAPY))
    session.start()
    host.advance(1800)
    assert session.state is _S.RUNNING


def test_relaunched_app_starts_background_user_launch_starts_active(host: VirtualHost) -> None:
    app, _start, _handed = _relaunch_setup(host)
    assert app.state is ApplicationState.BACKGROUND
    host.advance(timedelta(hours=1))
    assert app.state is ApplicationState.BACKGROUND
    other = host.app("org.example.pt", THERAPY)
    host.terminate(other)
    host.launch(other)
    assert other.state is ApplicationState.ACTIVE


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


# ====================================================================== app exits


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS])
def test_app_exit_frontmost_ends_resigned_frontmost(host: VirtualHost, mode: SessionType) -> None:
    app = host.app("org.example.app", mode)
    session, rec = open_session(host, app)
    session.start()
    host.advance(60)
    host.terminate(app)
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
    app = host.app("org.example.pt", THERAPY)
    host.set_auto_launch_answer(app, True)
    session, rec = open_session(host, app)
    session.start()
    host.advance(60)
    host.terminate(app)
    assert host.engine.running_sessions() == {}
    assert not host.keep_awake_held
    assert host.launches == []
    assert session.invalidation_reason is _R.ERROR
    assert session.error is not None
    assert session.error.code is ErrorCode.UNKNOWN
    assert "physical-therapy" in session.error.message
    host.advance(60)
    assert rec.names == ["did_start"]


def test_app_exit_physical_therapy_old_object_reads_true_state(host: VirtualHost) -> None:
    """The exited process's object hears nothing more, but its state is still the truth."""
    app = host.app("org.example.pt", THERAPY)
    session, rec = open_session(host, app)
    session.start()
    host.advance(0)
    host.terminate(app)
    assert session.state is _S.INVALID
    host.advance(10)
    assert session.invalidation_reason is _R.ERROR
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
    assert all(a.by_host for a in host.alerts if a.at > T0 + sec(2))


def test_app_exit_smart_alarm_with_auto_launch_relaunches_into_running_session(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    session, rec = open_session(host, app)
    session.start_at(T0)
    host.advance(0)
    heard: list[tuple[ExtendedRuntimeSession, Recorder]] = []

    @app.on_session
    def handle(handed: ExtendedRuntimeSession) -> None:
        recorder = Recorder(host)
        handed.delegate = recorder
        heard.append((handed, recorder))

    host.advance(120)
    host.terminate(app)
    assert host.launches == [(T0 + sec(120), app.app_id)]
    assert host.keep_awake_held
    host.advance(timedelta(hours=1))
    assert len(heard) == 1
    handed, recorder = heard[0]
    assert handed.expiration_date == T0 + sec(1800)
    assert recorder.names[-2:] == ["will_expire", "did_invalidate"]
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


# ====================================================================== frontmost


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS])
def test_frontmost_ends_resigned_frontmost_when_app_becomes_background(
    host: VirtualHost, mode: SessionType
) -> None:
    app = host.app("org.example.app", mode)
    session, rec = open_session(host, app)
    session.start()
    host.advance(30)
    app.state = ApplicationState.BACKGROUND
    assert session.state is _S.INVALID
    assert rec.names == ["did_start"]
    host.advance(0)
    assert rec.calls[-1] == ended(_R.RESIGNED_FRONTMOST, T0 + sec(30))


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS])
def test_frontmost_keeps_running_when_app_becomes_inactive(
    host: VirtualHost, mode: SessionType
) -> None:
    app = host.app("org.example.app", mode)
    session, rec = open_session(host, app)
    session.start()
    app.state = ApplicationState.INACTIVE
    host.advance(100)
    app.state = ApplicationState.ACTIVE
    host.advance(100)
    assert session.state is _S.RUNNING
    assert rec.names == ["did_start"]


@pytest.mark.parametrize("mode", [THERAPY, ALARM])
def test_background_types_keep_running_when_app_becomes_background(
    host: VirtualHost, mode: SessionType
) -> None:
    app = host.app("org.example.app", mode)
    session, _ = open_session(host, app)
    if mode is ALARM:
        session.start_at(T0)
    else:
        session.start()
    app.state = ApplicationState.BACKGROUND
    host.advance(300)
    assert session.state is _S.RUNNING


@pytest.mark.parametrize("call", ["start", "start_at"])
def test_start_and_start_at_need_active_not_just_inactive(host: VirtualHost, call: str) -> None:
    mode = SELF_CARE if call == "start" else ALARM
    app = host.app("org.example.app", mode, state=ApplicationState.INACTIVE)
    session, rec = open_session(host, app)
    begin(session, call, T0 + sec(60))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE


# ====================================================================== 36 h and time


def test_time_zone_of_start_at_does_not_move_instant(host: VirtualHost) -> None:
    pacific = timezone(timedelta(hours=-8))
    start = T0 + timedelta(hours=2)
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(start.astimezone(pacific))
    host.advance(timedelta(hours=3))
    assert rec.calls[0] == Call("did_start", start)
    assert session.expiration_date == start + timedelta(minutes=30)
    assert session.expiration_date is not None
    assert session.expiration_date.utcoffset() == timedelta(0)


def test_36h_horizon_is_measured_in_utc_whatever_the_zone(host: VirtualHost) -> None:
    far_east = timezone(timedelta(hours=14))
    app = host.app("org.example.sleep", ALARM)
    ok = ExtendedRuntimeSession(app=app)
    ok.start_at((T0 + timedelta(hours=36)).astimezone(far_east))
    assert ok.state is _S.SCHEDULED
    ok.invalidate()
    late, rec = open_session(host, app)
    late.start_at((T0 + timedelta(hours=36, seconds=1)).astimezone(far_east))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE


def test_naive_start_date_is_refused_and_changes_nothing(host: VirtualHost) -> None:
    session = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM))
    with pytest.raises(ValueError, match="naive"):
        session.start_at(T0.replace(tzinfo=None))
    assert session.state is _S.NOT_STARTED
    session.start_at(T0 + sec(60))
    assert session.state is _S.SCHEDULED


def test_budget_counts_real_elapsed_time(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(timedelta(hours=5))
    assert rec.calls[-1] == ended(_R.EXPIRED, T0 + sec(600))


# ====================================================================== underwater depth


def test_underwater_depth_without_sensor_is_unsupported(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.dive", UNDERWATER))
    session.start()
    host.advance(0)
    call = rec.only_invalidation()
    assert call.reason is _R.ERROR
    assert error_code(call) is ErrorCode.UNSUPPORTED_SESSION_TYPE


def test_underwater_depth_with_sensor_runs_without_limit_and_is_frontmost() -> None:
    host = VirtualHost(now=T0, policy=Policy(underwater_supported=True))
    app = host.app("org.example.dive", UNDERWATER)
    session, rec = open_session(host, app)
    session.start()
    assert session.state is _S.RUNNING
    assert session.expiration_date is None
    host.advance(timedelta(hours=10))
    app.state = ApplicationState.BACKGROUND
    host.advance(0)
    assert rec.calls == [
        Call("did_start", T0),
        ended(_R.RESIGNED_FRONTMOST, T0 + timedelta(hours=10)),
    ]


def test_underwater_depth_cannot_be_scheduled(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.dive", UNDERWATER))
    session.start_at(T0 + sec(60))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.NOT_APPROVED_TO_SCHEDULE


# ====================================================================== keep-awake


def test_keep_awake_held_exactly_while_a_session_runs(host: VirtualHost) -> None:
    assert not host.keep_awake_held
    alarm = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM))
    alarm.start_at(T0 + sec(600))
    assert not host.keep_awake_held, "a scheduled session does not hold keep-awake"
    care = ExtendedRuntimeSession(app=host.app("org.example.care", SELF_CARE))
    care.start()
    assert host.keep_awake_held
    host.advance(599)
    assert host.keep_awake_held
    host.advance(1)
    assert care.state is _S.INVALID
    assert alarm.state is _S.RUNNING
    assert host.keep_awake_held
    alarm.invalidate()
    assert not host.keep_awake_held


def test_keep_awake_never_held_for_a_refused_start(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE, state=ApplicationState.INACTIVE)
    ExtendedRuntimeSession(app=app).start()
    ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM)).start()
    host.advance(10)
    assert not host.keep_awake_held


def test_keep_awake_released_when_the_last_session_expires(host: VirtualHost) -> None:
    a = ExtendedRuntimeSession(app=host.app("org.example.a", SELF_CARE))
    b = ExtendedRuntimeSession(app=host.app("org.example.b", MINDFULNESS))
    a.start()
    host.advance(300)
    b.start()
    host.advance(600)
    assert a.state is _S.INVALID
    assert host.keep_awake_held
    host.advance(3000)
    assert b.state is _S.INVALID
    assert not host.keep_awake_held


# ====================================================================== wake alarm


def test_wake_alarm_armed_at_the_earliest_scheduled_start(host: VirtualHost) -> None:
    assert host.wake_alarm_at is None
    late = ExtendedRuntimeSession(app=host.app("org.example.late", ALARM))
    late.start_at(T0 + timedelta(hours=8))
    assert host.wake_alarm_at == T0 + timedelta(hours=8)
    early = ExtendedRuntimeSession(app=host.app("org.example.early", ALARM))
    early.start_at(T0 + timedelta(hours=2))
    assert host.wake_alarm_at == T0 + timedelta(hours=2)
    early.invalidate()
    assert host.wake_alarm_at == T0 + timedelta(hours=8)
    host.advance(timedelta(hours=8))
    assert late.state is _S.RUNNING
    assert host.wake_alarm_at is None


def test_wake_alarm_follows_the_next_start_after_one_fires(host: VirtualHost) -> None:
    first = ExtendedRuntimeSession(app=host.app("org.example.a", ALARM))
    second = ExtendedRuntimeSession(app=host.app("org.example.b", ALARM))
    first.start_at(T0 + timedelta(hours=1))
    second.start_at(T0 + timedelta(hours=3))
    host.advance(timedelta(hours=1))
    assert first.state is _S.RUNNING
    assert host.wake_alarm_at == T0 + timedelta(hours=3)


# ====================================================================== handover delivery


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


def test_a_running_session_handed_over_starts_with_did_start(host: VirtualHost) -> None:
    """The app exits during its alarm; relaunched, its new delegate hears did_start first."""
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    session, rec = open_session(host, app)
    session.start_at(host.now)
    host.advance(60)
    assert rec.names == ["did_start"]
    heard: list[Recorder] = []

    @app.on_session
    def handle(handed: ExtendedRuntimeSession) -> None:
        assert handed.state is _S.RUNNING
        heard.append(Recorder(host))
        handed.delegate = heard[-1]

    host.terminate(app)
    host.advance(0)
    assert host.launches == [(T0 + sec(60), app.app_id)]
    assert heard[0].names == ["did_start"]
    host.advance(timedelta(hours=1))
    assert heard[0].names == ["did_start", "will_expire", "did_invalidate"]


def test_calls_before_the_delegate_is_set_come_after_the_backlog(host: VirtualHost) -> None:
    """A handed-over session whose delegate comes late hears everything once, in order."""
    _app, start, handed = _relaunch_setup(host)
    host.advance(timedelta(hours=1))
    assert len(handed) == 1
    host.advance(5)
    late = Recorder(host)
    handed[0].delegate = late
    host.advance(timedelta(hours=1))
    assert late.names == ["did_start", "will_expire", "did_invalidate"]
    assert late.calls[0].at == start + sec(5)
