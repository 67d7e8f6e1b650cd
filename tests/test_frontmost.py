"""Frontmost types (self care, mindfulness) end when the app leaves the foreground.

DESIGN.md row "Frontmost"; that starting needs ACTIVE is in `test_start_rules.py`, and an app
that exits is in `test_app_exit.py`.
"""

from __future__ import annotations

import pytest

from extended_runtime import ApplicationState, InvalidationReason, SessionState, SessionType
from extended_runtime.testing import VirtualHost

from .helpers import ALARM, MINDFULNESS, SELF_CARE, T0, THERAPY, ended, open_session, sec

_S = SessionState


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
    assert not host.keep_awake_held
    assert rec.names == ["did_start"]
    host.advance(0)
    assert rec.calls[-1] == ended(InvalidationReason.RESIGNED_FRONTMOST, T0 + sec(30))


@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS])
def test_frontmost_keeps_running_when_app_becomes_inactive(
    host: VirtualHost, mode: SessionType
) -> None:
    """INACTIVE is the user looking away, not leaving the app."""
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
    session, rec = open_session(host, app)
    if mode is ALARM:
        session.start_at(T0)
    else:
        session.start()
    app.state = ApplicationState.BACKGROUND
    host.advance(300)
    assert session.state is _S.RUNNING
    assert rec.names == ["did_start"]
    assert host.keep_awake_held
