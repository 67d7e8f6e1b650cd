"""The engine: every session rule, without I/O.

Theory of operation
-------------------
The engine is a pure state machine in the style of h11: it does no I/O, reads no clock and
starts no thread. A host feeds it *commands* (the app's calls, observations of the system) and
*time* (`advance(now)` when `next_deadline()` has come); each call returns the outputs it
caused, `Event`s and `Effect`s from `_events`, in the order they happened. The host performs
the effects and delivers the events. Three hosts share this one engine: the virtual host for
tests, the embedded host in an app's own process, and (later) the per-user daemon.

What it owns:

* each live session (SCHEDULED or RUNNING) and its timers; every state change goes through
  `_transitions.transition`, so an impossible change raises and changes nothing;
* arbitration across apps: one running-or-scheduled session per app, the keep-awake held while
  any session runs on the host, the wake alarm at the earliest scheduled start;
* the rules of DESIGN.md that Apple leaves open: precondition order, the 60 s will-expire lead,
  start dates in the past, alerts and their repetition, the three-silent-alarms rule,
  suppression, the CPU budget, relaunch (`handle(_:)`) and the host's own alert for an alarm whose
  app is not running.

Apps and processes: an app is *alive* while a process of it runs. Each process gets a
generation number; a session belongs to the generation that created (or was handed) it. When
the process exits, its sessions become *orphans*: the calls their delegate should have heard
are kept as `missed` and handed to the next process of the app in a `SessionHandedOver`, which
is how a relaunched app hears of a session it did not create. The engine keeps them until that
process sets a delegate (`delegate_attached`), so a process that exits before doing so loses
nothing: the next one is handed the session again.

Ended sessions leave the engine at once (the store and the audit log keep history), so memory
grows with live sessions only.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from .conditions import Conditions
from .enums import (
    FRONTMOST_TYPES,
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from .errors import ExtendedRuntimeSessionError, SessionUsageError
from .events import (
    AlarmEndedSilently,
    AlarmsAllowed,
    AlarmsDisabled,
    AlertPlayed,
    AppLaunchFailed,
    AutoLaunchAnswered,
    KeepAwake,
    LaunchApp,
    Output,
    RequestIgnored,
    SampleCpu,
    SessionEvent,
    SessionHandedOver,
    SessionInvalidated,
    SessionScheduled,
    SessionStarted,
    SessionWillExpire,
    WakeAlarm,
)
from .policy import Policy
from .timers import Scheduled, TimerKind, TimerQueue
from .transitions import REASONS, Trigger, transition

__all__ = ["Engine", "Refusal"]

#: The events a delegate hears (the others are for the host and the audit log).
_DELEGATE_EVENTS = (SessionStarted, SessionWillExpire, SessionInvalidated)

_ZERO = timedelta(0)
_MAX_UNDELIVERED = 32
_S = SessionState

#: A refused start: the reason, the error code (for ERROR) and a message (`None`: the default).
Refusal = tuple[InvalidationReason, ErrorCode | None, str | None]

_ERROR = InvalidationReason.ERROR


class _App:
    """What the engine knows of one app.

    A scheduled alarm needs its app's record, so the record stays small: CPU samples and
    undelivered sessions, which few apps have at a time, live in maps of the engine.
    """

    __slots__ = (
        "alarms_disabled",
        "alive",
        "app_id",
        "approved",
        "auto_launch",
        "gen",
        "launchable",
        "mode",
        "running",
        "scheduled",
        "silent",
        "state",
    )

    def __init__(self, app_id: str, mode: SessionType | None, launchable: bool) -> None:
        self.app_id = app_id
        self.mode = mode
        self.state = ApplicationState.ACTIVE
        self.alive = True
        self.gen = 0
        self.launchable = launchable
        self.approved = True
        self.auto_launch = AutoLaunchAuthorizationStatus.UNKNOWN
        self.alarms_disabled = False
        self.silent = 0
        self.running: _Session | None = None
        self.scheduled: _Session | None = None


class _Run:
    """What only a started session has: its budget, its alerts, its relaunch deadline."""

    __slots__ = (
        "alert_by_host",
        "alert_haptic",
        "alert_seq",
        "alert_waiting",
        "alerted",
        "awaiting_delegate",
        "expires_at",
        "last_alert_at",
        "started_at",
    )

    def __init__(self, started_at: datetime, expires_at: datetime | None) -> None:
        self.started_at = started_at
        self.expires_at = expires_at
        self.alerted = False
        self.alert_seq = 0
        self.alert_by_host = False
        self.alert_waiting = False
        self.alert_haptic = HapticType.NOTIFICATION
        self.last_alert_at: datetime | None = None
        self.awaiting_delegate = False


class _Session(Scheduled):
    """One live session, and its own entry in the heap of scheduled starts (`Scheduled`).

    Hundreds of thousands may wait for their start date, so a session holds only what waiting
    needs; what running needs is in `run`, from the start on.
    """

    __slots__ = ("app", "gen", "id", "missed", "run", "state", "type")

    def __init__(self, session_id: str, app: _App, session_type: SessionType) -> None:
        super().__init__()
        self.id = session_id
        self.app = app
        self.type = session_type
        self.state = _S.NOT_STARTED
        self.gen = app.gen
        self.run: _Run | None = None
        self.missed: list[SessionEvent] | None = None

    @property
    def orphaned(self) -> bool:
        """No live process of the app holds an object for this session."""
        return not self.app.alive or self.gen != self.app.gen


class Engine:
    """The sans-I/O session engine. Not thread-safe: a host serialises calls to it."""

    def __init__(self, policy: Policy | None = None, conditions: Conditions | None = None) -> None:
        self.policy = policy if policy is not None else Policy()
        self._conditions = conditions if conditions is not None else Conditions()
        self._apps: dict[str, _App] = {}
        self._sessions: dict[str, _Session] = {}
        self._running: dict[str, _Session] = {}
        self._cpu: dict[str, deque[tuple[datetime, float]]] = {}  # samples, by app id
        self._undelivered: dict[str, list[_Session]] = {}  # by app id
        self._handed: dict[str, _Session] = {}  # handed over, no delegate yet
        self._timers: TimerQueue[_Session] = TimerQueue()
        self._out: list[Output] = []
        self._keep_awake = False
        self._wake_at: datetime | None = None
        self._cpu_armed = False
        self._window_seconds = self.policy.cpu_window.total_seconds()
        self._budgets = {kind: self.policy.cpu_budget(kind) for kind in SessionType}
        self._fire: dict[TimerKind, Callable[[_Session, int, datetime], None]] = {
            TimerKind.EXPIRE: self._on_expire,
            TimerKind.DELEGATE_DEADLINE: self._on_delegate_deadline,
            TimerKind.START: self._on_start,
            TimerKind.WARN: self._on_warn,
            TimerKind.ALERT: self._on_alert,
        }

    # ------------------------------------------------------------------ queries

    @property
    def conditions(self) -> Conditions:
        """The system conditions the engine currently applies."""
        return self._conditions

    @property
    def keep_awake_held(self) -> bool:
        """Whether the engine has asked the host to hold keep-awake."""
        return self._keep_awake

    def next_deadline(self) -> datetime | None:
        """The earliest instant at which `advance` has something to do, or `None`."""
        return self._timers.next_deadline()

    def session_state(self, session_id: str) -> SessionState | None:
        """The state of a live session, or `None` if the engine does not hold it."""
        session = self._sessions.get(session_id)
        return None if session is None else session.state

    def running_sessions(self) -> dict[str, str]:
        """Running session ids, each with its app id."""
        return {sid: s.app.app_id for sid, s in self._running.items()}

    def scheduled_count(self) -> int:
        """How many sessions wait for their start date."""
        return len(self._sessions) - len(self._running)

    def app_state(self, app_id: str) -> ApplicationState:
        """The foreground state the engine holds for an app."""
        return self._app(app_id).state

    def auto_launch_status(self, app_id: str) -> AutoLaunchAuthorizationStatus:
        """The stored auto-launch answer of an app."""
        return self._app(app_id).auto_launch

    def alarms_disabled(self, app_id: str) -> bool:
        """Whether the app's alarms are disabled after silent alarms."""
        return self._app(app_id).alarms_disabled

    # ------------------------------------------------------------------ apps

    def register_app(
        self,
        app_id: str,
        mode: SessionType | None,
        *,
        state: ApplicationState = ApplicationState.ACTIVE,
        launchable: bool = False,
    ) -> None:
        """Make an app known (its process is alive), or update its declaration."""
        app = self._apps.get(app_id)
        if app is None:
            app = self._apps[app_id] = _App(app_id, mode, launchable)
            app.state = state
        app.mode = mode
        app.launchable = launchable

    def _app(self, app_id: str) -> _App:
        try:
            return self._apps[app_id]
        except KeyError:
            raise SessionUsageError(f"app {app_id!r} is not registered with this host") from None

    def set_app_state(self, app_id: str, state: ApplicationState, now: datetime) -> list[Output]:
        """The app's foreground state changed; a frontmost session ends on BACKGROUND."""
        app = self._app(app_id)
        app.state = ApplicationState(state)
        session = app.running
        if (
            state is ApplicationState.BACKGROUND
            and session is not None
            and session.type in FRONTMOST_TYPES
            and not session.orphaned
        ):
            self._end(session, Trigger.RESIGN, now)
        return self._finish()

    def set_approved(self, app_id: str, approved: bool, now: datetime) -> list[Output]:
        """The user allowed or denied the app's sessions (denied: NOT_APPROVED_TO_START)."""
        self._app(app_id).approved = approved
        return self._finish()

    def allow_alarms(self, app_id: str, now: datetime) -> list[Output]:
        """The user allows an app's alarms again after they were disabled."""
        app = self._app(app_id)
        app.alarms_disabled = False
        app.silent = 0
        self._out.append(AlarmsAllowed(now, app_id))
        return self._finish()

    # ------------------------------------------------------------------ session commands

    def start(self, session_id: str, app_id: str, now: datetime) -> list[Output]:
        """`start()`: run the session now, or refuse it with a reason."""
        app = self._app(app_id)
        self._require_new(session_id)
        refusal = self._check(app, None, now)
        if refusal is not None:
            self._refuse(session_id, app, now, refusal)
            return self._finish()
        assert app.mode is not None
        session = self._new_session(session_id, app, app.mode, Trigger.START)
        self._begin_running(session, now, now, _ZERO)
        return self._finish()

    def start_at(self, session_id: str, app_id: str, when: datetime, now: datetime) -> list[Output]:
        """`start_at(when)`: schedule the session, start it at once, or refuse it."""
        app = self._app(app_id)
        self._require_new(session_id)
        refusal = self._check(app, when, now)
        if refusal is not None:
            self._refuse(session_id, app, now, refusal)
            return self._finish()
        assert app.mode is not None
        session = self._new_session(session_id, app, app.mode, Trigger.SCHEDULE)
        session.start_date = when
        app.scheduled = session
        self._emit(session, SessionScheduled(now, app_id, session_id, session.type, when))
        if when <= now:
            self._fire_start(session, now)
        else:
            self._timers.add(when, TimerKind.START, session)
        return self._finish()

    def invalidate(self, session_id: str, app_id: str, now: datetime) -> list[Output]:
        """`invalidate()`: end a scheduled or running session, or fail a never-started one.

        Raises `ExtendedRuntimeSessionError(MUST_BE_ACTIVE_TO_START_OR_SCHEDULE)` for an alarm
        session while the app is not ACTIVE, changing nothing.
        """
        app = self._app(app_id)
        session = self._sessions.get(session_id)
        if session is None:
            refusal = (_ERROR, ErrorCode.NOT_YET_STARTED, None)
            self._refuse(session_id, app, now, refusal, Trigger.CANCEL)
            return self._finish()
        if session.type is SessionType.SMART_ALARM and app.state is not ApplicationState.ACTIVE:
            raise ExtendedRuntimeSessionError(ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE)
        self._end(session, Trigger.INVALIDATE, now)
        return self._finish()

    def stop_alarm(self, app_id: str, now: datetime) -> list[Output]:
        """The user pressed Stop: end the app's running alarm (else its scheduled one)."""
        app = self._app(app_id)
        session = app.running or app.scheduled
        if session is not None and session.type is SessionType.SMART_ALARM:
            self._end(session, Trigger.USER_STOP, now)
        return self._finish()

    def _require_new(self, session_id: str) -> None:
        if session_id in self._sessions:
            state = self._sessions[session_id].state
            raise SessionUsageError(
                f"session {session_id} is {state.name}: a session can be started only once; "
                "create a new ExtendedRuntimeSession"
            )

    def _check(self, app: _App, when: datetime | None, now: datetime) -> Refusal | None:
        """The first failed precondition in DESIGN.md's order, or `None`."""
        if app.state is not ApplicationState.ACTIVE or not app.alive:
            return _ERROR, ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE, None
        if app.mode is None or not app.approved:
            return _ERROR, ErrorCode.NOT_APPROVED_TO_START_SESSION, None
        type_refusal = self._check_type(app.mode, when, now)
        if type_refusal is not None:
            return type_refusal
        if when is not None and app.alarms_disabled:
            return _ERROR, ErrorCode.BAR_DISABLED, None
        if app.running is not None or app.scheduled is not None:
            return InvalidationReason.SESSION_IN_PROGRESS, None, None
        if when is None and self._suppressed(app.mode):
            return InvalidationReason.SUPPRESSED_BY_SYSTEM, None, None
        return None

    def _check_type(
        self, mode: SessionType, when: datetime | None, now: datetime
    ) -> Refusal | None:
        policy = self.policy
        if when is None:
            unsupported = mode is SessionType.SMART_ALARM or (
                mode is SessionType.UNDERWATER_DEPTH and not policy.underwater_supported
            )
            if unsupported:
                return _ERROR, ErrorCode.UNSUPPORTED_SESSION_TYPE, _unsupported(mode)
            return None
        if mode is not SessionType.SMART_ALARM:
            return _ERROR, ErrorCode.NOT_APPROVED_TO_SCHEDULE, None
        if when > now + policy.schedule_horizon:
            return _ERROR, ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE, None
        if when < now - policy.past_tolerance:
            return _ERROR, ErrorCode.UNKNOWN, _too_far_past(when, now, policy)
        return None

    def _refuse(
        self,
        session_id: str,
        app: _App,
        now: datetime,
        refusal: Refusal,
        trigger: Trigger = Trigger.REFUSE,
    ) -> None:
        """A session that never left NOT_STARTED becomes INVALID (refused, or cancelled)."""
        reason, code, message = refusal
        transition(_S.NOT_STARTED, trigger)
        self._out.append(
            SessionInvalidated(
                now, app.app_id, session_id, app.mode, _S.NOT_STARTED, reason, code, message
            )
        )

    def _new_session(
        self, session_id: str, app: _App, mode: SessionType, trigger: Trigger
    ) -> _Session:
        session = _Session(session_id, app, mode)
        session.state = transition(_S.NOT_STARTED, trigger)
        self._sessions[session_id] = session
        return session

    # ------------------------------------------------------------------ running

    def _begin_running(
        self, session: _Session, now: datetime, base: datetime, lateness: timedelta
    ) -> None:
        """Enter RUNNING: set the expiration from `base`, arm expiry and warning, sample CPU."""
        app = session.app
        limit = self.policy.limit(session.type)
        expires = None if limit is None else base + limit
        session.run = _Run(now, expires)
        app.running = session
        self._running[session.id] = session
        self._emit(
            session, SessionStarted(now, app.app_id, session.id, session.type, expires, lateness)
        )
        if expires is not None:
            self._arm_expiry(session, expires, now)
        self._arm_cpu_sampling(now)
        if not session.orphaned:
            self._out.append(SampleCpu((app.app_id,)))

    def _arm_expiry(self, session: _Session, expires: datetime, now: datetime) -> None:
        self._timers.add(expires, TimerKind.EXPIRE, session)
        warn_at = expires - self.policy.will_expire_lead
        if warn_at <= now:
            self._warn(session, now)
        else:
            self._timers.add(warn_at, TimerKind.WARN, session)

    def _warn(self, session: _Session, now: datetime) -> None:
        session.state = transition(session.state, Trigger.WARN)
        expires = _run(session).expires_at
        assert expires is not None
        self._emit(session, SessionWillExpire(now, session.app.app_id, session.id, expires))

    def _fire_start(self, session: _Session, now: datetime) -> None:
        """A scheduled session's date has come: run it, hand it over, launch or alert."""
        app = session.app
        app.scheduled = None
        if self._suppressed(session.type):
            self._end(session, Trigger.SUPPRESS, now)
            return
        assert session.start_date is not None
        session.state = transition(session.state, Trigger.FIRE)
        self._begin_running(session, now, session.start_date, now - session.start_date)
        if not session.orphaned:
            return
        if app.alive:
            _run(session).awaiting_delegate = True
            self._hand_over(session, now)
        elif app.auto_launch is AutoLaunchAuthorizationStatus.ACTIVE and app.launchable:
            self._request_launch(session)
        else:
            self._start_host_alert(session, now)

    def _end(
        self,
        session: _Session,
        trigger: Trigger,
        now: datetime,
        code: ErrorCode | None = None,
        message: str | None = None,
    ) -> None:
        """Move a live session to INVALID for `trigger` and announce it."""
        previous = session.state
        session.state = transition(previous, trigger)
        if trigger is Trigger.EXCEED_CPU:
            code = ErrorCode.EXCEEDED_RESOURCE_LIMITS
        app = session.app
        if app.running is session:
            app.running = None
        if app.scheduled is session:
            app.scheduled = None
        self._running.pop(session.id, None)
        self._sessions.pop(session.id, None)
        run = session.run
        if run is not None:  # its pending alert and relaunch deadline no longer apply
            run.alert_seq += 1
            run.awaiting_delegate = False
        reason = REASONS[trigger]
        assert reason is not None
        event = SessionInvalidated(
            now, app.app_id, session.id, session.type, previous, reason, code, message
        )
        self._emit(session, event)
        if session.missed:
            self._keep_undelivered(app, session)
        if session.type is SessionType.SMART_ALARM and previous is _S.RUNNING:
            self._count_alarm(session, now)

    def _keep_undelivered(self, app: _App, session: _Session) -> None:
        undelivered = self._undelivered.setdefault(app.app_id, [])
        undelivered.append(session)
        del undelivered[:-_MAX_UNDELIVERED]

    def _count_alarm(self, session: _Session, now: datetime) -> None:
        """The silent-alarms rule: three ran-but-never-alerted alarms in a row disable alarms."""
        app = session.app
        if _run(session).alerted:
            app.silent = 0
            return
        app.silent += 1
        self._out.append(AlarmEndedSilently(now, app.app_id, session.id, app.silent))
        if app.silent >= self.policy.silent_alarm_limit and not app.alarms_disabled:
            app.alarms_disabled = True
            self._out.append(AlarmsDisabled(now, app.app_id, app.silent))

    def _emit(self, session: _Session, event: SessionEvent) -> None:
        """Announce a session event, and keep what a delegate must hear until it has.

        An orphan's calls, and those of a session handed over but not yet acknowledged (no
        delegate set), are kept in `missed` for the app's next process.
        """
        self._out.append(event)
        unheard = session.orphaned or session.missed is not None
        if unheard and isinstance(event, _DELEGATE_EVENTS):
            if session.missed is None:
                session.missed = []
            session.missed.append(event)

    # ------------------------------------------------------------------ time

    def advance(self, now: datetime) -> list[Output]:
        """Fire every timer due at or before `now`, in order, and return what happened."""
        timers = self._timers
        while (due := timers.pop_due(now)) is not None:
            _, kind, session, gen = due
            if session is None:
                self._on_cpu_sample(now)
            else:
                self._fire[kind](session, gen, now)
        return self._finish()

    def _on_expire(self, session: _Session, gen: int, now: datetime) -> None:
        if session.state is _S.RUNNING:
            self._end(session, Trigger.EXPIRE, now)

    def _on_start(self, session: _Session, gen: int, now: datetime) -> None:
        if session.state is _S.SCHEDULED:
            self._fire_start(session, now)

    def _on_warn(self, session: _Session, gen: int, now: datetime) -> None:
        if session.state is _S.RUNNING:
            self._warn(session, now)

    def _on_alert(self, session: _Session, gen: int, now: datetime) -> None:
        if session.state is _S.RUNNING and gen == _run(session).alert_seq:
            self._play(session, now)

    def _on_delegate_deadline(self, session: _Session, gen: int, now: datetime) -> None:
        running = session.state is _S.RUNNING
        if running and _run(session).awaiting_delegate and gen == session.app.gen:
            seconds = self.policy.relaunch_delegate_timeout.total_seconds()
            message = f"the relaunched app set no delegate within {seconds:g} s"
            self._end(session, Trigger.FAIL, now, ErrorCode.UNKNOWN, message)

    def _finish(self) -> list[Output]:
        """Add keep-awake and wake-alarm changes, and hand the outputs over."""
        held = bool(self._running)
        if held != self._keep_awake:
            self._keep_awake = held
            self._out.append(KeepAwake(held))
        wake = self._earliest_start()
        if wake != self._wake_at:
            self._wake_at = wake
            self._out.append(WakeAlarm(wake))
        out, self._out = self._out, []
        return out

    def _earliest_start(self) -> datetime | None:
        timers = self._timers
        while (session := timers.peek_start()) is not None:
            if session.state is _S.SCHEDULED:
                return session.start_date
            timers.drop_start()
        return None

    # ------------------------------------------------------------------ alerts

    def notify_user(
        self, session_id: str, app_id: str, haptic: HapticType, now: datetime
    ) -> list[Output]:
        """`notify_user`: play an alert now, replacing any repetition; else ignore it."""
        session = self._sessions.get(session_id)
        if session is None or session.state is not _S.RUNNING:
            return self._ignore(session_id, app_id, now, "the session is not running")
        if session.type is not SessionType.SMART_ALARM:
            return self._ignore(session_id, app_id, now, "only smart-alarm sessions can alert")
        run = _run(session)
        run.alert_seq += 1
        run.alert_by_host = False
        run.alert_haptic = HapticType(haptic)
        self._play(session, now)
        return self._finish()

    def set_next_alert(
        self,
        session_id: str,
        sequence: int,
        delay: float | None,
        haptic: HapticType,
        now: datetime,
    ) -> list[Output]:
        """The repeat handler's answer for play `sequence`: the next alert, or none.

        `delay` is in seconds after that play; `None`, NaN or <= 0 stops the repetition and
        a delay above the policy maximum is clamped to it. Stale answers are ignored.
        """
        session = self._sessions.get(session_id)
        if session is None or session.state is not _S.RUNNING:
            return self._finish()
        run = _run(session)
        if sequence != run.alert_seq or run.alert_by_host or not run.alert_waiting:
            return self._finish()
        run.alert_waiting = False
        if delay is None or math.isnan(delay) or delay <= 0:
            return self._finish()
        delay = min(delay, self.policy.alert_interval_max)
        run.alert_haptic = HapticType(haptic)
        assert run.last_alert_at is not None
        at = max(run.last_alert_at + timedelta(seconds=delay), now)
        self._timers.add(at, TimerKind.ALERT, session, run.alert_seq)
        return self._finish()

    def _play(self, session: _Session, now: datetime) -> None:
        run = _run(session)
        run.alerted = True
        run.last_alert_at = now
        event = AlertPlayed(
            now, session.app.app_id, session.id, run.alert_haptic, run.alert_by_host, run.alert_seq
        )
        self._emit(session, event)
        if run.alert_by_host:
            interval = timedelta(seconds=self.policy.alert_interval_default)
            self._timers.add(now + interval, TimerKind.ALERT, session, run.alert_seq)
        else:
            run.alert_waiting = True

    def _start_host_alert(self, session: _Session, now: datetime) -> None:
        """The app cannot alert: the host plays its default alert until Stop or expiry."""
        run = _run(session)
        run.alert_seq += 1
        run.alert_by_host = True
        run.alert_waiting = False
        run.alert_haptic = HapticType.NOTIFICATION
        self._play(session, now)

    def _ignore(self, session_id: str, app_id: str, now: datetime, why: str) -> list[Output]:
        self._out.append(RequestIgnored(now, app_id, session_id, "notify_user", why))
        return self._finish()

    # ------------------------------------------------------------------ processes

    def app_exited(self, app_id: str, now: datetime) -> list[Output]:
        """The app's process is gone: its sessions are orphaned and handled by type."""
        app = self._app(app_id)
        app.alive = False
        app.gen += 1
        for sid in [sid for sid, s in self._handed.items() if s.app is app]:
            del self._handed[sid]
        app.state = ApplicationState.BACKGROUND
        self._cpu.pop(app_id, None)
        session = app.running
        if session is None:
            return self._finish()
        if session.type in FRONTMOST_TYPES:
            self._end(session, Trigger.RESIGN, now)
        elif session.type is SessionType.PHYSICAL_THERAPY:
            message = "the app exited during its physical-therapy session"
            self._end(session, Trigger.FAIL, now, ErrorCode.UNKNOWN, message)
        elif app.auto_launch is AutoLaunchAuthorizationStatus.ACTIVE and app.launchable:
            _run(session).alert_seq += 1
            self._request_launch(session)
        else:
            self._start_host_alert(session, now)
        return self._finish()

    def app_launched(self, app_id: str, now: datetime, *, by_host: bool) -> list[Output]:
        """A new process of the app runs: hand it the sessions it has no object for."""
        app = self._app(app_id)
        app.alive = True
        app.state = ApplicationState.BACKGROUND if by_host else ApplicationState.ACTIVE
        for ended in list(self._undelivered.get(app_id, ())):
            self._hand_over(ended, now)
        running = app.running
        if running is not None and running.gen != app.gen:
            self._hand_over(running, now)
        return self._finish()

    def launch_failed(self, app_id: str, now: datetime, message: str) -> list[Output]:
        """The host could not launch the app: it alerts the user itself instead."""
        app = self._app(app_id)
        self._out.append(AppLaunchFailed(now, app_id, message))
        session = app.running
        if session is not None and _run(session).awaiting_delegate and session.orphaned:
            _run(session).awaiting_delegate = False
            self._start_host_alert(session, now)
        return self._finish()

    def delegate_attached(self, session_id: str, now: datetime) -> list[Output]:
        """A handed-over session got its delegate: it hears what it missed, so the engine
        forgets that, and the relaunch deadline no longer applies."""
        session = self._handed.pop(session_id, None) or self._sessions.get(session_id)
        if session is None:
            return self._finish()
        session.missed = None
        if session.run is not None:
            session.run.awaiting_delegate = False
        undelivered = self._undelivered.get(session.app.app_id)
        if undelivered is not None and session in undelivered:
            undelivered.remove(session)
            if not undelivered:
                del self._undelivered[session.app.app_id]
        return self._finish()

    def _request_launch(self, session: _Session) -> None:
        _run(session).awaiting_delegate = True
        self._out.append(LaunchApp(session.app.app_id, session.id))

    def _hand_over(self, session: _Session, now: datetime) -> None:
        """Give a session to the app's new process; kept until a delegate acknowledges it.

        A running session always begins with `did_start` for its new delegate.
        """
        app, run = session.app, session.run
        session.gen = app.gen
        missed = list(session.missed or ())
        running = session.state is _S.RUNNING and run is not None
        if running and run is not None and not any(isinstance(e, SessionStarted) for e in missed):
            started = SessionStarted(
                run.started_at, app.app_id, session.id, session.type, run.expires_at
            )
            missed.insert(0, started)
        session.missed = missed
        self._handed[session.id] = session
        self._out.append(
            SessionHandedOver(
                now,
                app.app_id,
                session.id,
                session.type,
                session.state,
                None if run is None else run.expires_at,
                tuple(missed),
            )
        )
        if run is not None and run.awaiting_delegate and session.state is _S.RUNNING:
            deadline = now + self.policy.relaunch_delegate_timeout
            self._timers.add(deadline, TimerKind.DELEGATE_DEADLINE, session, app.gen)

    # ------------------------------------------------------------------ auto-launch

    def request_auto_launch(
        self, app_id: str, now: datetime
    ) -> AutoLaunchAuthorizationStatus | None:
        """The stored answer, or `None` when the host must ask the user now.

        Raises `ExtendedRuntimeSessionError`: UNSUPPORTED_SESSION_TYPE for types other than
        smart alarm, MUST_BE_ACTIVE_TO_PROMPT when never asked and the app is not ACTIVE.
        """
        app = self._app(app_id)
        if app.mode is not SessionType.SMART_ALARM:
            raise ExtendedRuntimeSessionError(
                ErrorCode.UNSUPPORTED_SESSION_TYPE,
                f"auto-launch is for smart-alarm apps; {app_id} declares "
                f"{app.mode.value if app.mode else 'no background mode'}",
            )
        if app.auto_launch is not AutoLaunchAuthorizationStatus.UNKNOWN:
            return app.auto_launch
        if app.state is not ApplicationState.ACTIVE:
            raise ExtendedRuntimeSessionError(ErrorCode.MUST_BE_ACTIVE_TO_PROMPT)
        return None

    def answer_auto_launch(self, app_id: str, allow: bool, now: datetime) -> list[Output]:
        """Record the user's answer (or a later revocation) to the auto-launch question."""
        app = self._app(app_id)
        status = (
            AutoLaunchAuthorizationStatus.ACTIVE
            if allow
            else (AutoLaunchAuthorizationStatus.INACTIVE)
        )
        app.auto_launch = status
        self._out.append(AutoLaunchAnswered(now, app_id, status))
        return self._finish()

    # ------------------------------------------------------------------ system

    def set_conditions(self, conditions: Conditions, now: datetime) -> list[Output]:
        """New system conditions; running sessions they suppress end at once."""
        self._conditions = conditions
        for session in list(self._running.values()):
            if self._suppressed(session.type):
                self._end(session, Trigger.SUPPRESS, now)
        return self._finish()

    def _suppressed(self, session_type: SessionType) -> bool:
        return self._conditions.suppresses(session_type, self.policy.battery_low_percent)

    def _arm_cpu_sampling(self, now: datetime) -> None:
        if not self._cpu_armed:
            self._cpu_armed = True
            self._timers.add(now + self.policy.cpu_sample_interval, TimerKind.CPU_SAMPLE, None)

    def _on_cpu_sample(self, now: datetime) -> None:
        self._cpu_armed = False
        apps = tuple(sorted({s.app.app_id for s in self._running.values() if not s.orphaned}))
        if self._running:
            self._arm_cpu_sampling(now)
        if apps:
            self._out.append(SampleCpu(apps))

    def observe_cpu(self, readings: Mapping[str, float], now: datetime) -> list[Output]:
        """CPU seconds each app's process tree has used so far (counters that only grow).

        Over the last `cpu_window`, counting time before the session started as zero, the
        average cores used above the type's budget end the session (EXCEEDED_RESOURCE_LIMITS).
        """
        horizon = now - self.policy.cpu_window
        over: list[_Session] = []
        for app_id, cpu_seconds in readings.items():
            session = self._app(app_id).running
            if session is None or session.run is None or session.orphaned:
                self._cpu.pop(app_id, None)
                continue
            samples = self._cpu.get(app_id)
            if samples is None:
                samples = self._cpu[app_id] = deque()
            samples.append((now, cpu_seconds))
            start = max(horizon, session.run.started_at)
            while len(samples) > 1 and samples[1][0] <= start:
                samples.popleft()
            if (cpu_seconds - samples[0][1]) / self._window_seconds > self._budgets[session.type]:
                over.append(session)
        for session in over:
            self._end(session, Trigger.EXCEED_CPU, now)
        return self._finish()


def _run(session: _Session) -> _Run:
    """The run of a session that has started (RUNNING, or ended after running)."""
    run = session.run
    assert run is not None, f"session {session.id} has not started"
    return run


def _unsupported(mode: SessionType) -> str:
    if mode is SessionType.SMART_ALARM:
        return "a smart-alarm session must be scheduled with start_at(), not start()"
    return "no submersion sensor is installed: underwater-depth sessions cannot start"


def _too_far_past(when: datetime, now: datetime, policy: Policy) -> str:
    seconds = (now - when).total_seconds()
    tolerance = policy.past_tolerance.total_seconds()
    return (
        f"the start date {when.isoformat()} is {seconds:g} s in the past; "
        f"start_at() accepts dates at most {tolerance:g} s in the past"
    )
