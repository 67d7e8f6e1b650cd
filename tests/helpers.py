"""Helpers for the scenario tests on a `VirtualHost`: a recording delegate, set-ups and checks.

The spec's misuse matrix (section 2.10) is listed here as `MISUSE_MATRIX`. Each row is pinned by
at least one test decorated with `@misuse(row)`; `test_misuse_matrix.py` fails if a row has
none, and `pytest -m misuse` runs them all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from extended_runtime import (
    ERROR_DOMAIN,
    App,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    Policy,
    SessionState,
    SessionType,
)
from extended_runtime.testing import VirtualHost

#: The instant a default `VirtualHost` starts at.
T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)

#: The library's logger: refusals, ignored requests and silent alarms are reported there.
LOGGER = "extended_runtime"

ALARM = SessionType.SMART_ALARM
SELF_CARE = SessionType.SELF_CARE
MINDFULNESS = SessionType.MINDFULNESS
THERAPY = SessionType.PHYSICAL_THERAPY
UNDERWATER = SessionType.UNDERWATER_DEPTH

#: Apple's NSLocalizedDescription for code 3, from a device log (spec section 3.3).
APPLE_CODE_3 = (
    "The app must be active and before applicationWillResignActive to start or schedule a "
    "WKExtendedRuntimeSession."
)

#: The rows of the spec's misuse matrix (section 2.10), in its words and order.
MISUSE_MATRIX = (
    "start()/start(at:) while app not active",
    "start(at:) with a non-alarm type",
    "start(at:) more than 36 h ahead",
    "start(at:) more than 1 min in the past",
    "start(at:) with Background App Refresh off",
    "Start with no ERS mode in Info.plist",
    "Second session while one runs",
    "invalidate() before any start",
    "invalidate() on an alarm session while app inactive",
    "notifyUser on a non-scheduled or non-running session",
    "start() with the alarm type",
    "Reusing an invalidated object",
    "Smart alarm session that never plays a haptic",
    "Sustained high CPU",
    "Delegate not set in handle(_:)",
    "requestAutoLaunchAuthorizationStatus with an unsupported type, or while not foreground "
    "before any prompt",
)


def misuse(row: str) -> pytest.MarkDecorator:
    """Mark a test as the one pinning `row` of the spec's misuse matrix."""
    if row not in MISUSE_MATRIX:
        raise ValueError(f"not a row of the misuse matrix: {row!r}")
    return pytest.mark.misuse(row)


def eventually(check: Callable[[], bool], timeout: float = 5.0, step: float = 0.005) -> bool:
    """Whether `check` holds within `timeout` real seconds, looked at every `step` seconds
    (for tests whose threads run freely)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def sec(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Call:
    """One delegate call: its name, `host.now` during it, and the invalidation details."""

    name: str
    at: datetime
    reason: InvalidationReason | None = None
    error: ExtendedRuntimeSessionError | None = None


class Timed(Protocol):
    """A host, as a recorder sees it: its current instant."""

    @property
    def now(self) -> datetime: ...


class Recorder(ExtendedRuntimeSessionDelegate):
    """A delegate that records every call with the host's time (any host: virtual or embedded).

    Several recorders may share one `journal` to see the order of calls across sessions; each
    entry there is `(label, call)`.
    """

    def __init__(
        self,
        host: Timed,
        label: str = "",
        journal: list[tuple[str, Call]] | None = None,
    ) -> None:
        self.host = host
        self.label = label
        self.journal = journal
        self.calls: list[Call] = []
        #: The session object each call received, and its `state` during the call.
        self.seen: list[tuple[ExtendedRuntimeSession, SessionState]] = []

    def _record(self, session: ExtendedRuntimeSession, call: Call) -> None:
        self.calls.append(call)
        self.seen.append((session, session.state))
        if self.journal is not None:
            self.journal.append((self.label, call))

    @property
    def names(self) -> list[str]:
        """The names of the calls so far, in order."""
        return [call.name for call in self.calls]

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self._record(session, Call("did_start", self.host.now))

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self._record(session, Call("will_expire", self.host.now))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self._record(session, Call("did_invalidate", self.host.now, reason, error))

    def only_invalidation(self) -> Call:
        """The single call made, which must be `did_invalidate`."""
        assert self.names == ["did_invalidate"], self.names
        return self.calls[0]


def open_session(
    host: VirtualHost,
    app: App,
    label: str = "",
    journal: list[tuple[str, Call]] | None = None,
) -> tuple[ExtendedRuntimeSession, Recorder]:
    """A new session of `app` with a recording delegate."""
    recorder = Recorder(host, label, journal)
    return ExtendedRuntimeSession(app=app, delegate=recorder), recorder


def begin(session: ExtendedRuntimeSession, call: str, when: datetime) -> None:
    """`start()` when `call` is "start", else `start_at(when)`."""
    if call == "start":
        session.start()
    else:
        session.start_at(when)


def error_code(call: Call) -> ErrorCode | None:
    """The error code a call reported, or `None` when it carried no error."""
    return None if call.error is None else call.error.code


def ended(reason: InvalidationReason, at: datetime) -> Call:
    """The expected `did_invalidate` call for a reason without an error."""
    return Call("did_invalidate", at, reason, None)


def assert_error(call: Call, code: ErrorCode, message: str | None = None) -> None:
    """`call` is a `did_invalidate` with reason ERROR and `code` in Apple's error domain.

    With `message`, the error's message is exactly that.
    """
    assert call.name == "did_invalidate"
    assert call.reason is InvalidationReason.ERROR
    error = call.error
    assert error is not None
    assert error.code is code
    assert error.domain == ERROR_DOMAIN
    if message is not None:
        assert error.message == message


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages logged at WARNING by the library, in order."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name.startswith(LOGGER)
    ]


def run_silent_alarm(host: VirtualHost, app: App) -> None:
    """An alarm session that reaches RUNNING and ends without alerting."""
    session = ExtendedRuntimeSession(app=app)
    session.start_at(host.now)
    assert session.state is SessionState.RUNNING
    session.invalidate()
    host.advance(0)


def run_alerting_alarm(host: VirtualHost, app: App) -> None:
    """An alarm session that alerts once, then is invalidated."""
    session = ExtendedRuntimeSession(app=app)
    session.start_at(host.now)
    session.notify_user(HapticType.NOTIFICATION, lambda _: None)
    session.invalidate()
    host.advance(0)


def running_alarm(host: VirtualHost) -> tuple[App, ExtendedRuntimeSession, Recorder]:
    """A smart-alarm session started at `host.now`, with a recorder."""
    app = host.app("org.example.sleep", ALARM)
    session, rec = open_session(host, app)
    session.start_at(host.now)
    assert session.state is SessionState.RUNNING
    return app, session, rec


def allow_auto_launch(host: VirtualHost, app: App) -> None:
    """The user is asked about auto-launch for `app` and allows it."""
    host.set_auto_launch_answer(app, True)
    ExtendedRuntimeSession.request_auto_launch_authorization_status(app)


def set_conditions(host: VirtualHost, **changes: Any) -> None:
    """Change some of the host's system conditions (power saver, battery, shutdown)."""
    host.set_conditions(replace(host.engine.conditions, **changes))


def short_policy(**seconds: float) -> Policy:
    """Real-time tests' limits: a few seconds per type (`with_limits` names) and a 0.5 s lead."""
    return replace(Policy().with_limits(**seconds), will_expire_lead=timedelta(seconds=0.5))
