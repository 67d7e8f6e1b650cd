"""`notify_user`: the first alert, its repetition, and what the repeat handler's answer does.

DESIGN.md row "`notify_user`"; misuse-matrix row "notifyUser on a non-scheduled or non-running
session" (spec 2.10). Alerts at the same instant as other timers are in `test_timer_order.py`.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

import pytest

from extended_runtime import ExtendedRuntimeSession, HapticType, InvalidationReason, SessionState
from extended_runtime.testing import VirtualHost

from .helpers import (
    ALARM,
    LOGGER,
    SELF_CARE,
    T0,
    THERAPY,
    ended,
    misuse,
    open_session,
    running_alarm,
    sec,
    warnings_logged,
)

_S = SessionState

#: Results a buggy repeat handler may return instead of seconds or (seconds, HapticType).
GARBAGE = [
    "soon",
    b"1",
    [5.0],
    True,
    (5.0, "x"),
    (5.0, 99),
    (5.0, True),
    (5.0, 1, 2),
    ("5", 1),
    object(),
]


def _garbage_id(value: object) -> str:
    return type(value).__name__ + ":" + repr(value)[:12]


def test_notify_user_first_alert_plays_at_once_inside_the_call(host: VirtualHost) -> None:
    app, session, _ = running_alarm(host)
    host.advance(5)
    assert host.alerts == []
    session.notify_user(HapticType.SUCCESS)
    assert len(host.alerts) == 1
    alert = host.alerts[0]
    assert (alert.at, alert.app_id, alert.session_id) == (
        T0 + sec(5),
        app.app_id,
        session.session_id,
    )
    assert alert.haptic is HapticType.SUCCESS
    assert not alert.by_host


def test_notify_user_default_interval_is_3s(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.RETRY)
    host.advance(10)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(3), T0 + sec(6), T0 + sec(9)]
    assert {a.haptic for a in host.alerts} == {HapticType.RETRY}


def test_notify_user_repeat_handler_is_called_after_each_play_with_the_haptic_played(
    host: VirtualHost,
) -> None:
    _, session, _ = running_alarm(host)
    seen: list[tuple[HapticType, datetime]] = []

    def handler(played: HapticType) -> float:
        seen.append((played, host.now))
        return 2.5

    session.notify_user(HapticType.CLICK, handler)
    host.advance(6)
    assert seen == [
        (HapticType.CLICK, T0),
        (HapticType.CLICK, T0 + sec(2.5)),
        (HapticType.CLICK, T0 + sec(5)),
    ]
    assert [a.at for a in host.alerts] == [T0, T0 + sec(2.5), T0 + sec(5)]


@pytest.mark.parametrize("result", [0, 0.0, -1.0, -0.001, math.nan, None], ids=repr)
def test_notify_user_handler_result_zero_negative_nan_or_none_stops(
    host: VirtualHost, result: float | None
) -> None:
    _, session, _ = running_alarm(host)
    calls: list[datetime] = []

    def handler(played: HapticType) -> float | None:
        calls.append(host.now)
        return result

    session.notify_user(HapticType.NOTIFICATION, handler)
    host.advance(600)
    assert len(host.alerts) == 1
    assert calls == [T0]
    assert session.state is _S.RUNNING


@pytest.mark.parametrize("result", [60.0001, 61, 3600.0, math.inf], ids=repr)
def test_notify_user_interval_above_60s_is_clamped_to_60(host: VirtualHost, result: float) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION, lambda _: result)
    host.advance(200)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(60), T0 + sec(120), T0 + sec(180)]


def test_notify_user_interval_of_exactly_60s_is_kept(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION, lambda _: 60)
    host.advance(130)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(60), T0 + sec(120)]


@pytest.mark.parametrize("result", [0.001, 0.5])
def test_notify_user_interval_below_1s_is_raised_to_1s(host: VirtualHost, result: float) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION, lambda _: result)
    host.advance(3.5)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(1), T0 + sec(2), T0 + sec(3)]


def test_notify_user_interval_of_exactly_1s_is_kept(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION, lambda _: 1)
    host.advance(2.5)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(1), T0 + sec(2)]


def _raising(played: HapticType) -> float:
    raise ValueError("handler broke")


def test_notify_user_handler_exception_is_logged(
    host: VirtualHost, caplog: pytest.LogCaptureFixture
) -> None:
    _, session, _ = running_alarm(host)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        session.notify_user(HapticType.NOTIFICATION, _raising)
        host.advance(2)
    assert session.state is _S.RUNNING
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1
    assert logged[0].getMessage().startswith(f"repeat handler of session {session.session_id}")
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], ValueError)


def test_notify_user_handler_exception_goes_on_at_the_default_interval(
    host: VirtualHost,
) -> None:
    """A bug in the app never silences a wake-up alarm."""
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION, _raising)
    host.advance(7)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(3), T0 + sec(6)]


@pytest.mark.parametrize("result", GARBAGE, ids=_garbage_id)
def test_notify_user_garbage_handler_result_is_logged_as_a_warning(
    host: VirtualHost, caplog: pytest.LogCaptureFixture, result: object
) -> None:
    _, session, _ = running_alarm(host)

    def handler(played: HapticType) -> Any:
        return result

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        session.notify_user(HapticType.NOTIFICATION, handler)
        host.advance(2)
    assert session.state is _S.RUNNING
    assert [m.split(";")[0] for m in warnings_logged(caplog)] == [
        f"repeat handler of session {session.session_id} returned {result!r}"
    ]


@pytest.mark.parametrize("result", ["soon", [5.0], object()], ids=_garbage_id)
def test_notify_user_non_number_handler_result_goes_on_at_the_default_interval(
    host: VirtualHost, result: object
) -> None:
    _, session, _ = running_alarm(host)

    def handler(played: HapticType) -> Any:
        return result

    session.notify_user(HapticType.NOTIFICATION, handler)
    host.advance(7)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(3), T0 + sec(6)]


def test_notify_user_again_replaces_the_current_repetition(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    first_calls: list[datetime] = []

    def first(played: HapticType) -> float:
        first_calls.append(host.now)
        return 3.0

    session.notify_user(HapticType.DIRECTION_UP, first)
    host.advance(4)
    session.notify_user(HapticType.DIRECTION_DOWN, lambda _: 10.0)
    host.advance(30)
    assert [(a.at, a.haptic) for a in host.alerts] == [
        (T0, HapticType.DIRECTION_UP),
        (T0 + sec(3), HapticType.DIRECTION_UP),
        (T0 + sec(4), HapticType.DIRECTION_DOWN),
        (T0 + sec(14), HapticType.DIRECTION_DOWN),
        (T0 + sec(24), HapticType.DIRECTION_DOWN),
        (T0 + sec(34), HapticType.DIRECTION_DOWN),
    ]
    assert first_calls == [T0, T0 + sec(3)]


def test_notify_user_again_before_the_handler_answers_replaces_it(host: VirtualHost) -> None:
    """The first handler's pending answer is stale once notify_user is called again."""
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.DIRECTION_UP, lambda _: 1.0)
    session.notify_user(HapticType.START, lambda _: 5.0)
    host.advance(12)
    assert [(a.at, a.haptic) for a in host.alerts] == [
        (T0, HapticType.DIRECTION_UP),
        (T0, HapticType.START),
        (T0 + sec(5), HapticType.START),
        (T0 + sec(10), HapticType.START),
    ]


