"""Alarms that never alert: the user is told, and three in a row disable the app's alarms.

DESIGN.md row "Alarm session that ended without alerting"; misuse-matrix rows "Smart alarm
session that never plays a haptic" and "start(at:) with Background App Refresh off" (spec 2.10):
here, alarms disabled this way stand for Background App Refresh being off (BAR_DISABLED).
"""

from __future__ import annotations

import logging

import pytest

from extended_runtime import ErrorCode, ExtendedRuntimeSession, InvalidationReason, SessionState
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    LOGGER,
    T0,
    assert_error,
    misuse,
    open_session,
    run_alerting_alarm,
    run_silent_alarm,
    sec,
    warnings_logged,
)

_S = SessionState


@misuse("Smart alarm session that never plays a haptic")
@misuse("start(at:) with Background App Refresh off")
def test_three_silent_alarms_warn_each_time_then_disable_alarms(
    host: VirtualHost, caplog: pytest.LogCaptureFixture
) -> None:
    app = host.app("org.example.sleep", ALARM)
    sessions: list[str] = []
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            session = ExtendedRuntimeSession(app=app)
            session.start_at(host.now)
            session.invalidate()
            sessions.append(session.session_id)
        host.advance(0)
    assert warnings_logged(caplog) == [
        *(
            f"the alarm of org.example.sleep (session {sid}) ended without alerting the user "
            f"({count} in a row)"
            for count, sid in enumerate(sessions, start=1)
        ),
        "alarms of org.example.sleep are disabled: 3 alarms in a row ran without alerting the "
        "user; its alarms fail with BAR_DISABLED until the user allows them again",
    ]
    assert host.engine.alarms_disabled(app.app_id)
    session, rec = open_session(host, app)
    session.start_at(T0 + sec(600))
    assert session.state is _S.INVALID
    host.advance(0)
    assert_error(
        rec.only_invalidation(),
        ErrorCode.BAR_DISABLED,
        "Alarms are disabled for this app because its recent alarms never alerted the user; "
        "they stay off until the user allows them again.",
    )


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
    run_silent_alarm(host, app)
    assert host.engine.alarms_disabled(app.app_id)


def test_two_silent_alarms_do_not_disable_alarms(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    for _ in range(2):
        run_silent_alarm(host, app)
    assert not host.engine.alarms_disabled(app.app_id)
    session, _ = open_session(host, app)
    session.start_at(T0 + sec(600))
    assert session.state is _S.SCHEDULED


def test_an_expired_silent_alarm_counts(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    expired = ExtendedRuntimeSession(app=app)
    expired.start_at(T0)
    host.advance(3600)
    assert expired.invalidation_reason is InvalidationReason.EXPIRED
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
        refused.start_at(T0 + sec(40 * 3600))
        assert refused.state is _S.INVALID
    host.advance(0)
    assert not host.engine.alarms_disabled(app.app_id)
    run_silent_alarm(host, app)
    assert host.engine.alarms_disabled(app.app_id)


def test_silent_alarms_disable_only_that_app(host: VirtualHost) -> None:
    quiet = host.app("org.example.quiet", ALARM)
    other = host.app("org.example.other", ALARM)
    for _ in range(3):
        run_silent_alarm(host, quiet)
    assert host.engine.alarms_disabled(quiet.app_id)
    session = ExtendedRuntimeSession(app=other)
    session.start_at(T0 + sec(600))
    assert session.state is _S.SCHEDULED


def test_host_alert_counts_as_alerting_for_the_silent_rule(host: VirtualHost) -> None:
    """An alarm the host rang for an exited app was not silent: the count starts again."""
    app = host.app("org.example.sleep", ALARM)
    for _ in range(2):
        run_silent_alarm(host, app)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(host.now + sec(60))
    host.terminate(app)
    host.advance(3600)
    assert host.alerts
    assert all(alert.by_host for alert in host.alerts)
    host.launch(app)
    for _ in range(2):
        run_silent_alarm(host, app)
    assert not host.engine.alarms_disabled(app.app_id)
