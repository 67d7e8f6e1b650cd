"""Sessions expire on time, and `will_expire` warns once, a lead time before.

DESIGN.md row "`will_expire` lead time"; the time limit of each type (spec section 1.3). That a
budget counts suspended time is tested on the engine in `test_engine_time.py`.
"""

from __future__ import annotations

import pytest

from extended_runtime import (
    ApplicationState,
    InvalidationReason,
    Policy,
    SessionState,
    SessionType,
)
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    MINDFULNESS,
    SELF_CARE,
    T0,
    THERAPY,
    UNDERWATER,
    Call,
    ended,
    open_session,
    sec,
)

_R = InvalidationReason


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
    assert session.state is SessionState.INVALID


def test_will_expire_comes_60s_before_expiry_for_smart_alarm(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    start = T0 + sec(2 * 3600)
    session.start_at(start)
    host.advance(3 * 3600)
    assert session.expiration_date == start + sec(1800)
    assert rec.calls == [
        Call("did_start", start),
        Call("will_expire", start + sec(1740)),
        ended(_R.EXPIRED, start + sec(1800)),
    ]


def test_will_expire_lead_is_a_policy_knob() -> None:
    host = VirtualHost(now=T0, policy=Policy(will_expire_lead=sec(150)))
    session, rec = open_session(host, host.app("org.example.care", SELF_CARE))
    session.start()
    host.advance(700)
    assert rec.calls[1] == Call("will_expire", T0 + sec(450))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("invalidate", _R.NONE),
        ("resign", _R.RESIGNED_FRONTMOST),
        ("suppress", _R.SUPPRESSED_BY_SYSTEM),
        ("cpu", _R.ERROR),
    ],
)
def test_will_expire_is_sent_only_when_the_session_ends_by_expiry(
    host: VirtualHost, how: str, reason: InvalidationReason
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
    assert rec.calls[1].reason is reason
    assert rec.calls[1].at < T0 + sec(540)


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
    host.advance(48 * 3600)
    assert session.expiration_date is None
    assert session.state is SessionState.RUNNING
    assert rec.names == ["did_start"]
