"""The 36 h horizon and scheduled instants are UTC: a time zone never moves them.

DESIGN.md row "36 h and time" (the parts a virtual clock can show); the exact boundaries are in
`test_start_rules.py`, naive datetimes in `test_bad_input.py`, and sleeps and wall-clock jumps
in `test_engine_time.py`.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from extended_runtime import ErrorCode, ExtendedRuntimeSession, SessionState
from extended_runtime.testing import VirtualHost

from .helpers import ALARM, T0, Call, error_code, open_session


def test_time_zone_of_start_at_does_not_move_instant(host: VirtualHost) -> None:
    pacific = timezone(timedelta(hours=-8))
    start = T0 + timedelta(hours=2)
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(start.astimezone(pacific))
    assert host.wake_alarm_at == start
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
    assert ok.state is SessionState.SCHEDULED
    ok.invalidate()
    late, rec = open_session(host, app)
    late.start_at((T0 + timedelta(hours=36, seconds=1)).astimezone(far_east))
    host.advance(0)
    assert error_code(rec.only_invalidation()) is ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE
