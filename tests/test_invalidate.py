"""`invalidate()` and the user's Stop: who may end a session, and with which reason.

DESIGN.md rows "`invalidate()` before any start", "`invalidate()` on an INVALID session" and
"`invalidate()` of a smart-alarm session while the app is not ACTIVE" (the user can always
stop it); misuse-matrix rows (spec 2.10) are marked `@misuse(row)`.
"""

from __future__ import annotations

import pytest

from extended_runtime import (
    ERROR_DOMAIN,
    ApplicationState,
    ErrorCode,
    ExtendedRuntimeSessionError,
    InvalidationReason,
    SessionState,
)
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    APPLE_CODE_3,
    SELF_CARE,
    T0,
    THERAPY,
    assert_error,
    ended,
    misuse,
    open_session,
    sec,
)

_R = InvalidationReason
_S = SessionState


@misuse("invalidate() before any start")
def test_invalidate_before_any_start_is_error_not_yet_started(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.invalidate()
    assert session.state is _S.INVALID
    assert session.expiration_date is None
    host.advance(0)
    assert_error(
        rec.only_invalidation(),
        ErrorCode.NOT_YET_STARTED,
        "The session was invalidated before it was started.",
    )
    assert session.invalidation_reason is _R.ERROR


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
    reason, error = session.invalidation_reason, session.error
    session.invalidate()
    session.invalidate()
    host.advance(100)
    assert session.state is _S.INVALID
    assert session.invalidation_reason is reason
    assert session.error == error
    assert rec.calls == before
    assert rec.names.count("did_invalidate") == 1


def test_invalidate_on_an_invalid_alarm_while_app_not_active_has_no_effect(
    host: VirtualHost,
) -> None:
    """The not-ACTIVE refusal is for live alarms only: an ended one neither raises nor calls."""
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0)
    session.invalidate()
    app.state = ApplicationState.BACKGROUND
    session.invalidate()
    host.advance(0)
    assert rec.names == ["did_start", "did_invalidate"]
    assert session.invalidation_reason is _R.NONE


@misuse("invalidate() on an alarm session while app inactive")
@pytest.mark.parametrize("app_state", [ApplicationState.INACTIVE, ApplicationState.BACKGROUND])
@pytest.mark.parametrize("session_state", [_S.SCHEDULED, _S.RUNNING], ids=lambda s: s.name)
def test_invalidate_of_smart_alarm_while_app_not_active_raises_must_be_active(
    host: VirtualHost, app_state: ApplicationState, session_state: SessionState
) -> None:
    """It raises code 3 with Apple's message and changes nothing; once ACTIVE, it works."""
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(T0 if session_state is _S.RUNNING else T0 + sec(600))
    app.state = app_state
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        session.invalidate()
    assert caught.value.code is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE
    assert caught.value.domain == ERROR_DOMAIN
    assert caught.value.message == APPLE_CODE_3
    assert session.state is session_state
    assert host.engine.session_state(session.session_id) is session_state
    host.advance(0)
    assert "did_invalidate" not in rec.names
    app.state = ApplicationState.ACTIVE
    session.invalidate()
    host.advance(0)
    assert rec.calls[-1] == ended(_R.NONE, T0)


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
    session, rec = open_session(host, app)
    session.start()
    host.stop_alarm(app)
    assert session.state is _S.RUNNING
    host.advance(10)
    assert rec.names == ["did_start"]
    assert host.keep_awake_held


def test_invalidate_of_a_background_type_works_while_app_not_active(host: VirtualHost) -> None:
    app = host.app("org.example.pt", THERAPY)
    session, rec = open_session(host, app)
    session.start()
    app.state = ApplicationState.BACKGROUND
    session.invalidate()
    assert session.state is _S.INVALID
    host.advance(0)
    assert rec.calls[-1] == ended(_R.NONE, T0)
