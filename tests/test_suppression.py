"""SUPPRESSED_BY_SYSTEM: pause, shutdown, power saving and a low battery.

DESIGN.md row "`suppressedBySystem` triggers", and the test host contract of
`host.set_suppressed`. That suppression is the last precondition checked is in
`test_start_rules.py`.
"""

from __future__ import annotations

import pytest

from extended_runtime import InvalidationReason, SessionState, SessionType
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    MINDFULNESS,
    SELF_CARE,
    T0,
    THERAPY,
    Call,
    ended,
    open_session,
    sec,
    set_conditions,
)

_R = InvalidationReason
_S = SessionState
EVERY_TYPE = [("a", SELF_CARE), ("b", THERAPY), ("c", MINDFULNESS), ("d", ALARM)]


def test_set_suppressed_ends_running_sessions(host: VirtualHost) -> None:
    sessions = []
    for app_id, mode in EVERY_TYPE:
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
    assert rec.only_invalidation() == ended(_R.SUPPRESSED_BY_SYSTEM, T0)


def test_power_saver_does_not_suppress_alarm(host: VirtualHost) -> None:
    running, running_rec = open_session(host, host.app("org.example.a", ALARM))
    running.start_at(T0)
    scheduled, scheduled_rec = open_session(host, host.app("org.example.b", ALARM))
    scheduled.start_at(T0 + sec(600))
    set_conditions(host, power_saver=True)
    host.advance(600)
    assert running.state is _S.RUNNING
    assert running_rec.names == ["did_start"]
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
    recorders = []
    for app_id, mode in EVERY_TYPE:
        session, rec = open_session(host, host.app(f"org.example.{app_id}", mode))
        if mode is ALARM:
            session.start_at(T0)
        else:
            session.start()
        recorders.append(rec)
    set_conditions(host, shutting_down=True)
    host.advance(0)
    assert not host.keep_awake_held
    for rec in recorders:
        assert rec.calls[-1] == ended(_R.SUPPRESSED_BY_SYSTEM, T0)


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
