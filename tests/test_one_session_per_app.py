"""One running or scheduled session per app: a second one ends with SESSION_IN_PROGRESS.

DESIGN.md row "A second session while one is running or scheduled for the same app"; misuse
matrix row "Second session while one runs" (spec 2.10).
"""

from __future__ import annotations

import pytest

from extended_runtime import InvalidationReason, SessionState, SessionType
from extended_runtime.testing import VirtualHost

from .helpers import ALARM, MINDFULNESS, SELF_CARE, T0, THERAPY, misuse, open_session, sec

_R = InvalidationReason
_S = SessionState


@misuse("Second session while one runs")
@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS, THERAPY])
def test_second_session_while_one_runs_is_session_in_progress_and_the_first_runs_on(
    host: VirtualHost, mode: SessionType
) -> None:
    app = host.app("org.example.app", mode)
    first, first_rec = open_session(host, app)
    first.start()
    second, second_rec = open_session(host, app)
    second.start()
    assert second.state is _S.INVALID
    host.advance(0)
    call = second_rec.only_invalidation()
    assert call.reason is _R.SESSION_IN_PROGRESS
    assert call.error is None
    assert call.at == T0
    assert first.state is _S.RUNNING
    assert first_rec.names == ["did_start"]
    expiration = first.expiration_date
    assert expiration is not None
    host.advance(expiration - host.now + sec(1))
    assert first_rec.names == ["did_start", "will_expire", "did_invalidate"]
    assert first_rec.calls[-1].reason is _R.EXPIRED
    assert first_rec.calls[-1].at == expiration


@pytest.mark.parametrize("first_state", ["running", "scheduled"])
def test_second_alarm_while_one_is_running_or_scheduled_is_session_in_progress(
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


def test_sessions_of_different_apps_run_side_by_side(host: VirtualHost) -> None:
    a, a_rec = open_session(host, host.app("org.example.a", SELF_CARE))
    b, b_rec = open_session(host, host.app("org.example.b", SELF_CARE))
    a.start()
    b.start()
    assert a.state is b.state is _S.RUNNING
    assert len(host.engine.running_sessions()) == 2
    host.advance(0)
    assert a_rec.names == b_rec.names == ["did_start"]


def test_a_new_session_may_start_after_the_first_ends(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE)
    first, _ = open_session(host, app)
    first.start()
    first.invalidate()
    second, rec = open_session(host, app)
    second.start()
    assert second.state is _S.RUNNING
    host.advance(0)
    assert rec.names == ["did_start"]
