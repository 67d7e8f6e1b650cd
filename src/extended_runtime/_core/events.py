"""What the engine says: past-tense events and imperative effects.

Theory
------
The engine answers every command and every timer with a list of *outputs*. Each output is one
of two kinds, both frozen values:

* an `Event` announces a change, past tense, stamped with the engine's `now`
  (`SessionScheduled`, `SessionStarted`, `SessionWillExpire`, `SessionInvalidated`,
  `AlertPlayed`, ...). Every event names the app and the session it concerns, so the audit log,
  the store and the delegate calls are all fed from the same values. Hosts play an alert on
  `AlertPlayed` and update session objects on the session events;
* an `Effect` asks the host to do something that is not itself news: hold or release
  keep-awake, arm the wake alarm, launch an app, sample CPU.

Nothing here refers to threads, sockets or the clock: a host in another process (the daemon)
can serialise these values as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .enums import (
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from .errors import ExtendedRuntimeSessionError

__all__ = [
    "AlarmEndedSilently",
    "AlarmsAllowed",
    "AlarmsDisabled",
    "AlertPlayed",
    "AppLaunchFailed",
    "AutoLaunchAnswered",
    "Effect",
    "Event",
    "KeepAwake",
    "LaunchApp",
    "Output",
    "RequestIgnored",
    "SampleCpu",
    "SessionEvent",
    "SessionHandedOver",
    "SessionInvalidated",
    "SessionScheduled",
    "SessionStarted",
    "SessionWillExpire",
    "WakeAlarm",
]


@dataclass(frozen=True, slots=True)
class Event:
    """A change the engine made, at instant `at`, for app `app_id`."""

    at: datetime
    app_id: str


@dataclass(frozen=True, slots=True)
class SessionEvent(Event):
    """An event about one session."""

    session_id: str


@dataclass(frozen=True, slots=True)
class SessionScheduled(SessionEvent):
    """`start_at()` was accepted; the session starts at `start_date`."""

    session_type: SessionType
    start_date: datetime


@dataclass(frozen=True, slots=True)
class SessionStarted(SessionEvent):
    """The session runs until `expiration_date` (`None`: no limit).

    `lateness` is how long after its requested date a scheduled session started (zero for
    `start()`); a start that came while the machine slept shows here.
    """

    session_type: SessionType
    expiration_date: datetime | None
    lateness: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class SessionWillExpire(SessionEvent):
    """The session will expire at `expiration_date`; finish up."""

    expiration_date: datetime


@dataclass(frozen=True, slots=True)
class SessionInvalidated(SessionEvent):
    """The session ended (or never started) for `reason`; `error_code` when reason is ERROR."""

    session_type: SessionType | None
    previous_state: SessionState
    reason: InvalidationReason
    error_code: ErrorCode | None = None
    message: str | None = None

    @property
    def error(self) -> ExtendedRuntimeSessionError | None:
        """The error the delegate receives, or `None` unless `reason` is ERROR."""
        if self.error_code is None:
            return None
        return ExtendedRuntimeSessionError(self.error_code, self.message)


@dataclass(frozen=True, slots=True)
class AlertPlayed(SessionEvent):
    """An alert played now. `by_host`: the host's own alert, not the app's `notify_user`.

    `sequence` identifies this play; a repeat handler's answer must quote it.
    """

    haptic: HapticType
    by_host: bool
    sequence: int


@dataclass(frozen=True, slots=True)
class SessionHandedOver(SessionEvent):
    """A (re)launched app receives a session it has no object for (Apple's `handle(_:)`).

    `missed` are the events of that session the app did not hear while it was not running,
    to deliver once the app has set a delegate.
    """

    session_type: SessionType
    state: SessionState
    expiration_date: datetime | None
    missed: tuple[SessionEvent, ...]


@dataclass(frozen=True, slots=True)
class RequestIgnored(SessionEvent):
    """A call was ignored as Apple ignores it (for example `notify_user` when not alerting)."""

    request: str
    message: str


@dataclass(frozen=True, slots=True)
class AlarmEndedSilently(SessionEvent):
    """An alarm session ran and ended without alerting; `count` in a row so far."""

    count: int


@dataclass(frozen=True, slots=True)
class AlarmsDisabled(Event):
    """Too many silent alarms: the app's alarms are off until the user allows them again."""

    count: int


@dataclass(frozen=True, slots=True)
class AlarmsAllowed(Event):
    """The user allowed the app's alarms again."""


@dataclass(frozen=True, slots=True)
class AutoLaunchAnswered(Event):
    """The user answered the auto-launch question."""

    status: AutoLaunchAuthorizationStatus


@dataclass(frozen=True, slots=True)
class AppLaunchFailed(Event):
    """The host could not launch the app for a session; the host alerts instead."""

    message: str


@dataclass(frozen=True, slots=True)
class Effect:
    """Something the host must do."""


@dataclass(frozen=True, slots=True)
class KeepAwake(Effect):
    """Hold (`held=True`) or release the host's keep-awake."""

    held: bool


@dataclass(frozen=True, slots=True)
class WakeAlarm(Effect):
    """Arm the wake alarm at `at` (the earliest scheduled start), or disarm it (`None`)."""

    at: datetime | None


@dataclass(frozen=True, slots=True)
class LaunchApp(Effect):
    """Launch the app's declared command so it can take session `session_id`."""

    app_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class SampleCpu(Effect):
    """Report CPU seconds used so far by these apps' process trees (`Engine.observe_cpu`)."""

    app_ids: tuple[str, ...]


Output = Event | Effect
