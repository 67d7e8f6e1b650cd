"""What every host does with the engine's outputs.

Theory
------
A host owns one `Engine` and is its only caller. It implements the API's `HostPort`: each call
becomes an engine command, made under the host's lock, and the outputs are handled there in
order through an explicit table from output type to handler. Handlers do only what must happen
at once and cannot block:

* session events are *mirrored* into the session objects' links (so `state` changes inside
  `start()`, `start_at()` and `invalidate()`), and their delegate calls are *posted* to run
  later, serially;
* everything else is an effect handed to the `Effects` runner, channel by channel: the
  store's record of each session, the audit of every event (sink and log), alerts, keep-awake,
  the wake alarm, launches and CPU readings. The runner performs them after the lock is
  released, guarded, and tells the host of each failure (`_effect_failed`), which the engine
  records (`Engine.effect_failed`). A slow D-Bus call or a dead sound server therefore never
  delays a timer or a command, and never stops the host.

Subclasses decide what differs between hosts: what time it is (`now`), how a posted call
reaches the app (`_post`: the virtual host queues it until `advance`, the embedded host hands it
to the session's asyncio loop or to one delegate thread), whether effects run on threads, and
whether the host can launch apps.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from .._api.app import App
from .._api.port import AppRecord, SessionLink
from .._api.session import adopt
from .._backends.select import Backends
from .._backends.threads import held_in_main_thread
from .._core.conditions import Conditions
from .._core.engine import Engine
from .._core.enums import (
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    HapticType,
    SessionState,
    SessionType,
)
from .._core.errors import SessionUsageError
from .._core.events import (
    AlertPlayed,
    EffectFailed,
    Event,
    ExpirationMoved,
    KeepAwake,
    LaunchApp,
    Output,
    SampleCpu,
    SessionEvent,
    SessionHandedOver,
    SessionInvalidated,
    SessionScheduled,
    SessionStarted,
    SessionWillExpire,
    WakeAlarm,
)
from .._core.records import FOLDED, fold
from ..abc import ConditionsChange, EventSink, Store, UserAction
from .effects import Effects, Job, spaced_by
from .event_log import log_event, logs

__all__ = ["CannotLaunch", "Host", "keep_awake_spacing", "keep_record"]

log = logging.getLogger("extended_runtime")


class CannotLaunch(RuntimeError):
    """The host cannot launch the app (no launch command, or this host never launches)."""


class Host(ABC):
    """The shared machinery of the virtual, embedded and (later) daemon hosts."""

    def __init__(
        self, engine: Engine, backends: Backends, *, threaded: bool, effect_timeout: float = 5.0
    ) -> None:
        self.engine = engine
        self.backends = backends
        self._lock = threading.RLock()
        #: Links that hear their session's events, by session id.
        self._links: dict[str, SessionLink] = {}
        #: Running sessions that played an alert: only their endings (and any alarm's) dismiss.
        self._alerted: set[str] = set()
        #: Every link a process of each app holds (calls may still be queued for them).
        self._held_by: dict[str, weakref.WeakSet[Any]] = {}
        self._apps: dict[str, AppRecord] = {}
        self._closed = False
        self._effects = Effects(self._effect_failed, threaded=threaded, timeout=effect_timeout)
        #: A command is applied whole, a Ctrl-C landing after it (the virtual host has no need).
        self._whole = held_in_main_thread if threaded else None
        self._declare_channels()
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            SessionScheduled: self._on_session_event,
            SessionStarted: self._on_session_event,
            SessionWillExpire: self._on_session_event,
            ExpirationMoved: self._on_session_event,
            SessionInvalidated: self._on_invalidated,
            AlertPlayed: self._on_alert_played,
            SessionHandedOver: self._on_handed_over,
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

    def _effects_submitted(self) -> None:
        """Commands call this after releasing the lock: inline effects run now."""
        self._effects.flush()

    def _can_launch(self, app: AppRecord) -> bool:
        return False

    def _launch(self, app: AppRecord, session_id: str) -> None:
        """Launch `app` for a session (runs on the launch channel); raise if it cannot."""
        raise CannotLaunch("this host cannot launch apps")

    def _ask_auto_launch(self, app: AppRecord) -> bool:
        """Ask the user whether the host may launch `app` for its alarms; default: decline."""
        log.warning(
            "auto-launch for %s: this host cannot ask the user, so it is declined", app.app_id
        )
        return False

    # ------------------------------------------------------------------ apps

    def app(
        self,
        app_id: str,
        background_mode: str | None = None,
        *,
        state: ApplicationState = ApplicationState.ACTIVE,
        launch: list[str] | str | None = None,
    ) -> App:
        """An app bound to this host (the same app if one with this id and declaration exists)."""
        return App(app_id, background_mode, launch, state=state, host=self)

    def register_app(self, app: AppRecord) -> AppRecord:
        """Make an app known; a second record of the same app joins the first."""
        with self._lock:
            known = self._apps.get(app.app_id)
            if known is None:
                app.host = self
                self._apps[app.app_id] = app
                launchable = self._can_launch(app)
                self.engine.register_app(
                    app.app_id,
                    app.mode,
                    state=app.state,
                    launchable=launchable,
                    tree=self._tree(app),
                )
                return app
            return known.join(app, "this host")

    def _tree(self, app: AppRecord) -> str | None:
        cpu = self.backends.cpu
        return None if cpu is None else cpu.tree_of(app.app_id)

    def set_app_state(self, app: AppRecord, state: ApplicationState) -> None:
        """The app's foreground state changed."""

        def command() -> list[Output]:
            app.state = state
            return self.engine.set_app_state(app.app_id, state, self.now)

        self._command(command)

    def allow_alarms(self, app: App) -> None:
        """The user allows an app's alarms again after silent alarms disabled them."""
        self._command(lambda: self.engine.allow_alarms(app.app_id, self.now))

    def set_suppressed(self, suppressed: bool) -> None:
        """The user paused (or resumed) all sessions (`xrs pause`): running ones end, starts
        fail and a scheduled one whose date comes meanwhile ends, all SUPPRESSED_BY_SYSTEM."""
        self._command(
            lambda: self.engine.set_conditions(
                replace(self.engine.conditions, paused=suppressed), self.now
            )
        )

    def set_conditions(self, conditions: Conditions) -> None:
        """New system conditions (shutdown, power saver, battery)."""
        self._command(lambda: self.engine.set_conditions(conditions, self.now))

    # ------------------------------------------------------------------ session commands

    @property
    def closed(self) -> bool:
        """Whether the host was closed (its sessions have ended; it takes no more calls)."""
        return self._closed

    def _command(self, command: Callable[[], Iterable[Output]]) -> None:
        """Run an engine command under the lock, then let the effects run outside it; a
        threaded host holds the main thread's signals meanwhile (`threads`)."""
        if self._whole is None:
            self._run_command(command)
            return
        with self._whole():
            self._run_command(command)

    def _run_command(self, command: Callable[[], Iterable[Output]]) -> None:
        with self._lock:
            if self._closed:
                raise SessionUsageError(
                    f"this {type(self).__name__} is closed: its sessions have ended; "
                    "create a new host"
                )
            self._apply(command())
        self._effects_submitted()

    def _feed(self, command: Callable[[], Iterable[Output]]) -> None:
        """Like `_command`, for what the host itself learns (readings, answers, failures):
        once the host is closed there is nobody to tell, and it is dropped."""
        with self._lock:
            if self._closed:
                return
            self._apply(command())
        self._effects_submitted()

    def _attach(self, link: SessionLink) -> None:
        """`link` hears its session's events from now on, until its app's process exits."""
        self._links[link.session_id] = link
        held = self._held_by.get(link.app.app_id)
        if held is None:  # not `setdefault`, which would build a set on every call
            held = self._held_by[link.app.app_id] = weakref.WeakSet()
        held.add(link)

    def start(self, link: SessionLink) -> None:
        def command() -> list[Output]:
            self._attach(link)
            return self.engine.start(link.session_id, link.app.app_id, self.now)

        self._command(command)

    def start_at(self, link: SessionLink, when: datetime) -> None:
        def command() -> list[Output]:
            self._attach(link)
            return self.engine.start_at(link.session_id, link.app.app_id, when, self.now)

        self._command(command)

    def invalidate(self, link: SessionLink) -> None:
        def command() -> list[Output]:
            self._attach(link)
            return self.engine.invalidate(link.session_id, link.app.app_id, self.now)

        self._command(command)

    def notify_user(self, link: SessionLink, haptic: HapticType, *, handler: bool) -> None:
        app_id, session_id = link.app.app_id, link.session_id
        self._command(
            lambda: self.engine.notify_user(session_id, app_id, haptic, self.now, handler=handler)
        )

    def delegate_set(self, link: SessionLink) -> None:
        """A handed-over session got a delegate: cancel the deadline, deliver what it missed."""
        with self._lock:
            self._apply(self.engine.delegate_attached(link.session_id, self.now))
            self._post(self.now, link.deliver_backlog, link.loop)
        self._effects_submitted()

    def request_auto_launch(self, app: AppRecord) -> AutoLaunchAuthorizationStatus:
        """Apple's `requestAutoLaunchAuthorizationStatus`: ask the user once, then remember."""
        with self._lock:
            status = self.engine.request_auto_launch(app.app_id, self.now)
            if status is not None:
                return status
        allow = self._ask_auto_launch(app)
        self._command(lambda: self.engine.answer_auto_launch(app.app_id, allow, self.now))
        return self.engine.auto_launch_status(app.app_id)

    def _stop_engine(self, message: str) -> None:
        """End every live session (the host stops); their calls are posted as usual."""
        self._command(lambda: self.engine.stop_host(self.now, message))

    # ------------------------------------------------------------------ outputs

    def _apply(self, outputs: Iterable[Output]) -> None:
        """Handle outputs in order (under the lock): mirror, post, and submit effects."""
        handlers = self._handlers
        for output in outputs:
            if isinstance(output, Event):
                self._submit_audit(output)
            handler = handlers.get(type(output))
            if handler is not None:
                handler(output)
        self._timers_changed()

    def _submit_audit(self, event: Event) -> None:
        """The store keeps the session's record, the sink the event (each on its channel);
        the audit channel also logs, so without a sink it runs for events that may log."""
        store, sink = self.backends.store, self.backends.sink
        if store is not None and isinstance(event, FOLDED):
            job = Job("store", store.name, partial(keep_record, store, event), event.app_id)
            self._effects.submit("store", job)
        if sink is not None and not sink.listening():
            sink = None
        if sink is None and not logs(event):
            return
        # a failure to record an EffectFailed is logged only: reporting it would loop
        effect = "record-failure" if isinstance(event, EffectFailed) else "record"
        name = "log" if sink is None else sink.name
        self._effects.submit("audit", Job(effect, name, partial(_record, sink, event)))

    def _on_session_event(self, event: SessionEvent) -> None:
        link = self._links.get(event.session_id)
        if link is not None:
            link.mirror(event)
            self._post(event.at, partial(link.deliver, event), link.loop)

    def _on_invalidated(self, event: SessionInvalidated) -> None:
        self._on_session_event(event)
        self._links.pop(event.session_id, None)
        alerts = self.backends.alerts
        alerted = event.session_id in self._alerted or event.session_type is SessionType.SMART_ALARM
        self._alerted.discard(event.session_id)
        if alerted and event.previous_state is SessionState.RUNNING and alerts is not None:
            dismiss = partial(alerts.dismiss, event.app_id, event.session_id)
            job = Job("dismiss", alerts.name, dismiss, event.app_id, event.session_id)
            self._effects.submit("alerts", job)

    def _on_alert_played(self, event: AlertPlayed) -> None:
        alerts = self.backends.alerts
        if alerts is not None:
            self._alerted.add(event.session_id)
            play = partial(alerts.play, event.app_id, event.session_id, event.haptic, event.by_host)
            job = Job("alert", alerts.name, play, event.app_id, event.session_id)
            self._effects.submit("alerts", job)
        if event.awaits_answer and (link := self._links.get(event.session_id)) is not None:
            self._ask_repeat(link, event)

    def _ask_repeat(self, link: SessionLink, event: AlertPlayed) -> None:
        """Ask the session's repeat handler when the next alert plays (posted: it is app code)."""
        self._post(event.at, partial(self._run_repeat_handler, link, event), link.loop)

    def _run_repeat_handler(self, link: SessionLink, event: AlertPlayed) -> None:
        default = self.engine.policy.alert_interval_default
        delay, haptic = link.repeat_answer(event.haptic, default)
        sid, sequence = event.session_id, event.sequence
        self._feed(lambda: self.engine.set_next_alert(sid, sequence, delay, haptic, self.now))

    def _on_handed_over(self, event: SessionHandedOver) -> None:
        app = self._apps.get(event.app_id)
        if app is None:
            return
        link = adopt(app, event)
        self._attach(link)
        if event.state is SessionState.INVALID:
            del self._links[event.session_id]
        self._post(event.at, partial(_hand_over, app, link), None)

    def _on_keep_awake(self, effect: KeepAwake) -> None:
        if self.backends.keep_awake is not None:
            self._effects.set("keep-awake", (effect.who, effect.why) if effect.held else None)

    def _on_wake_alarm(self, effect: WakeAlarm) -> None:
        if self.backends.wake_alarm is not None:
            self._effects.set("wake-alarm", effect.at)

    def _on_launch(self, effect: LaunchApp) -> None:
        launch = partial(self._launch, self._apps[effect.app_id], effect.session_id)
        self._effects.submit(
            "launch", Job("launch", "host", launch, effect.app_id, effect.session_id)
        )

    def _on_sample_cpu(self, effect: SampleCpu) -> None:
        self._effects.set("cpu", frozenset(effect.trees))

    # ------------------------------------------------------------------ effects

    def _declare_channels(self) -> None:
        effects, backends = self._effects, self.backends
        for name in ("store", "audit", "alerts", "launch"):
            effects.queue(name)
        keep = backends.keep_awake
        if keep is not None:
            effects.latest(
                "keep-awake",
                lambda label: Job(
                    "keep-awake",
                    keep.name,
                    keep.release if label is None else partial(keep.hold, *label),
                ),
                spacing=keep_awake_spacing,
            )
        wake = backends.wake_alarm
        if wake is not None:
            effects.latest(
                "wake-alarm",
                lambda at: Job("wake-alarm", wake.name, partial(wake.arm, at)),
                spacing=spaced_by(WAKE_ALARM_SPACING, _later),
            )
        cpu_name = backends.cpu.name if backends.cpu is not None else "none"
        effects.latest(
            "cpu",
            lambda trees: Job("cpu", cpu_name, partial(self._read_cpu, trees)),
            merge=frozenset.union,
            spacing=spaced_by(CPU_READ_SPACING),
        )

    def _read_cpu(self, trees: Collection[str]) -> None:
        """Read the trees (outside the lock), then give the engine the readings, `CPU_CHUNK`
        trees at a time: a host with thousands of running sessions would otherwise hold its
        lock (and the interpreter) for milliseconds, and a timer due meanwhile would wait. Between
        two chunks the thread yields, so the timer thread takes its turn."""
        cpu = self.backends.cpu
        if cpu is None:
            return
        items = list(cpu.read(trees).items())
        for at in range(0, len(items), CPU_CHUNK):
            if at:
                _yield()  # releases the interpreter too
            self._feed(partial(self._observe_cpu, dict(items[at : at + CPU_CHUNK])))

    def _observe_cpu(self, readings: dict[str, float]) -> list[Output]:
        return self.engine.observe_cpu(readings, self.now)

    def _effect_failed(self, job: Job, message: str, timed_out: bool) -> None:
        """The runner could not perform `job`: the engine records it and goes on."""
        if job.effect == "record-failure":
            return
        self._feed(
            lambda: self.engine.effect_failed(
                job.effect,
                job.backend,
                message,
                self.now,
                timed_out=timed_out,
                app_id=job.app_id,
                session_id=job.session_id,
            )
        )

    # ------------------------------------------------------------------ the world

    def _listen(self) -> None:
        """Hear the user (alert actions) and the system (conditions, sleep) through the
        backends that can tell."""
        backends = self.backends
        if backends.alerts is not None:
            backends.alerts.listen(self._user_acted)
        for source in backends.suppression:
            source.watch(self._conditions_changed)
        if backends.sleep is not None:
            backends.sleep.watch(self._before_sleep, self._after_wake)

    def _user_acted(self, action: UserAction) -> None:
        """Stop (or a dismissal) ends the alarm with NONE; Open makes the app ACTIVE."""
        if action.kind == "stop":
            self._feed(lambda: self.engine.stop_alarm(action.app_id, self.now))
            return
        app = self._apps.get(action.app_id)
        if app is not None:

            def open_app() -> list[Output]:
                app.state = ApplicationState.ACTIVE
                return self.engine.set_app_state(app.app_id, app.state, self.now)

            self._feed(open_app)

    def _conditions_changed(self, change: ConditionsChange) -> None:
        """A source changed its part of the system conditions: the engine applies them."""
        self._feed(lambda: self.engine.set_conditions(change(self.engine.conditions), self.now))

    def _before_sleep(self) -> None:
        """The machine is about to suspend: let the wake alarm be armed first (bounded; settling
        takes spaced values at once)."""
        self._effects.settle(2.0)

    def _after_wake(self) -> None:
        """The machine resumed: whatever came due while it slept is handled now."""
        self._feed(lambda: self.engine.advance(self.now))

    # ------------------------------------------------------------------ processes

    def _drop_links(self, app_id: str) -> list[SessionLink]:
        """The app's process is gone: its session objects hear nothing more.

        Returns the links whose sessions were still live (SCHEDULED or RUNNING)."""
        live: list[SessionLink] = []
        held: list[SessionLink] = list(self._held_by.pop(app_id, ()))
        for link in held:
            link.detach()
            if self._links.get(link.session_id) is link:
                del self._links[link.session_id]
                live.append(link)
        return live


