"""One scenario suite, three hosts: the virtual host, the embedded host and the daemon.

DESIGN.md: the hosts are alike, and the VirtualHost is the reference for behaviour. Each
scenario here runs on a *stage* per host and must see the same delegate calls at the same
instants: on the `VirtualHost`; on an `EmbeddedHost` driven by a `MockClock` (its real timer
thread, effect workers and delegate thread); and on a `DaemonHost` on a `MockClock` serving a
real Unix socket, with the app's objects in a `DaemonClient`, so every call crosses the real
protocol (frames, typed messages, pushes before replies) and every delegate call is delivered by
the client as an app would see it. The backends are the logging stand-ins: what is compared is
behaviour, not the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from extended_runtime import (
    App,
    ApplicationState,
    Backends,
    EmbeddedHost,
    ErrorCode,
    ExtendedRuntimeSession,
    HapticType,
    InvalidationReason,
    Policy,
    SessionState,
    SessionType,
)
from extended_runtime._daemon.client import DaemonClient
from extended_runtime._daemon.host import DaemonHost
from extended_runtime._daemon.server import Server
from extended_runtime.testing import MockClock, VirtualHost

from .helpers import ALARM, MINDFULNESS, SELF_CARE, T0, THERAPY, Call, Recorder, sec


class Stage(Protocol):
    """A host to play a scenario on."""

    @property
    def now(self) -> datetime: ...

    def app(self, app_id: str, mode: SessionType | None, state: ApplicationState = ...) -> App: ...

    def advance(self, seconds: float) -> None: ...

    def pause(self, paused: bool) -> None: ...


class _Stage:
    """What every stage shares: apps bound to `port`, the host the app's objects talk to."""

    port: Any

    def app(
        self,
        app_id: str,
        mode: SessionType | None,
        state: ApplicationState = ApplicationState.ACTIVE,
    ) -> App:
        return App(app_id, mode, state=state, host=self.port)


class VirtualStage(_Stage):
    def __init__(self) -> None:
        self.host = self.port = VirtualHost(now=T0)

    @property
    def now(self) -> datetime:
        return self.host.now

    def advance(self, seconds: float) -> None:
        self.host.advance(seconds)

    def pause(self, paused: bool) -> None:
        self.host.set_suppressed(paused)
        self.host.advance(0)

    def close(self) -> None:
        pass


class EmbeddedStage(_Stage):
    """An engine host on a `MockClock`, moved timer by timer and settled at each."""

    def __init__(self) -> None:
        self.clock = MockClock(T0)
        self.host = self.port = EmbeddedHost(
            Policy(), clock=self.clock, backends=Backends(cpu=None)
        )

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def settle(self) -> bool:
        return self.host.settle()

    def advance(self, seconds: float) -> None:
        assert self.settle()
        if seconds:
            _step(self.clock, seconds, self.host.engine.next_deadline, self.settle)
        assert self.settle()

    def pause(self, paused: bool) -> None:
        self.host.set_suppressed(paused)
        assert self.settle()

    def close(self) -> None:
        self.host.close()


class DaemonStage(EmbeddedStage):
    """A `DaemonHost` on a `MockClock` behind a real socket; the app's objects in a client."""

    def __init__(self, folder: Path) -> None:
        self.clock = MockClock(T0)
        self.host = DaemonHost(Policy(), clock=self.clock, backends=Backends(cpu=None))
        self.server = Server(self.host, str(folder / "daemon.sock"))
        self.server.listen()
        self.port = DaemonClient(self.server.path)

    def settle(self) -> bool:
        return self.host.settle() and self.port.settle() and self.host.settle()

    def close(self) -> None:
        self.port.close()
        self.server.close()
        self.host.close()


def _step(clock: MockClock, seconds: float, next_deadline: Any, settle: Any) -> None:
    """Move the clock deadline by deadline, settling at each, as the virtual host advances:
    a delegate call then sees the instant of the timer that caused it."""
    target = clock.now() + timedelta(seconds=seconds)
    while (due := next_deadline()) is not None and due <= target:
        if due > clock.now():
            clock.jump((due - clock.now()).total_seconds())
        assert settle()
    if target > clock.now():
        clock.jump((target - clock.now()).total_seconds())


@pytest.fixture(params=["virtual", "embedded", "daemon"])
def stage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made: Any
    if request.param == "virtual":
        made = VirtualStage()
    elif request.param == "embedded":
        made = EmbeddedStage()
    else:
        made = DaemonStage(tmp_path)
    try:
        yield made
    finally:
        made.close()


def _session(stage: Any, app: App) -> tuple[ExtendedRuntimeSession, Recorder]:
    recorder = Recorder(stage)
    return ExtendedRuntimeSession(app=app, delegate=recorder), recorder


def test_a_mindfulness_session_warns_then_expires(stage: Any) -> None:
    session, calls = _session(stage, stage.app("org.example.calm", MINDFULNESS))
    session.start()
    assert session.state is SessionState.RUNNING
    assert session.expiration_date == T0 + timedelta(hours=1)
    stage.advance(3600)
    assert calls.calls == [
        Call("did_start", T0),
        Call("will_expire", T0 + timedelta(minutes=59)),
        Call("did_invalidate", T0 + timedelta(hours=1), InvalidationReason.EXPIRED, None),
    ]
    assert session.state is SessionState.INVALID


