"""Bad input gets a clear error, and the session and the host carry on."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from extended_runtime import (
    ExtendedRuntimeSession,
    HapticType,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import VirtualHost

from .helpers import T0


def _alarm() -> tuple[VirtualHost, ExtendedRuntimeSession]:
    host = VirtualHost(T0)
    return host, ExtendedRuntimeSession(host.app("org.example.alarm", SessionType.SMART_ALARM))


def test_naive_datetime_is_refused_and_the_session_can_still_start() -> None:
    _host, session = _alarm()
    with pytest.raises(ValueError, match=r"when is a naive datetime \(2026-01-05T07:00:00\)"):
        session.start_at(datetime(2026, 1, 5, 7, 0))  # noqa: DTZ001
    assert session.state is SessionState.NOT_STARTED
    session.start_at(T0 + timedelta(hours=1))
    assert session.state is SessionState.SCHEDULED


@pytest.mark.parametrize("when", ["2026-01-05T07:00:00Z", 1767596400, None, T0.date()])
def test_non_datetimes_are_refused(when: object) -> None:
    _, session = _alarm()
    with pytest.raises(TypeError, match="when must be a datetime with a time zone"):
        session.start_at(when)  # type: ignore[arg-type]
    assert session.state is SessionState.NOT_STARTED


@pytest.mark.parametrize("haptic", [14, -1, 99])
def test_unknown_haptic_values_are_refused(haptic: int) -> None:
    host, session = _alarm()
    session.start_at(host.now)
    with pytest.raises(ValueError, match=f"{haptic} is not a HapticType: use one of NOTIFICATION"):
        session.notify_user(haptic)
    assert host.alerts == []
    session.notify_user(HapticType.CLICK)
    assert [a.haptic for a in host.alerts] == [HapticType.CLICK]


@pytest.mark.parametrize("haptic", ["click", 1.0, True, None])
def test_non_haptics_are_refused(haptic: object) -> None:
    host, session = _alarm()
    session.start_at(host.now)
    with pytest.raises(TypeError, match="haptic must be a HapticType"):
        session.notify_user(haptic)  # type: ignore[arg-type]
    assert host.alerts == []


def test_a_non_callable_repeat_handler_is_refused() -> None:
    host, session = _alarm()
    session.start_at(host.now)
    with pytest.raises(TypeError, match="repeat_handler must be callable"):
        session.notify_user(HapticType.NOTIFICATION, 3.0)  # type: ignore[arg-type]
    assert host.alerts == []


def test_a_session_used_as_a_with_block_points_to_running() -> None:
    _host, session = _alarm()
    with pytest.raises(TypeError, match=r"use `with session.running\(\):`"), session:
        pass
    assert session.state is SessionState.NOT_STARTED  # nothing started


def test_a_session_used_as_an_async_with_block_points_to_running() -> None:
    _host, session = _alarm()

    async def use() -> None:
        async with session:
            pass

    with pytest.raises(TypeError, match=r"use `async with session.running\(\):`"):
        asyncio.run(use())
    assert session.state is SessionState.NOT_STARTED


def test_starting_twice_names_the_state() -> None:
    _host, session = _alarm()
    session.start_at(T0 + timedelta(hours=1))
    with pytest.raises(SessionUsageError, match="start_at\\(\\) on a session that is SCHEDULED"):
        session.start_at(T0 + timedelta(hours=2))
    assert session.state is SessionState.SCHEDULED


def test_virtual_host_refuses_naive_now_and_negative_advance() -> None:
    with pytest.raises(ValueError, match="naive"):
        VirtualHost(datetime(2026, 1, 5))  # noqa: DTZ001
    host = VirtualHost(T0)
    with pytest.raises(ValueError, match="must not be negative"):
        host.advance(-5)
    assert host.now == T0


def test_policy_refuses_incomplete_limits() -> None:
    from extended_runtime import Policy

    with pytest.raises(ValueError, match="policy limits lack a value for: self-care"):
        Policy(limits={SessionType.MINDFULNESS: timedelta(hours=1)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"will_expire_lead": timedelta(seconds=-1)}, "will_expire_lead must not be negative"),
        ({"past_tolerance": timedelta(seconds=-1)}, "past_tolerance must not be negative"),
        ({"alert_interval_default": 0.0}, "alert intervals must be positive"),
        ({"silent_alarm_limit": 0}, "silent_alarm_limit must be at least 1"),
        ({"cpu_sample_interval": timedelta(0)}, "must be positive"),
    ],
)
def test_policy_refuses_nonsense_knobs(change: dict[str, object], message: str) -> None:
    from extended_runtime import Policy

    with pytest.raises(ValueError, match=message):
        Policy(**change)  # type: ignore[arg-type]


def test_policy_refuses_a_zero_limit() -> None:
    from extended_runtime import Policy

    with pytest.raises(ValueError, match="policy limits must be positive: self-care"):
        Policy().with_limits(self_care=0)
