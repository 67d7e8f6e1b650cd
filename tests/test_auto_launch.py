"""Asking the user whether the host may launch the app for its alarms.

DESIGN.md row "Auto-launch", the auto-launch order in "Several preconditions fail at once", and
the test host contract of `host.set_auto_launch_answer`; misuse-matrix row on
`requestAutoLaunchAuthorizationStatus` (spec 2.10). What an ACTIVE answer leads to is in
`test_relaunch.py` and `test_app_exit.py`.
"""

from __future__ import annotations

import asyncio

import pytest

from extended_runtime import (
    ERROR_DOMAIN,
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionError,
    SessionType,
)
from extended_runtime.testing import VirtualHost

from .helpers import ALARM, MINDFULNESS, SELF_CARE, THERAPY, UNDERWATER, misuse

_A = AutoLaunchAuthorizationStatus
request = ExtendedRuntimeSession.request_auto_launch_authorization_status
AUTO_LAUNCH_ROW = (
    "requestAutoLaunchAuthorizationStatus with an unsupported type, or while not foreground "
    "before any prompt"
)


@misuse(AUTO_LAUNCH_ROW)
@pytest.mark.parametrize("mode", [SELF_CARE, MINDFULNESS, THERAPY, UNDERWATER, None])
def test_auto_launch_is_unsupported_for_types_other_than_smart_alarm(
    host: VirtualHost, mode: SessionType | None
) -> None:
    app = host.app("org.example.app", mode)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        request(app)
    assert caught.value.code is ErrorCode.UNSUPPORTED_SESSION_TYPE
    assert caught.value.domain == ERROR_DOMAIN
    declared = "no background mode" if mode is None else mode.value
    assert caught.value.message == (
        f"auto-launch is for smart-alarm apps; org.example.app declares {declared}"
    )
    assert host.engine.auto_launch_status(app.app_id) is _A.UNKNOWN


@misuse(AUTO_LAUNCH_ROW)
@pytest.mark.parametrize("state", [ApplicationState.INACTIVE, ApplicationState.BACKGROUND])
def test_auto_launch_must_be_active_to_prompt_when_never_asked(
    host: VirtualHost, state: ApplicationState
) -> None:
    app = host.app("org.example.sleep", ALARM, state=state)
    host.set_auto_launch_answer(app, True)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        request(app)
    assert caught.value.code is ErrorCode.MUST_BE_ACTIVE_TO_PROMPT
    assert caught.value.domain == ERROR_DOMAIN
    assert caught.value.message == (
        "The app must be active to ask the user for auto-launch authorization."
    )
    assert host.engine.auto_launch_status(app.app_id) is _A.UNKNOWN
    app.state = ApplicationState.ACTIVE
    assert request(app) is _A.ACTIVE


def test_precondition_order_auto_launch_unsupported_before_must_be_active_to_prompt(
    host: VirtualHost,
) -> None:
    app = host.app("org.example.care", SELF_CARE, state=ApplicationState.BACKGROUND)
    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        request(app)
    assert caught.value.code is ErrorCode.UNSUPPORTED_SESSION_TYPE


def test_auto_launch_status_is_unknown_until_asked(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    assert host.engine.auto_launch_status(app.app_id) is _A.UNKNOWN
    assert request(app) is _A.ACTIVE
    assert host.engine.auto_launch_status(app.app_id) is _A.ACTIVE


def test_auto_launch_never_set_answer_is_inactive(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    assert request(app) is _A.INACTIVE
    assert host.engine.auto_launch_status(app.app_id) is _A.INACTIVE


def test_auto_launch_user_is_asked_once(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, True)
    assert request(app) is _A.ACTIVE
    host.set_auto_launch_answer(app, False)
    assert request(app) is _A.ACTIVE
    app.state = ApplicationState.BACKGROUND
    assert request(app) is _A.ACTIVE


def test_auto_launch_declined_answer_is_kept(host: VirtualHost) -> None:
    app = host.app("org.example.sleep", ALARM)
    assert request(app) is _A.INACTIVE
    host.set_auto_launch_answer(app, True)
    app.state = ApplicationState.INACTIVE
    assert request(app) is _A.INACTIVE


@pytest.mark.parametrize("allow", [True, False])
def test_auto_launch_async_twin_gives_the_same_answer(host: VirtualHost, allow: bool) -> None:
    app = host.app("org.example.sleep", ALARM)
    host.set_auto_launch_answer(app, allow)
    twin = ExtendedRuntimeSession.request_auto_launch_authorization_status_async
    assert asyncio.run(twin(app)) is (_A.ACTIVE if allow else _A.INACTIVE)
    assert request(app) is (_A.ACTIVE if allow else _A.INACTIVE)
