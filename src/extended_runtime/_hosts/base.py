"""What every host does with the engine's outputs.

Theory
------
A host owns one `Engine` and is the only caller of it. It turns the public API's calls into
engine commands, under one lock, and performs the outputs in order, through an explicit table
from output type to handler:

* session events update the session objects at once (so `state` changes synchronously inside
  `start()`, `start_at()` and `invalidate()`) and *post* the delegate call for later;
* `AlertPlayed` plays the alert, then posts the app's repeat handler, whose answer goes back to
  the engine; `SessionHandedOver` builds a fresh session object and posts the app's
  `on_session` handlers (Apple's `handle(_:)`);
* effects drive the backends: keep-awake, wake alarm, app launch, CPU samples.

Subclasses decide the two things that differ between hosts: what time it is (`now`) and how a
posted call reaches the app (`_post`): the virtual host queues it until `advance`, the embedded
host hands it to the session's asyncio loop or to one delegate thread. Posting keeps every
delegate call out of the caller's stack and in order.
"""

from __future__ import annotations

import logging
import threading
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from .._core.enums import ApplicationState, AutoLaunchAuthorizationStatus, HapticType, SessionState
from .._core.errors import SessionUsageError
from .._core.events import (
    AlarmEndedSilently,
    AlarmsDisabled,
    AlertPlayed,
    AppLaunchFailed,
    Event,
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
from .._core.records import fold

if TYPE_CHECKING:
    from .._api.app import App
    from .._api.session import ExtendedRuntimeSession
    from .._core.engine import Engine
    from ..abc import AlertBackend, CpuSource, EventSink, KeepAwakeBackend, Store, WakeAlarmBackend

__all__ = ["Host"]

log = logging.getLogger("extended_runtime")


class Host(ABC):
    """The shared machinery of the virtual, embedded and (later) daemon hosts."""

    def __init__(
        self,
        engine: Engine,
        *,
        alerts: AlertBackend,
        keep_awake: KeepAwakeBackend,
        wake_alarm: WakeAlarmBackend,
        sink: EventSink,
        store: Store,
        cpu: CpuSource | None = None,
    ) -> None:
        self.engine = engine
        self.alert_backend = alerts
        self.keep_awake_backend = keep_awake
        self.wake_alarm_backend = wake_alarm
        self.sink = sink
        self.store = store
        self.cpu = cpu
        self._lock = threading.RLock()
        #: Objects that hear their session's events, by session id.
        self._objects: dict[str, ExtendedRuntimeSession] = {}
        #: Every object a process of each app holds (calls may still be queued for them).
        self._held_by: dict[str, weakref.WeakSet[ExtendedRuntimeSession]] = {}
        self._apps: dict[str, App] = {}
        self._handlers: dict[type[Any], Callable[[Any], Iterable[Output]]] = {
            SessionScheduled: self._on_session_event,
            SessionStarted: self._on_session_event,
            SessionWillExpire: self._on_session_event,
            SessionInvalidated: self._on_invalidated,
            AlertPlayed: self._on_alert_played,
            SessionHandedOver: self._on_handed_over,
            RequestIgnored: self._on_ignored,
            AlarmEndedSilently: self._on_silent_alarm,
            AlarmsDisabled: self._on_alarms_disabled,
            AppLaunchFailed: self._on_launch_failed,
            KeepAwake: self._on_keep_awake,
            WakeAlarm: self._on_wake_alarm,
            LaunchApp: self._on_launch,
            SampleCpu: self._on_sample_cpu,
        }

    # ------------------------------------------------------------------ subclass hooks

    @property
    @abstractmethod
    def now(self) -> datetime:
        """The host's current instant (aware UTC)."""

    @abstractmethod
    def _post(self, at: datetime, call: Callable[[], None], loop: object | None) -> None:
        """Run `call` later, serially with every other posted call, for an event at `at`."""

    def _timers_changed(self) -> None:  # noqa: B027 (optional hook)
        """The engine's next deadline may have moved (the embedded host wakes its timer)."""

    def _launch(self, app: App, session_id: str) -> Iterable[Output]:
        """Launch `app` for a session; the default host cannot, so the engine alerts instead."""
        return self.engine.launch_failed(app.app_id, self.now, "this host cannot launch apps")

    # ------------------------------------------------------------------ apps

    def register_app(self, app: App) -> None:
        """Make an app known to this host and its engine."""
        with self._lock:
            known = self._apps.get(app.app_id)
            if known is not None and known is not app:
                raise SessionUsageError(
                    f"app {app.app_id!r} is already registered with this host by another App "
                    "object: use one App per app id"
                )
            self._apps[app.app_id] = app
            self.engine.register_app(
                app.app_id, app.background_mode, state=app.state, launchable=self._can_launch(app)
            )

    def _can_launch(self, app: App) -> bool:
        return False

    def set_app_state(self, app: App, state: ApplicationState) -> None:
        """The app's foreground state changed."""
        with self._lock:
            self._apply(self.engine.set_app_state(app.app_id, state, self.now))

    # ------------------------------------------------------------------ session commands

    def _attach(self, session: ExtendedRuntimeSession) -> None:
        """`session` hears its events from now on, until its app's process exits."""
        self._objects[session.session_id] = session
        self._held_by.setdefault(session.app.app_id, weakref.WeakSet()).add(session)

    def start(self, session: ExtendedRuntimeSession) -> None:
        with self._lock:
            self._attach(session)
            outputs = self.engine.start(session.session_id, session.app.app_id, self.now)
            self._apply(outputs)

    def start_at(self, session: ExtendedRuntimeSession, when: datetime) -> None:
        with self._lock:
            self._attach(session)
            now = self.now
            self._apply(self.engine.start_at(session.session_id, session.app.app_id, when, now))

    def invalidate(self, session: ExtendedRuntimeSession) -> None:
        with self._lock:
            self._attach(session)
            outputs = self.engine.invalidate(session.session_id, session.app.app_id, self.now)
            self._apply(outputs)

    def notify_user(self, session: ExtendedRuntimeSession, haptic: HapticType) -> None:
        with self._lock:
            app_id = session.app.app_id
            self._apply(self.engine.notify_user(session.session_id, app_id, haptic, self.now))

    def delegate_set(self, session: ExtendedRuntimeSession) -> None:
        """A handed-over session got a delegate: cancel the deadline, deliver what it missed."""
        with self._lock:
            self._apply(self.engine.delegate_attached(session.session_id, self.now))
            self._post(self.now, session._drain_held, session._loop)

    def request_auto_launch(self, app: App) -> AutoLaunchAuthorizationStatus:
        """Apple's `requestAutoLaunchAuthorizationStatus`: ask the user once, then remember."""
        with self._lock:
            now = self.now
            status = self.engine.request_auto_launch(app.app_id, now)
            if status is not None:
                return status
            allow = self._ask_auto_launch(app)
            self._apply(self.engine.answer_auto_launch(app.app_id, allow, now))
            return self.engine.auto_launch_status(app.app_id)

    def _ask_auto_launch(self, app: App) -> bool:
        """Ask the user whether the host may launch `app` for its alarms; default: decline."""
        log.warning(
            "auto-launch for %s: this host cannot ask the user, so it is declined", app.app_id
        )
        return False

    # ------------------------------------------------------------------ outputs

    def _apply(self, outputs: Iterable[Output]) -> None:
        """Perform outputs in order; handlers may answer with more (CPU samples, launches)."""
        work = deque(outputs)
        while work:
            output = work.popleft()
            if isinstance(output, Event):
                self._record(output)
            handler = self._handlers.get(type(output))
            if handler is not None:
                work.extend(handler(output))
        self._timers_changed()

    def _record(self, event: Event) -> None:
        self.sink.record(event)
        if isinstance(event, SessionEvent):
            record = fold(self.store.get(event.session_id), event)
            if record is not None:
                self.store.save(record)

    def _on_session_event(self, event: SessionEvent) -> Iterable[Output]:
        session = self._objects.get(event.session_id)
        if session is not None:
            session._apply_event(event)
            self._post(event.at, partial(session._dispatch, event), session._loop)
        return ()

    def _on_invalidated(self, event: SessionInvalidated) -> Iterable[Output]:
        self._on_session_event(event)
        self._objects.pop(event.session_id, None)
        if event.previous_state is SessionState.RUNNING:
            self.alert_backend.dismiss(event.app_id, event.session_id)
        return ()

    def _on_alert_played(self, event: AlertPlayed) -> Iterable[Output]:
        self.alert_backend.play(event.app_id, event.session_id, event.haptic, event.by_host)
        session = self._objects.get(event.session_id)
        if session is not None and not event.by_host:
            call = partial(self._run_repeat_handler, session, event)
            self._post(event.at, call, session._loop)
        return ()

    def _run_repeat_handler(self, session: ExtendedRuntimeSession, event: AlertPlayed) -> None:
        default = self.engine.policy.alert_interval_default
        delay, haptic = session._ask_repeat_handler(event.haptic, default)
        with self._lock:
            now = self.now
            sid = event.session_id
            self._apply(self.engine.set_next_alert(sid, event.sequence, delay, haptic, now))

    def _on_handed_over(self, event: SessionHandedOver) -> Iterable[Output]:
        from .._api.session import ExtendedRuntimeSession

        app = self._apps.get(event.app_id)
        if app is None:
            return ()
        session = ExtendedRuntimeSession._adopt(app, event)
        self._attach(session)
        if event.state is SessionState.INVALID:
            del self._objects[event.session_id]
        self._post(event.at, partial(_hand_over, app, session), None)
        return ()

    def _on_ignored(self, event: RequestIgnored) -> Iterable[Output]:
        log.warning("%s ignored for session %s: %s", event.request, event.session_id, event.message)
        return ()

    def _on_silent_alarm(self, event: AlarmEndedSilently) -> Iterable[Output]:
        log.warning(
            "the alarm of %s (session %s) ended without alerting the user (%d in a row)",
            event.app_id,
            event.session_id,
            event.count,
        )
        return ()

    def _on_alarms_disabled(self, event: AlarmsDisabled) -> Iterable[Output]:
        log.warning(
            "alarms of %s are disabled: %d alarms in a row ran without alerting the user; "
            "its alarms fail with BAR_DISABLED until the user allows them again",
            event.app_id,
            event.count,
        )
        return ()

    def _on_launch_failed(self, event: AppLaunchFailed) -> Iterable[Output]:
        log.warning("could not launch %s: %s; the host alerts instead", event.app_id, event.message)
        return ()

    def _on_keep_awake(self, effect: KeepAwake) -> Iterable[Output]:
        if effect.held:
            self.keep_awake_backend.hold("an extended runtime session is running")
        else:
            self.keep_awake_backend.release()
        return ()

    def _on_wake_alarm(self, effect: WakeAlarm) -> Iterable[Output]:
        self.wake_alarm_backend.arm(effect.at)
        return ()

    def _on_launch(self, effect: LaunchApp) -> Iterable[Output]:
        # the engine only asks for apps this host registered
        return self._launch(self._apps[effect.app_id], effect.session_id)

    def _on_sample_cpu(self, effect: SampleCpu) -> Iterable[Output]:
        if self.cpu is None:
            return ()
        readings = {}
        for app_id in effect.app_ids:
            seconds = self.cpu.cpu_seconds(app_id)
            if seconds is not None:
                readings[app_id] = seconds
        return self.engine.observe_cpu(readings, self.now) if readings else ()

    def allow_alarms(self, app: App) -> None:
        """The user allows an app's alarms again after silent alarms disabled them."""
        with self._lock:
            self._apply(self.engine.allow_alarms(app.app_id, self.now))

    def _drop_objects(self, app_id: str) -> list[ExtendedRuntimeSession]:
        """The app's process is gone: its session objects hear nothing more; returns them."""
        dropped = list(self._held_by.pop(app_id, ()))
        for session in dropped:
            session._dead = True
            if self._objects.get(session.session_id) is session:
                del self._objects[session.session_id]
        return dropped


def _hand_over(app: App, session: ExtendedRuntimeSession) -> None:
    """Run the relaunch handlers, unless the process exited before they could run."""
    if not session._dead:
        app._hand_over(session)