def test_notify_user_handler_tuple_changes_the_next_haptic(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    cycle = [HapticType.DIRECTION_UP, HapticType.DIRECTION_DOWN]

    def handler(played: HapticType) -> tuple[float, HapticType]:
        return 1.0, cycle[int(played is HapticType.DIRECTION_UP)]

    session.notify_user(HapticType.SUCCESS, handler)
    host.advance(3.5)
    assert [a.haptic for a in host.alerts] == [
        HapticType.SUCCESS,
        HapticType.DIRECTION_UP,
        HapticType.DIRECTION_DOWN,
        HapticType.DIRECTION_UP,
    ]


def test_notify_user_repetition_ends_with_the_session(host: VirtualHost) -> None:
    _, session, _ = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION)
    host.advance(7)
    session.invalidate()
    host.advance(600)
    assert [a.at for a in host.alerts] == [T0, T0 + sec(3), T0 + sec(6)]


def test_notify_user_alert_due_at_the_very_instant_the_session_ends_does_not_play(
    host: VirtualHost,
) -> None:
    _, session, rec = running_alarm(host)
    session.notify_user(HapticType.NOTIFICATION)
    host.advance(3600)
    times = [a.at for a in host.alerts]
    assert len(times) == 600
    assert times[-1] == T0 + sec(1797)
    assert T0 + sec(1800) not in times
    assert rec.calls[-1] == ended(InvalidationReason.EXPIRED, T0 + sec(1800))


@misuse("notifyUser on a non-scheduled or non-running session")
@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("not-started", "the session is not running"),
        ("scheduled", "the session is not running"),
        ("invalid", "the session is not running"),
        ("self-care", "only smart-alarm sessions can alert"),
        ("therapy", "only smart-alarm sessions can alert"),
    ],
)
def test_notify_user_is_ignored_with_a_warning_unless_running_smart_alarm(
    host: VirtualHost, caplog: pytest.LogCaptureFixture, case: str, why: str
) -> None:
    mode = {"self-care": SELF_CARE, "therapy": THERAPY}.get(case, ALARM)
    session, rec = open_session(host, host.app("org.example.app", mode))
    if case == "scheduled":
        session.start_at(T0 + sec(600))
    elif case == "invalid":
        session.start_at(T0)
        session.invalidate()
    elif case in ("self-care", "therapy"):
        session.start()
    host.advance(0)
    state, calls = session.state, list(rec.calls)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        session.notify_user(HapticType.NOTIFICATION, lambda _: 1.0)
        host.advance(30)
    assert host.alerts == []
    assert session.state is state
    assert rec.calls == calls
    assert warnings_logged(caplog) == [
        f"notify_user ignored for session {session.session_id}: {why}"
    ]


def test_without_a_handler_the_engine_repeats_and_awaits_no_answer(host: VirtualHost) -> None:
    """No handler: nothing is called after a play, and every alert says no answer is due."""
    from extended_runtime._core.events import AlertPlayed

    app = host.app("org.example.sleep", ALARM)
    alarm = ExtendedRuntimeSession(app)
    alarm.start_at(T0)
    alarm.notify_user(HapticType.NOTIFICATION)
    host.advance(10)
    played = [e for e in host.events if isinstance(e, AlertPlayed)]
    assert [e.at for e in played] == [T0 + sec(s) for s in (0, 3, 6, 9)]
    assert not any(e.awaits_answer for e in played)


def test_with_a_handler_every_play_awaits_its_answer(host: VirtualHost) -> None:
    from extended_runtime._core.events import AlertPlayed

    alarm = ExtendedRuntimeSession(host.app("org.example.sleep", ALARM))
    alarm.start_at(T0)
    alarm.notify_user(HapticType.NOTIFICATION, lambda played: 2.0)
    host.advance(5)
    played = [e for e in host.events if isinstance(e, AlertPlayed)]
    assert [(e.at, e.awaits_answer) for e in played] == [
        (T0, True),
        (T0 + sec(2), True),
        (T0 + sec(4), True),
    ]
