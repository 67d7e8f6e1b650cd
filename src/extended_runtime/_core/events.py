"""What the engine says: past-tense events and imperative effects.

Theory
------
The engine answers every command and every timer with a list of *outputs*. Each output is one
of two kinds, both frozen values:

* an `Event` announces a change, past tense, stamped with the engine's `now`. Events come in
  three layers: `Event` (about the host: an effect failed), `AppEvent` (about one app: its alarms
  were disabled) and `SessionEvent` (about one session: it was scheduled, started, warned, alerted,
  handed over or invalidated). A session event carries `state`, the state the session is in once
  the event has happened, so whoever mirrors a session (the objects an app holds, a store, a
  client in another process) needs no rules of its own. The audit log, the store and the delegate
  calls are all fed from these same values;
* an `Effect` asks the host to do something that is not itself news: hold or release
  keep-awake, arm the wake alarm, launch an app, read CPU time.

When the host cannot perform an effect it tells the engine (`Engine.effect_failed`), which
announces an `EffectFailed` and goes on: a failure is an event, never a dead thread.

Nothing here refers to threads, sockets or the clock: a host in another process (the daemon)
can serialise these values as they are.
"""

from __future__ import annotations

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
from .values import Value

__all__ = [
    "AlarmEndedSilently",
    "AlarmsAllowed",
    "AlarmsDisabled",
    "AlertPlayed",
    "AppEvent",
    "AutoLaunchAnswered",
    "Effect",
    "EffectFailed",
    "Event",
    "ExpirationMoved",
    "KeepAwake",
    "LaunchApp",
    "Output",
    "RequestIgnored",
    "SampleCpu",
    "SessionEvent",
    "SessionHandedOver",
    "SessionInvalidated",
    "SessionResumed",
    "SessionScheduled",
    "SessionStarted",
    "SessionWillExpire",
    "WakeAlarm",
]


class Event(Value):
    """A change the engine made, at instant `at`."""

    at: datetime


class AppEvent(Event):
    """An event about one app."""

    app_id: str


class SessionEvent(AppEvent):
    """An event about one session; `state` is the session's state once it has happened."""

    session_id: str
    state: SessionState


class SessionScheduled(SessionEvent):
    """`start_at()` was accepted; the session starts at `start_date`."""

    session_type: SessionType
    start_date: datetime


class SessionStarted(SessionEvent):
    """The session runs until `expiration_date` (`None`: no limit).

    `lateness` is how long after its requested date a scheduled session started (zero for
    `start()`); a start that came while the machine slept shows here.
    """

    session_type: SessionType
    expiration_date: datetime | None
    lateness: timedelta = timedelta(0)


class SessionResumed(SessionEvent):
    """A session that ran when its host stopped runs on under the next host, claimed back by
    the process that holds it, until `expiration_date` (its budget was counted all along). No
    delegate call: the app heard `did_start` when it started."""

    session_type: SessionType
    expiration_date: datetime | None


class SessionWillExpire(SessionEvent):
    """The session will expire at `expiration_date`; finish up."""

    expiration_date: datetime


class ExpirationMoved(SessionEvent):
    """The wall clock was set by `moved_by`: the session keeps the rest of its budget, so its
    `expiration_date` moved with the clock. No delegate call; the session object shows it."""

    expiration_date: datetime
    moved_by: timedelta


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

    @property
    def refused(self) -> bool:
        """Whether the session never ran: a start or schedule that failed its checks."""
        return self.previous_state is SessionState.NOT_STARTED


class AlertPlayed(SessionEvent):
    """An alert played now. `by_host`: the host's own alert, not the app's `notify_user`.

    `sequence` identifies this play; when `awaits_answer`, the app's repeat handler is called and
    its answer (`Engine.set_next_alert`) must quote it.
    """

    haptic: HapticType
    by_host: bool
    sequence: int
    awaits_answer: bool = False


class SessionHandedOver(SessionEvent):
    """A (re)launched app receives a session it has no object for (Apple's `handle(_:)`).

    `missed` are the events of that session the app did not hear while it was not running,
    to deliver once the app has set a delegate.
    """

    session_type: SessionType
    expiration_date: datetime | None
    missed: tuple[SessionEvent, ...]


class RequestIgnored(AppEvent):
    """A call was ignored as Apple ignores it (for example `notify_user` when not alerting)."""

    session_id: str
    request: str
    message: str


class AlarmEndedSilently(AppEvent):
    """An alarm session ran and ended without alerting; `count` in a row so far."""

    session_id: str
    count: int


class AlarmsDisabled(AppEvent):
    """Too many silent alarms: the app's alarms are off until the user allows them again."""

    count: int


class AlarmsAllowed(AppEvent):
    """The user allowed the app's alarms again."""


class AutoLaunchAnswered(AppEvent):
    """The user answered the auto-launch question."""

    status: AutoLaunchAuthorizationStatus


class EffectFailed(Event):
    """The host could not perform an effect: it raised, or did not return in time.

    `effect` names what was asked (`keep-awake`, `wake-alarm`, `alert`, `dismiss`, `launch`,
    `cpu`, `record`), `backend` who was asked, and `app_id` / `session_id` whom it concerned,
    where one app or session did. The engine goes on; `xrs doctor` and the audit log show it.
    """

    effect: str
    backend: str
    message: str
    timed_out: bool = False
    app_id: str | None = None
    session_id: str | None = None


class Effect(Value):
    """Something the host must do."""


class KeepAwake(Effect, kw_only=False):
    """Hold (`held=True`) or release the host's keep-awake; `who` and `why` say for whom and
    for what, as tools that list inhibitors show it (a change of either is a new hold)."""

    held: bool
    who: str = ""
    why: str = ""


class WakeAlarm(Effect, kw_only=False):
    """Arm the wake alarm at `at` (the earliest scheduled start), or disarm it (`None`)."""

    at: datetime | None


class LaunchApp(Effect, kw_only=False):
    """Launch the app's declared command so it can take session `session_id`."""

    app_id: str
    session_id: str


class SampleCpu(Effect, kw_only=False):
    """Read the CPU seconds used so far by these process trees (`Engine.observe_cpu`)."""

    trees: tuple[str, ...]


Output = Event | Effect
