"""The engine: every session rule, without I/O.

Theory of operation
-------------------
The engine is a pure state machine in the style of h11: it does no I/O, reads no clock and
starts no thread. A host feeds it *commands* (the app's calls, observations of the system) and
*time* (`advance(now)` when `next_deadline()` has come); each call returns the outputs it
caused, `Event`s and `Effect`s from `events`, in the order they happened. The host performs
the effects and delivers the events, and tells the engine when an effect failed
(`effect_failed`): a failure is an event, and the engine goes on. Three hosts share this one
engine: the virtual host for tests, the embedded host in an app's own process, and (later) the
per-user daemon.

This module is the *lifecycle*: sessions are created, scheduled, started, warned and ended
here, and every end names a `Cause` from the one table of endings (`transitions.ENDINGS`),
which gives the trigger, the reason and the error code. Three named sub-machines own the rest,
each with its own state:

* `alerts.AlertRepetition`: a running alarm's alerts, driven by the app or by the host;
* `handover.Handover`: sessions carried from one process of an app to the next (relaunch,
  missed calls, the delegate deadline);
* `metering.CpuMeter`: CPU budgets, read once per process tree.

Across apps the engine arbitrates: one running-or-scheduled session per app, the keep-awake held
while any session runs, the wake alarm at the earliest scheduled start (both emitted by `_finish`
only when they change). The records it keeps are in `live`; an ended session leaves the engine
at once and its timers are cancelled, so memory follows live sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

from .alerts import AlertRepetition, Play
from .conditions import Conditions
from .enums import (
    ENDED_BY_EXIT,
    FRONTMOST_TYPES,
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    HapticType,
    SessionState,
    SessionType,
)
from .errors import ExtendedRuntimeSessionError, SessionUsageError
from .events import (
    AlarmEndedSilently,
    AlarmsAllowed,
    AlarmsDisabled,
    AlertPlayed,
    AutoLaunchAnswered,
    EffectFailed,
    ExpirationMoved,
    KeepAwake,
    LaunchApp,
    Output,
    RequestIgnored,
    SessionEvent,
    SessionInvalidated,
    SessionResumed,
    SessionScheduled,
    SessionStarted,
    SessionWillExpire,
    WakeAlarm,
)
from .handover import Handover, Undelivered
from .limits import keep_awake_why
from .live import ORPHAN_GEN, LiveApp, LiveSession, Run
from .metering import CpuMeter, CpuReadings
from .policy import Policy
from .timers import TimerKind, TimerQueue
from .transitions import ENDINGS, Cause, Trigger, transition

__all__ = ["Engine", "KeptApp", "SessionRow"]

#: The events a delegate hears (the others are for the host and the audit log).
_DELEGATE_EVENTS = (SessionStarted, SessionWillExpire, SessionInvalidated)

_ZERO = timedelta(0)
_S = SessionState
_RELEASED = KeepAwake(False)

#: A failed precondition: its cause and, where the table's default will not do, a message.
_Refusal = tuple[Cause, str | None]


#: A live session as `Engine.sessions` lists it: id, app id, type, state, start date (scheduled
#: ones), expiration date (running ones).
SessionRow = tuple[str, str, SessionType | None, SessionState, datetime | None, datetime | None]


class KeptApp(NamedTuple):
    """An app as a host keeps it across its own restart (`Engine.kept_app`, `Engine.restore`)."""

    app_id: str
    mode: SessionType | None
    launchable: bool = False
    auto_launch: AutoLaunchAuthorizationStatus = AutoLaunchAuthorizationStatus.UNKNOWN
    approved: bool = True
    alarms_disabled: bool = False
    silent: int = 0
    #: Its ended sessions whose calls it has not heard (handed over at its next launch).
    undelivered: tuple[Undelivered, ...] = ()


def _restored_app(kept: KeptApp) -> LiveApp:
    answers = (kept.auto_launch, kept.approved, kept.alarms_disabled, kept.silent)
    return LiveApp.kept(kept.app_id, kept.mode, kept.launchable, answers)


#: The order of scheduled starts (the list of starts keeps the same).
_start_order = attrgetter("start_date", "session_id")


class Engine:
    """The sans-I/O session engine. Not thread-safe: a host serialises calls to it."""

    def __init__(
        self,
        policy: Policy | None = None,
        conditions: Conditions | None = None,
        *,
        cpu: CpuReadings = CpuReadings.POLLED,
    ) -> None:
        self.policy = policy if policy is not None else Policy()
        self._conditions = conditions if conditions is not None else Conditions()
        self._apps: dict[str, LiveApp] = {}
        #: Waiting sessions by id, each held by its app (`LiveApp.session_id`, `start_date`).
        self._waiting: dict[str, LiveApp] = {}
        self._running: dict[str, LiveSession] = {}
        self._trees: dict[str, list[LiveApp]] = {}  # apps by process tree
        self._timers: TimerQueue[LiveSession] = TimerQueue()
        self._handover = Handover(self.policy, self._timers)
        self._cpu = cpu
        self._meter = CpuMeter(self.policy, self._timers, cpu)
        self._out: list[Output] = []
        self._keep_awake = _RELEASED
        #: The running sessions changed since the keep-awake was last worked out.
        self._running_changed = False
        self._first_label = ("", "", "")  # the longest-running session's id, who and why
        self._wake_at: datetime | None = None
        self._fire: dict[TimerKind, Callable[[LiveSession, datetime], None]] = {
            TimerKind.EXPIRE: self._on_expire,
            TimerKind.DELEGATE_DEADLINE: self._on_delegate_deadline,
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
        return self._keep_awake.held

    @property
    def timer_entries(self) -> int:
        """Entries in the timer heaps, cancelled ones not yet pruned included."""
        return len(self._timers)

    def next_deadline(self) -> datetime | None:
        """The earliest instant at which `advance` has something to do, or `None`."""
        return self._timers.next_deadline()

    def next_deadlines(self) -> tuple[datetime | None, datetime | None]:
        """`next_deadline` in two: the earliest timer of a running session (expiry, warning,
        alert, handover, CPU sample: lengths of time, which a host may time on a clock that
        counts suspended time) and the earliest scheduled start (a wall-clock instant)."""
        return self._timers.next_deadlines()

    def session_state(self, session_id: str) -> SessionState | None:
        """The state of a live session, or `None` if the engine does not hold it."""
        session = self._running.get(session_id)
        if session is not None:
            return session.state
        return _S.SCHEDULED if session_id in self._waiting else None

    def running_sessions(self) -> dict[str, str]:
        """Running session ids, each with its app id."""
        return {sid: s.app.app_id for sid, s in self._running.items()}

    def sessions(self) -> list[SessionRow]:
        """Every live session as (id, app id, type, state, start date, expiration date):
        running ones first, then the scheduled ones by date."""
        rows: list[SessionRow] = [
            (sid, s.app.app_id, s.type, s.state, None, s.started.expires_at)
            for sid, s in self._running.items()
        ]
        waiting = sorted(self._waiting.items(), key=lambda item: (item[1].start_date, item[0]))
        rows.extend(
            (sid, app.app_id, SessionType.SMART_ALARM, _S.SCHEDULED, app.start_date, None)
            for sid, app in waiting
        )
        return rows

    def live_sessions(self) -> int:
        """How many sessions the engine holds (scheduled or running)."""
        return len(self._running) + len(self._waiting)

    def scheduled_count(self) -> int:
        """How many sessions wait for their start date."""
        return len(self._waiting)

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
        tree: str | None = None,
    ) -> None:
        """Make an app known (its process is alive), or update its declaration.

        `tree` names the process tree whose CPU time the app's sessions are held to (by
        default the app's own); apps that share a process share a tree.
        """
        app = self._apps.get(app_id)
        if app is None:
            app = self._apps[app_id] = LiveApp(app_id, mode, launchable, tree or app_id)
            app.state = state
            if self._cpu is CpuReadings.PUSHED:  # only `cpu_changed` looks apps up by tree
                self._trees.setdefault(app.tree, []).append(app)
        app.mode = mode
        app.launchable = launchable

    def _app(self, app_id: str) -> LiveApp:
        try:
            return self._apps[app_id]
        except KeyError:
            raise SessionUsageError(f"app {app_id!r} is not registered with this host") from None

    def _running_of(self, app: LiveApp) -> LiveSession | None:
        """The app's running session (an orphan one included), if it has one."""
        session_id = app.session_id
        return None if session_id is None else self._running.get(session_id)

    def set_app_state(self, app_id: str, state: ApplicationState, now: datetime) -> list[Output]:
        """The app's foreground state changed; a frontmost session ends on BACKGROUND."""
        app = self._app(app_id)
        app.state = ApplicationState(state)
        session = self._running_of(app)
        if (
            state is ApplicationState.BACKGROUND
            and session is not None
            and session.type in FRONTMOST_TYPES
            and not session.orphaned
        ):
            self._end(session, Cause.RESIGNED, now)
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
        self._out.append(AlarmsAllowed(at=now, app_id=app_id))
        return self._finish()

    # ------------------------------------------------------------------ session commands

    def start(self, session_id: str, app_id: str, now: datetime) -> list[Output]:
        """`start()`: run the session now, or refuse it with a reason."""
        app = self._admit(session_id, app_id, None, now)
        if app is not None:
            session = self._new_session(session_id, app, Trigger.START)
            self._begin_running(session, now, now, _ZERO)
        return self._finish()

    def start_at(self, session_id: str, app_id: str, when: datetime, now: datetime) -> list[Output]:
        """`start_at(when)`: schedule the session, start it at once, or refuse it."""
        app = self._admit(session_id, app_id, when, now)
        if app is None:
            return self._finish()
        app.session_id = session_id
        app.start_orphaned = False
        self._waiting[session_id] = app
        self._out.append(
            SessionScheduled(
                at=now,
                app_id=app_id,
                session_id=session_id,
                state=transition(_S.NOT_STARTED, Trigger.SCHEDULE),
                session_type=SessionType.SMART_ALARM,  # `_check` schedules no other type
                start_date=when,
            )
        )
        self._wait_for(app, when, now)
        return self._finish()

    def _wait_for(self, app: LiveApp, when: datetime, now: datetime) -> None:
        """The app's waiting session starts at `when`: at once if it has come, else armed."""
        if when <= now:
            app.start_date = when
            self._fire_start(app, now)
        else:
            self._timers.add_start(when, app)

    def kept_app(self, app_id: str) -> KeptApp:
        """What a host keeps of an app across its own restart: its declaration and the
        user's answers (approval, auto-launch, disabled alarms and the silent-alarm count)."""
        app = self._app(app_id)
        return KeptApp(
            app_id,
            app.mode,
            app.launchable,
            app.auto_launch,
            app.approved,
            app.alarms_disabled,
            app.silent,
            self._handover.backlog(app_id),
        )

    def backlog(self, app_id: str) -> tuple[Undelivered, ...]:
        """The app's ended sessions whose calls it has not heard (`KeptApp.undelivered`)."""
        return self._handover.backlog(app_id)

    def restore(
        self,
        apps: Iterable[KeptApp],
        scheduled: Iterable[tuple[str, str, datetime]],
        now: datetime,
    ) -> list[Output]:
        """Take back what a host kept across its own restart (the daemon's store).

        The apps come back as they were kept, with no process (each is handed its sessions
        when it connects, or is launched or alerted for), the endings they missed included.
        Each scheduled session, `(session id, app id, start date)`, waits for its date again,
        with no checks (it passed them when it was scheduled) and no `SessionScheduled`
        (announced then); one whose date passed while the host was down starts at once, its
        lateness recorded. A session of an unknown app, a second one of an app, or an id
        already known is left out. Built in bulk: a restart with 100,000 scheduled sessions
        sorts their starts once.
        """
        for kept in apps:
            if kept.app_id not in self._apps:
                restored = self._apps[kept.app_id] = _restored_app(kept)
                if kept.undelivered:
                    self._handover.restore(restored, kept.undelivered)
        due: list[LiveApp] = []
        waiting: list[LiveApp] = []
        live_apps, running, known = self._apps, self._running, self._waiting
        for session_id, app_id, when in scheduled:
            app = live_apps.get(app_id)
            if app is None or app.session_id is not None:
                continue
            if session_id in known or session_id in running:
                continue
            app.session_id = session_id
            app.start_orphaned = True
            app.start_date = when
            self._waiting[session_id] = app
            (due if when <= now else waiting).append(app)
        self._timers.add_starts(waiting)
        for app in sorted(due, key=_start_order):
            self._fire_start(app, now)
        return self._finish()

    def reclaim_waiting(self, session_id: str, app_id: str) -> bool:
        """A process of the app holds the object of its scheduled session (the host it
        scheduled it with stopped, and this one took the session back from its store): the
        session is that process's own again, not an orphan. Whether it waits."""
        app = self._waiting.get(session_id)
        if app is None or app.app_id != app_id:
            return False
        app.start_orphaned = False
        return True

    def resume_running(
        self,
        session_id: str,
        app_id: str,
        session_type: SessionType,
        now: datetime,
        *,
        started_at: datetime,
        expires_at: datetime | None,
        warned: bool,
    ) -> list[Output]:
        """A session that ran when its host stopped runs on under this one until `expires_at`
        (its budget counted all along), or ends EXPIRED now if that has passed: claimed back by
        the process that holds it, or, for an alarm whose app is not running, rung by the host
        in its place (the app is handed it when it comes). `warned`: the app heard
        `will_expire` already (not sent again). The app must have no other live session
        (`SessionUsageError`)."""
        app = self._app(app_id)
        self._require_new(session_id)
        if app.session_id is not None:
            raise SessionUsageError(f"{app_id} has another live session: {app.session_id}")
        session = LiveSession(session_id, app, session_type)
        session.state = transition(_S.NOT_STARTED, Trigger.START)
        session.run = Run(started_at, expires_at)
        app.session_id = session_id
        self._running[session_id] = session
        self._running_changed = True
        resumed = SessionResumed(
            at=now,
            app_id=app_id,
            session_id=session_id,
            state=session.state,
            session_type=session_type,
            expiration_date=expires_at,
        )
        self._emit(session, resumed)
        if expires_at is not None and expires_at <= now:
            self._end(session, Cause.EXPIRED, now)
        elif expires_at is not None and warned:
            session.started.expiry = self._timers.add(expires_at, TimerKind.EXPIRE, session)
        elif expires_at is not None:
            self._arm_expiry(session, expires_at, now)
        if session.state is not _S.RUNNING:
            return self._finish()
        if not session.orphaned:
            self._meter_start(session, now)
        elif session.type is SessionType.SMART_ALARM:
            self._host_alert(session, now)  # its app is not running: the host rings it
        return self._finish()

    def set_alarms_disabled(self, app_id: str, disabled: bool, now: datetime) -> list[Output]:
        """The user disables the app's alarms (`xrs apps disable-alarms`: BAR_DISABLED), or
        allows them again."""
        if not disabled:
            return self.allow_alarms(app_id, now)
        app = self._app(app_id)
        app.alarms_disabled = True
        self._out.append(AlarmsDisabled(at=now, app_id=app_id, count=app.silent))
        return self._finish()

    def reset_app(self, app_id: str, now: datetime) -> list[Output]:
        """The user's answers about the app are forgotten (`xrs apps reset`): approved,
        alarms allowed, auto-launch never asked."""
        app = self._app(app_id)
        app.approved = True
        app.auto_launch = AutoLaunchAuthorizationStatus.UNKNOWN
        return self.allow_alarms(app_id, now)

    def _admit(
        self, session_id: str, app_id: str, when: datetime | None, now: datetime
    ) -> LiveApp | None:
        """The app, if a new session passes every check; else the session is refused."""
        app = self._app(app_id)
        self._require_new(session_id)
        refusal = self._check(app, when, now)
        if refusal is None:
            return app
        self._refuse(session_id, app, now, *refusal)
        return None

    def invalidate(self, session_id: str, app_id: str, now: datetime) -> list[Output]:
        """`invalidate()`: end a scheduled or running session, or fail a never-started one.

        Raises `ExtendedRuntimeSessionError(MUST_BE_ACTIVE_TO_START_OR_SCHEDULE)` for an alarm
        session while the app is not ACTIVE, changing nothing.
        """
        app = self._app(app_id)
        session = self._running.get(session_id)
        waiting = self._waiting.get(session_id)
        if session is None and waiting is None:
            self._refuse(session_id, app, now, Cause.NOT_YET_STARTED, None)
            return self._finish()
        alarm = session is None or session.type is SessionType.SMART_ALARM
        if alarm and app.state is not ApplicationState.ACTIVE:
            raise ExtendedRuntimeSessionError(ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE)
        if session is not None:
            self._end(session, Cause.INVALIDATED, now)
        elif waiting is not None:
            self._end_waiting(waiting, Cause.INVALIDATED, now)
        return self._finish()

    def user_stop(self, session_id: str, now: datetime) -> list[Output]:
        """The user stopped a session from outside its app (`xrs stop`): a running or
        scheduled session of any type ends with NONE. An unknown id changes nothing."""
        session = self._running.get(session_id)
        waiting = self._waiting.get(session_id)
        if session is not None:
            self._end(session, Cause.USER_STOPPED, now)
        elif waiting is not None:
            self._end_waiting(waiting, Cause.USER_STOPPED, now)
        return self._finish()

    def stop_alarm(self, app_id: str, now: datetime) -> list[Output]:
        """The user pressed Stop: end the app's running alarm (else its scheduled one)."""
        app = self._app(app_id)
        session = self._running_of(app)
        if session is not None:
            if session.type is SessionType.SMART_ALARM:
                self._end(session, Cause.USER_STOPPED, now)
        elif app.waiting:  # a waiting session is an alarm
            self._end_waiting(app, Cause.USER_STOPPED, now)
        return self._finish()

    def _require_new(self, session_id: str) -> None:
        state = self.session_state(session_id)
        if state is not None:
            raise SessionUsageError(
                f"session {session_id} is {state.name}: a session can be started only once; "
                "create a new ExtendedRuntimeSession"
            )

    def _check(self, app: LiveApp, when: datetime | None, now: datetime) -> _Refusal | None:
        """The first failed precondition in DESIGN.md's order, or `None`."""
        if app.state is not ApplicationState.ACTIVE or not app.alive:
            return Cause.NOT_ACTIVE, None
        if app.mode is None or not app.approved:
            return Cause.NOT_APPROVED, None
        type_refusal = self._check_type(app.mode, when, now)
        if type_refusal is not None:
            return type_refusal
        if when is not None and app.alarms_disabled:
            return Cause.ALARMS_DISABLED, None
        if app.session_id is not None:
            return Cause.IN_PROGRESS, None
        if when is None and self._suppressed(app.mode):
            return Cause.SUPPRESSED_AT_START, None
        return None

    def _check_type(
        self, mode: SessionType, when: datetime | None, now: datetime
    ) -> _Refusal | None:
        policy = self.policy
        if when is None:
            unsupported = mode is SessionType.SMART_ALARM or (
                mode is SessionType.UNDERWATER_DEPTH and not policy.underwater_supported
            )
            return (Cause.UNSUPPORTED_TYPE, _unsupported(mode)) if unsupported else None
        if mode is not SessionType.SMART_ALARM:
            return Cause.NOT_SCHEDULABLE, None
        if when > now + policy.schedule_horizon:
            return Cause.TOO_FAR_AHEAD, None
        if when < now - policy.past_tolerance:
            return Cause.TOO_FAR_PAST, _too_far_past(when, now, policy)
        return None

    def _refuse(
        self, session_id: str, app: LiveApp, now: datetime, cause: Cause, message: str | None
    ) -> None:
        """A session that never left NOT_STARTED becomes INVALID (refused, or cancelled)."""
        ending = ENDINGS[cause]
        state = transition(_S.NOT_STARTED, ending.trigger)
        self._out.append(
            SessionInvalidated(
                at=now,
                app_id=app.app_id,
                session_id=session_id,
                state=state,
                session_type=app.mode,
                previous_state=_S.NOT_STARTED,
                reason=ending.reason,
                error_code=ending.code,
                message=message,
            )
        )

    def _new_session(self, session_id: str, app: LiveApp, trigger: Trigger) -> LiveSession:
        assert app.mode is not None  # `_check` refused a session of an app without a mode
        session = LiveSession(session_id, app, app.mode)
        session.state = transition(_S.NOT_STARTED, trigger)
        app.session_id = session_id
        return session

    def _leave_waiting(self, app: LiveApp) -> tuple[LiveSession, datetime]:
        """The app's waiting session leaves waiting (its start is no longer armed): from now on
        it is a `LiveSession` of its own, SCHEDULED until it starts or ends. Returns it and
        the start date it waited for."""
        session_id, when = app.session_id, app.start_date
        assert session_id is not None and when is not None, f"{app.app_id} has no waiting session"
        del self._waiting[session_id]
        app.start_date = None
        session = LiveSession(session_id, app, SessionType.SMART_ALARM)
        session.state = _S.SCHEDULED
        if app.start_orphaned:  # the process that scheduled it has exited
            session.gen = ORPHAN_GEN
        return session, when

    def _end_waiting(
        self, app: LiveApp, cause: Cause, now: datetime, message: str | None = None
    ) -> None:
        """End the app's waiting session before its date: disarm its start, then end it."""
        self._timers.cancel_start(app)
        session, _ = self._leave_waiting(app)
        self._end(session, cause, now, message)

    # ------------------------------------------------------------------ running

    def _begin_running(
        self, session: LiveSession, now: datetime, base: datetime, lateness: timedelta
    ) -> None:
        """Enter RUNNING: expiration from `base`, expiry and warning armed, CPU metered."""
        app = session.app
        limit = self.policy.limit(session.type)
        expires = None if limit is None else base + limit
        session.run = Run(now, expires)
        self._running[session.id] = session
        self._running_changed = True
        started = SessionStarted(
            at=now,
            app_id=app.app_id,
            session_id=session.id,
            state=session.state,
            session_type=session.type,
            expiration_date=expires,
            lateness=lateness,
        )
        self._emit(session, started)
        if expires is not None:
            self._arm_expiry(session, expires, now)
        if not session.orphaned:
            self._meter_start(session, now)

    def _arm_expiry(self, session: LiveSession, expires: datetime, now: datetime) -> None:
        run = session.started
        run.expiry = self._timers.add(expires, TimerKind.EXPIRE, session)
        warn_at = expires - self.policy.will_expire_lead
        if warn_at <= now:
            self._warn(session, now)
        else:
            run.warning = self._timers.add(warn_at, TimerKind.WARN, session)

    def _warn(self, session: LiveSession, now: datetime) -> None:
        session.state = transition(session.state, Trigger.WARN)
        run = session.started
        run.warning = None
        assert run.expires_at is not None  # only sessions with a limit are warned
        warning = SessionWillExpire(
            at=now,
            app_id=session.app.app_id,
            session_id=session.id,
            state=session.state,
            expiration_date=run.expires_at,
        )
        self._emit(session, warning)

    def _fire_start(self, app: LiveApp, now: datetime) -> None:
        """A waiting session's date has come (its start is disarmed): run it, hand it over,
        launch or alert."""
        session, when = self._leave_waiting(app)
        if self._suppressed(session.type):
            self._end(session, Cause.SUPPRESSED, now)
            return
        session.state = transition(session.state, Trigger.FIRE)
        self._begin_running(session, now, when, now - when)
        if not session.orphaned:
            return
        if app.alive:
            self._handover.expect_delegate(session)
            self._out.append(self._handover.hand_over(session, now))
            self._meter_start(session, now)
        elif app.may_launch() and self._handover.launching(session):
            self._request_launch(session)
        else:
            self._host_alert(session, now)

    def _end(
        self, session: LiveSession, cause: Cause, now: datetime, message: str | None = None
    ) -> None:
        """Move a live session to INVALID for `cause`, cancel what it armed, announce it."""
        ending = ENDINGS[cause]
        previous = session.state
        session.state = transition(previous, ending.trigger)
        self._forget(session, previous)
        app = session.app
        event = SessionInvalidated(
            at=now,
            app_id=app.app_id,
            session_id=session.id,
            state=session.state,
            session_type=session.type,
            previous_state=previous,
            reason=ending.reason,
            error_code=ending.code,
            message=message,
        )
        self._emit(session, event)
        self._handover.ended(session)
        if session.type is SessionType.SMART_ALARM and previous is _S.RUNNING:
            self._count_alarm(session, now)

    def _forget(self, session: LiveSession, previous: SessionState) -> None:
        """Drop an ended session from the engine's maps, and everything it armed."""
        app = session.app
        if app.session_id == session.id:
            app.session_id = None
        if self._running.pop(session.id, None) is not None:
            self._running_changed = True
        run = session.run
        if run is not None:
            self._timers.cancel(run.expiry)
            self._timers.cancel(run.warning)
            if run.alerts is not None:
                run.alerts.stop()
            self._meter.stop(session)

    def _count_alarm(self, session: LiveSession, now: datetime) -> None:
        """The silent-alarms rule: three ran-but-never-alerted alarms in a row disable alarms."""
        app = session.app
        if session.started.alerted:
            app.silent = 0
            return
        app.silent += 1
        self._out.append(
            AlarmEndedSilently(at=now, app_id=app.app_id, session_id=session.id, count=app.silent)
        )
        if app.silent >= self.policy.silent_alarm_limit and not app.alarms_disabled:
            app.alarms_disabled = True
            self._out.append(AlarmsDisabled(at=now, app_id=app.app_id, count=app.silent))

    def _emit(self, session: LiveSession, event: SessionEvent) -> None:
        """Announce a session event; a call its process cannot hear now is kept for later."""
        self._out.append(event)
        if isinstance(event, _DELEGATE_EVENTS):
            self._handover.heard(session, event)

    # ------------------------------------------------------------------ time

    def advance(self, now: datetime) -> list[Output]:
        """Fire every timer due at or before `now`, in order, and return what happened."""
        timers = self._timers
        while (due := timers.pop_due(now)) is not None:
            kind, subject = due
            if subject is None:
                self._cpu_tick(now)
            elif isinstance(subject, LiveSession):
                self._fire[kind](subject, now)
            else:
                assert isinstance(subject, LiveApp)  # starts are armed for apps alone
                self._fire_start(subject, now)
        return self._finish()

    def clock_set(self, delta: timedelta, now: datetime) -> list[Output]:
        """The wall clock was set by `delta` (`now` is the new time): fire what became due.

        Scheduled starts are wall-clock instants and stay: a forward set past one starts it now
        (its lateness shows the set), a backward set puts it further off. A running session's
        budget is a length of real time, so its timers (expiry, warning, alerts, the handover
        deadline, CPU samples) and its expiration move with the clock, each session told with
        `ExpirationMoved`: the session ends after its full budget whichever way the clock went.
        """
        self._timers.shift(delta)
        self._meter.shift(delta)
        for session in self._running.values():
            run = session.started
            run.started_at += delta
            if run.alerts is not None:
                run.alerts.shift(delta)
            if run.expires_at is not None:
                run.expires_at += delta
                moved = ExpirationMoved(
                    at=now,
                    app_id=session.app.app_id,
                    session_id=session.id,
                    state=session.state,
                    expiration_date=run.expires_at,
                    moved_by=delta,
                )
                self._emit(session, moved)
        self._running_changed = True  # the keep-awake label names the expiry
        self._first_label = ("", "", "")
        return self.advance(now)

    def _on_expire(self, session: LiveSession, now: datetime) -> None:
        session.started.expiry = None
        self._end(session, Cause.EXPIRED, now)

    def _on_warn(self, session: LiveSession, now: datetime) -> None:
        self._warn(session, now)

    def _on_alert(self, session: LiveSession, now: datetime) -> None:
        alerts = session.started.alerts
        assert alerts is not None  # only a repetition arms alert timers
        self._play(session, alerts.due(now), now)

    def _on_delegate_deadline(self, session: LiveSession, now: datetime) -> None:
        if self._handover.deadline_passed(session):
            seconds = self.policy.relaunch_delegate_timeout.total_seconds()
            message = f"the relaunched app set no delegate within {seconds:g} s"
            self._end(session, Cause.NO_DELEGATE, now, message)

    def _finish(self) -> list[Output]:
        """Add keep-awake and wake-alarm changes, and hand the outputs over."""
        if self._running_changed:  # the label is worked out only when the running set changed
            self._running_changed = False
            keep = self._keep_awake_for()
            if keep != self._keep_awake:
                self._keep_awake = keep
                self._out.append(keep)
        earliest = self._timers.earliest_start()
        wake = None if earliest is None else earliest.start_date
        if wake != self._wake_at:
            self._wake_at = wake
            self._out.append(WakeAlarm(wake))
        out, self._out = self._out, []
        return out

    def _keep_awake_for(self) -> KeepAwake:
        """The keep-awake the running sessions need: who (the longest-running session's app)
        and why (its type and expiry, and how many run), as inhibitor lists show it."""
        running = self._running
        if not running:
            return _RELEASED
        first = next(iter(running.values()))
        if self._first_label[0] != first.id:  # formatted once per longest-running session
            why = keep_awake_why(first.type, first.started.expires_at)
            self._first_label = (first.id, first.app.app_id, why)
        _, who, why = self._first_label
        others = len(running) - 1
        if not others:
            return KeepAwake(True, who, why)
        return KeepAwake(True, f"{who} and {others} more", f"{why}; {others + 1} sessions")

    # ------------------------------------------------------------------ alerts

    def notify_user(
        self,
        session_id: str,
        app_id: str,
        haptic: HapticType,
        now: datetime,
        *,
        handler: bool = True,
    ) -> list[Output]:
        """`notify_user`: play an alert now, replacing any repetition; else ignore it.

        With a repeat `handler`, each play awaits its answer (`set_next_alert`); without one
        the alert repeats every `alert_interval_default` seconds."""
        session = self._running.get(session_id)
        if session is None or session.state is not _S.RUNNING:
            return self._ignore(session_id, app_id, now, "the session is not running")
        if session.type is not SessionType.SMART_ALARM:
            return self._ignore(session_id, app_id, now, "only smart-alarm sessions can alert")
        play = self._alerts(session).by_app(HapticType(haptic), now, handler=handler)
        self._play(session, play, now)
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

        `delay` is in seconds after that play; `None`, NaN or <= 0 stops the repetition, and
        other delays are held between the policy's minimum and maximum. Stale answers are
        ignored.
        """
        session = self._running.get(session_id)
        if session is not None and session.state is _S.RUNNING and session.run is not None:
            alerts = session.run.alerts
            if alerts is not None:
                alerts.answer(sequence, delay, haptic, now)
        return self._finish()

    def _alerts(self, session: LiveSession) -> AlertRepetition[LiveSession]:
        run = session.started
        if run.alerts is None:
            run.alerts = AlertRepetition(session, self._timers, self.policy)
        return run.alerts

    def _play(self, session: LiveSession, play: Play, now: datetime) -> None:
        played = AlertPlayed(
            at=now,
            app_id=session.app.app_id,
            session_id=session.id,
            state=session.state,
            haptic=play.haptic,
            by_host=play.by_host,
            sequence=play.sequence,
            awaits_answer=play.awaits_answer,
        )
        self._emit(session, played)

    def _host_alert(self, session: LiveSession, now: datetime) -> None:
        """The app cannot alert: the host plays its default alert until Stop or expiry."""
        self._play(session, self._alerts(session).by_host_now(now), now)

    def _ignore(self, session_id: str, app_id: str, now: datetime, why: str) -> list[Output]:
        self._out.append(
            RequestIgnored(
                at=now, app_id=app_id, session_id=session_id, request="notify_user", message=why
            )
        )
        return self._finish()

    # ------------------------------------------------------------------ processes

    def app_exited(self, app_id: str, now: datetime) -> list[Output]:
        """The app's process is gone: its sessions are orphaned and handled by type."""
        app = self._app(app_id)
        app.alive = False
        app.gen += 1
        app.state = ApplicationState.BACKGROUND
        self._handover.process_exited(app)
        if app.waiting:
            app.start_orphaned = True
        session = self._running_of(app)
        if session is None:
            return self._finish()
        self._meter.stop(session)
        if session.type in ENDED_BY_EXIT:
            self._end_by_exit(session, now)
        elif app.may_launch() and self._handover.launching(session):
            if session.started.alerts is not None:
                session.started.alerts.stop()
            self._request_launch(session)
        else:
            self._host_alert(session, now)
        return self._finish()

    def app_exiting(self, app_id: str, now: datetime) -> list[Output]:
        """The app's process says it is about to exit: a running session its exit will end
        whatever happens (frontmost, physical therapy) ends now, while the process can still
        hear it; the exit itself (`app_exited`) follows. An alarm goes on, to be rung by the
        host or handed to the app's next process."""
        session = self._running_of(self._app(app_id))
        if session is not None and not session.orphaned and session.type in ENDED_BY_EXIT:
            self._meter.stop(session)
            self._end_by_exit(session, now)
        return self._finish()

    def _end_by_exit(self, session: LiveSession, now: datetime) -> None:
        if session.type in FRONTMOST_TYPES:
            self._end(session, Cause.RESIGNED, now)
        else:
            message = "the app exited during its physical-therapy session"
            self._end(session, Cause.APP_EXITED, now, message)

    def app_launched(self, app_id: str, now: datetime, *, by_host: bool) -> list[Output]:
        """A new process of the app runs: hand it the sessions it has no object for."""
        app = self._app(app_id)
        app.alive = True
        app.state = ApplicationState.BACKGROUND if by_host else ApplicationState.ACTIVE
        running = self._running_of(app)
        self._out.extend(self._handover.launched(app, running, now))
        if running is not None and not running.orphaned:
            self._meter_start(running, now)
        return self._finish()

    def delegate_attached(self, session_id: str, now: datetime) -> list[Output]:
        """A handed-over session got its delegate: it hears what it missed, so the engine
        forgets that, and the relaunch deadline no longer applies."""
        self._handover.acknowledged(session_id)
        return self._finish()

    def _request_launch(self, session: LiveSession) -> None:
        self._handover.expect_delegate(session)
        self._out.append(LaunchApp(session.app.app_id, session.id))

    # ------------------------------------------------------------------ failures

    def effect_failed(
        self,
        effect: str,
        backend: str,
        message: str,
        now: datetime,
        *,
        timed_out: bool = False,
        app_id: str | None = None,
        session_id: str | None = None,
    ) -> list[Output]:
        """The host could not perform an effect (h11's `send_failed`): record it, go on.

        Sessions are never ended for it: they still end on time and keep-awake is still
        released. A failed launch (`effect="launch"`) makes the host alert in the app's place,
        so the alarm is not silently lost.
        """
        self._out.append(
            EffectFailed(
                at=now,
                effect=effect,
                backend=backend,
                message=message,
                timed_out=timed_out,
                app_id=app_id,
                session_id=session_id,
            )
        )
        if effect == "launch" and app_id is not None:
            session = self._running_of(self._app(app_id))
            if session is not None and self._handover.launch_failed(session):
                self._host_alert(session, now)
        return self._finish()

    def stop_host(self, now: datetime, message: str) -> list[Output]:
        """The host stops (its process exits, or it is closed): every live session ends.

        Running sessions end as DESIGN.md's "App exits" row says for a host that cannot
        relaunch: frontmost ones with RESIGNED_FRONTMOST, the others with ERROR, UNKNOWN and
        `message`; a scheduled one with ERROR, UNKNOWN and a message naming the instant that
        will not ring.
        """
        for app in list(self._waiting.values()):
            assert app.start_date is not None
            when = app.start_date.isoformat(timespec="seconds")
            text = f"{message} before the start date {when}: this alarm will not ring"
            self._end_waiting(app, Cause.HOST_STOPPED, now, text)
        for session in list(self._running.values()):
            if session.type in FRONTMOST_TYPES and not session.orphaned:
                self._end(session, Cause.RESIGNED, now)
            else:
                self._end(session, Cause.HOST_STOPPED, now, message)
        return self._finish()

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
        self._out.append(AutoLaunchAnswered(at=now, app_id=app_id, status=status))
        return self._finish()

    # ------------------------------------------------------------------ system

    def set_conditions(self, conditions: Conditions, now: datetime) -> list[Output]:
        """New system conditions; running sessions they suppress end at once."""
        self._conditions = conditions
        for session in list(self._running.values()):
            if self._suppressed(session.type):
                self._end(session, Cause.SUPPRESSED, now)
        return self._finish()

    def _suppressed(self, session_type: SessionType) -> bool:
        return self._conditions.suppresses(session_type, self.policy.battery_low_percent)

    # ------------------------------------------------------------------ CPU

    def observe_cpu(self, readings: Mapping[str, float], now: datetime) -> list[Output]:
        """CPU seconds each process tree has used so far (counters that only grow).

        Sessions whose average over the last `cpu_window` is above their type's budget end
        with EXCEEDED_RESOURCE_LIMITS (see `metering`).
        """
        for session in self._meter.observe(dict(readings), now):
            if session.state is _S.RUNNING:
                self._end(session, Cause.EXCEEDED_CPU, now)
        return self._finish()

    def cpu_changed(self, tree: str, cpu_seconds: float, now: datetime) -> list[Output]:
        """A source that reports changes says the tree's load changes now (`CpuReadings.PUSHED`)."""
        running = [
            session
            for app in self._trees.get(tree, ())
            if (session := self._running_of(app)) is not None and not session.orphaned
        ]
        self._meter.changed(tree, cpu_seconds, now, running)
        return self._finish()

    def _meter_start(self, session: LiveSession, now: datetime) -> None:
        sample = self._meter.start(session, now)
        if sample is not None:
            self._out.append(sample)

    def _cpu_tick(self, now: datetime) -> None:
        sample = self._meter.due(now)
        if sample is not None:
            self._out.append(sample)


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