def test_invalidate_ends_a_running_session_with_none(stage: Any) -> None:
    session, calls = _session(stage, stage.app("org.example.care", SELF_CARE))
    session.start()
    stage.advance(30)
    session.invalidate()
    assert session.state is SessionState.INVALID
    stage.advance(0)
    assert calls.calls == [
        Call("did_start", T0),
        Call("did_invalidate", T0 + sec(30), InvalidationReason.NONE, None),
    ]


def test_a_smart_alarm_starts_at_its_date_and_repeats_its_alert(stage: Any) -> None:
    session, calls = _session(stage, stage.app("org.example.wake", ALARM))
    session.start_at(T0 + sec(120))
    assert session.state is SessionState.SCHEDULED
    stage.advance(120)
    assert session.state is SessionState.RUNNING
    assert calls.names == ["did_start"]
    assert calls.calls[0].at == T0 + sec(120)
    played: list[HapticType] = []

    def every_ten(haptic: HapticType) -> float:
        played.append(haptic)
        return 10.0

    session.notify_user(HapticType.NOTIFICATION, every_ten)
    stage.advance(35)
    assert len(played) == 4  # at 0, 10, 20 and 30 s
    session.invalidate()
    stage.advance(0)
    assert calls.names == ["did_start", "did_invalidate"]
    assert calls.calls[1].reason is InvalidationReason.NONE


def test_a_second_session_of_the_app_is_refused_in_progress(stage: Any) -> None:
    app = stage.app("org.example.twice", THERAPY)
    first, first_calls = _session(stage, app)
    second, second_calls = _session(stage, app)
    first.start()
    second.start()
    stage.advance(0)
    assert first.state is SessionState.RUNNING
    assert second_calls.calls == [
        Call("did_invalidate", T0, InvalidationReason.SESSION_IN_PROGRESS, None)
    ]
    assert first_calls.names == ["did_start"]


def test_a_frontmost_session_ends_when_the_app_goes_to_the_background(stage: Any) -> None:
    app = stage.app("org.example.front", MINDFULNESS)
    session, calls = _session(stage, app)
    session.start()
    stage.advance(5)
    app.state = ApplicationState.BACKGROUND
    stage.advance(0)
    assert calls.calls[-1] == Call(
        "did_invalidate", T0 + sec(5), InvalidationReason.RESIGNED_FRONTMOST, None
    )


@pytest.mark.parametrize(
    ("mode", "state", "when", "code"),
    [
        (ALARM, ApplicationState.ACTIVE, None, ErrorCode.UNSUPPORTED_SESSION_TYPE),
        (MINDFULNESS, ApplicationState.ACTIVE, sec(60), ErrorCode.NOT_APPROVED_TO_SCHEDULE),
        (
            ALARM,
            ApplicationState.ACTIVE,
            timedelta(hours=37),
            ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE,
        ),
        (
            ALARM,
            ApplicationState.BACKGROUND,
            sec(60),
            ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE,
        ),
        (None, ApplicationState.ACTIVE, None, ErrorCode.NOT_APPROVED_TO_START_SESSION),
    ],
)
def test_refusals_carry_apple_s_error_codes(
    stage: Any,
    mode: SessionType | None,
    state: ApplicationState,
    when: timedelta | None,
    code: ErrorCode,
) -> None:
    session, calls = _session(stage, stage.app("org.example.refused", mode, state))
    if when is None:
        session.start()
    else:
        session.start_at(T0 + when)
    assert session.state is SessionState.INVALID
    stage.advance(0)
    (call,) = calls.calls
    assert call.reason is InvalidationReason.ERROR
    assert call.error is not None and call.error.code is code


def test_invalidate_before_start_is_not_yet_started(stage: Any) -> None:
    session, calls = _session(stage, stage.app("org.example.early", SELF_CARE))
    session.invalidate()
    stage.advance(0)
    (call,) = calls.calls
    assert call.error is not None and call.error.code is ErrorCode.NOT_YET_STARTED


def test_pausing_ends_running_sessions_and_refuses_new_ones(stage: Any) -> None:
    session, calls = _session(stage, stage.app("org.example.paused", THERAPY))
    session.start()
    stage.advance(1)
    stage.pause(True)
    assert calls.calls[-1].reason is InvalidationReason.SUPPRESSED_BY_SYSTEM
    late, late_calls = _session(stage, stage.app("org.example.later", THERAPY))
    late.start()
    stage.advance(0)
    assert late_calls.calls[-1].reason is InvalidationReason.SUPPRESSED_BY_SYSTEM
    stage.pause(False)
    again, again_calls = _session(stage, stage.app("org.example.again", THERAPY))
    again.start()
    stage.advance(0)
    assert again_calls.names == ["did_start"]


def test_an_alarm_scheduled_then_invalidated_never_starts(stage: Any) -> None:
    session, calls = _session(stage, stage.app("org.example.cancel", ALARM))
    session.start_at(T0 + timedelta(hours=8))
    stage.advance(60)
    session.invalidate()
    stage.advance(8 * 3600)
    assert calls.calls == [Call("did_invalidate", T0 + sec(60), InvalidationReason.NONE, None)]