def keep_record(store: Store, event: SessionEvent) -> None:
    """Fold the event into the session's record in the store."""
    record = fold(store.get(event.session_id), event)
    if record is not None:
        store.save(record)


#: The shortest time between two new labels of a keep-awake that stays held (seconds): each
#: is a new inhibitor, and a burst of starts then costs one, not one per start.
RELABEL_SPACING = 1.0
#: The shortest time a keep-awake is held (seconds): a release waits this long after its hold
#: was taken, so a burst of sessions that each end before the next starts keeps one inhibitor
#: instead of taking and dropping one per session (two calls to logind each). A session that ran
#: longer is released at once; the machine stays awake at most this long after a short one.
RELEASE_LINGER = 0.1


def keep_awake_spacing(last: object, new: object) -> float:
    """How long keep-awake value `new` waits after `last` was taken: a relabel (held before and
    after) `RELABEL_SPACING`, a release `RELEASE_LINGER`, a hold not at all."""
    if new is None:
        return RELEASE_LINGER if last is not None else 0.0
    return RELABEL_SPACING if last is not None else 0.0


#: The shortest time between two moves of the wake alarm to a later instant (seconds): as a
#: burst of alarms starts, the next start moves on each time, and one re-arming then serves the
#: burst. A move to an earlier instant, and disarming, are never delayed; the alarm armed
#: meanwhile is the earlier instant, which only wakes the machine early, and before a suspend the
#: sleep source arms the earliest start itself.
WAKE_ALARM_SPACING = 1.0


def _later(last: object, new: object) -> bool:
    """Whether the wake alarm only moves later (armed before and after)."""
    return isinstance(last, datetime) and isinstance(new, datetime) and new > last


#: The shortest time between two CPU readings (seconds): a reading walks the process table, and
#: a burst of starts then shares one reading (their baselines are taken at most this late).
CPU_READ_SPACING = 0.5
#: The most process trees the engine is given in one turn of the lock (a fraction of a
#: millisecond of work: see `Host._read_cpu`).
CPU_CHUNK = 64
#: Let other threads run (POSIX `sched_yield`, which releases the interpreter lock; elsewhere
#: nothing: the lock's release between two chunks is then the only opening).
_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


def _record(sink: EventSink | None, event: Event) -> None:
    """Hand the event to the sink, if any, and log it where a log line is due."""
    try:
        if sink is not None:
            sink.record(event)
    finally:
        log_event(event)


def _hand_over(app: AppRecord, link: SessionLink) -> None:
    """Run the relaunch handlers, unless the process exited before they could run."""
    if not link.detached:
        app.hand_over(link.owner)
