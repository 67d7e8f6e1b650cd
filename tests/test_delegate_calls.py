"""When state changes, and when, in what order and at what `host.now` delegates hear of it.

DESIGN.md rows "When does `state` change?", "Where do delegate calls run?" (order and
once-only; the delegate thread and the asyncio loop are in `test_embedded.py`) and "A session
fails and nobody listens"; the test host contract on `host.now` inside calls and on calls never
made from inside `start()`, `start_at()` or `invalidate()`.
"""

from __future__ import annotations

import logging

import pytest

from extended_runtime import (
    ApplicationState,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionError,
    InvalidationReason,
    SessionState,
)
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    LOGGER,
    MINDFULNESS,
    SELF_CARE,
    T0,
    THERAPY,
    Call,
    Recorder,
    ended,
    open_session,
    sec,
    warnings_logged,
)

_R = InvalidationReason
_S = SessionState


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
    assert session.expiration_date.utcoffset() == sec(0)


def test_refused_start_is_invalid_at_once(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE, state=ApplicationState.INACTIVE)
    session, rec = open_session(host, app)
    session.start()
    assert session.state is _S.INVALID
    assert session.expiration_date is None
    assert rec.calls == []


# ====================================================================== delivery


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
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1
    assert logged[0].getMessage().endswith(".did_start raised; the session is not affected")
    assert logged[0].exc_info is not None
    assert str(logged[0].exc_info[1]) == "boom in did_start"


# ====================================================================== nobody listens


def test_refusals_and_error_endings_are_logged_at_warning_with_reason_and_message(
    host: VirtualHost, caplog: pytest.LogCaptureFixture
) -> None:
    """An app without a delegate still learns why its session failed, from the log."""
    idle = host.app("org.example.idle", SELF_CARE, state=ApplicationState.INACTIVE)
    busy = host.app("org.example.busy", THERAPY)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        refused = ExtendedRuntimeSession(app=idle)
        refused.start()
        failed = ExtendedRuntimeSession(app=busy)
        host.set_cpu_load(busy, 4.0)
        failed.start()
        host.advance(60)
    assert refused.error is not None
    assert refused.error.code is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE
    assert failed.error is not None
    assert failed.error.code is ErrorCode.EXCEEDED_RESOURCE_LIMITS
    warnings = warnings_logged(caplog)
    for session in (refused, failed):
        error = session.error
        assert error is not None
        about = [m for m in warnings if session.session_id in m]
        assert len(about) == 1, warnings
        assert "ERROR" in about[0]
        assert error.message in about[0]
