"""Underwater depth: unsupported without a submersion sensor; frontmost and unlimited with one.

DESIGN.md row "Underwater depth". That it cannot be scheduled is in `test_start_rules.py`, and
that it gets no `will_expire` in `test_expiry.py`.
"""

from __future__ import annotations

from extended_runtime import ApplicationState, ErrorCode, InvalidationReason, Policy, SessionState
from extended_runtime.testing import VirtualHost

from .helpers import T0, UNDERWATER, Call, assert_error, ended, open_session, sec


def test_underwater_depth_without_sensor_is_unsupported(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.dive", UNDERWATER))
    session.start()
    assert session.state is SessionState.INVALID
    host.advance(0)
    assert_error(
        rec.only_invalidation(),
        ErrorCode.UNSUPPORTED_SESSION_TYPE,
        "no submersion sensor is installed: underwater-depth sessions cannot start",
    )


def test_underwater_depth_with_sensor_runs_without_limit_and_is_frontmost() -> None:
    host = VirtualHost(now=T0, policy=Policy(underwater_supported=True))
    app = host.app("org.example.dive", UNDERWATER)
    session, rec = open_session(host, app)
    session.start()
    assert session.state is SessionState.RUNNING
    assert session.expiration_date is None
    host.advance(10 * 3600)
    app.state = ApplicationState.BACKGROUND
    host.advance(0)
    assert rec.calls == [
        Call("did_start", T0),
        ended(InvalidationReason.RESIGNED_FRONTMOST, T0 + sec(10 * 3600)),
    ]
