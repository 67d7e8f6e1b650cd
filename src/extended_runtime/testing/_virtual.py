"""`VirtualHost`: the whole system on a virtual clock, for tests.

Theory
------
The virtual host is the same engine and the same output handling as the real hosts (`Host`),
with two differences: time moves only when a test calls `advance`, and posted calls (delegate
calls, repeat handlers, relaunch handlers) wait in a queue until then. `advance(seconds)` walks
the engine's deadlines one instant at a time: it sets `now` to the deadline, fires what is due,
then delivers the queued calls with `now` set to the instant of the event that caused each, so
an hour-long session takes microseconds and a delegate sees the time its event happened.

It also plays the parts no test machine has: apps that can be terminated and relaunched (a
launch hands sessions to `app.on_session` handlers), a user who answers the auto-launch question
(`set_auto_launch_answer`) and presses Stop (`stop_alarm`), CPU load (`set_cpu_load`), and
system conditions (`set_suppressed`, `set_conditions`). Alerts, keep-awake and the wake alarm
are recorded instead of performed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .._api.app import App
from .._backends.memory import MemoryEventSink, MemoryStore
from .._core.clock import as_utc, to_seconds
from .._core.conditions import Conditions
from .._core.engine import Engine
from .._core.enums import ApplicationState, HapticType, SessionState, SessionType
from .._core.events import Event, Output, SessionEvent, SessionInvalidated
from .._core.policy import Policy
from .._hosts.base import Host
from ..abc import AlertBackend, CpuSource, KeepAwakeBackend, WakeAlarmBackend

if TYPE_CHECKING:
    from .._api.session import ExtendedRuntimeSession

__all__ = ["RecordedAlert", "VirtualHost"]

_DEFAULT_NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RecordedAlert:
    """One alert the virtual host played."""

    at: datetime
    app_id: str
    session_id: str
    haptic: HapticType
    by_host: bool


class _Alerts(AlertBackend):
    name = "virtual-alerts"

    def __init__(self, host: VirtualHost) -> None:
        self._host = host
        self.played: list[RecordedAlert] = []
        self.dismissed: list[str] = []

    def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
        self.played.append(RecordedAlert(self._host.now, app_id, session_id, haptic, by_host))

    def dismiss(self, app_id: str, session_id: str) -> None:
        self.dismissed.append(session_id)


class _KeepAwake(KeepAwakeBackend):
    name = "virtual-keep-awake"

    def __init__(self) -> None:
        self.held = False
        self.holds = 0

    def hold(self, why: str) -> None:
        self.held = True
        self.holds += 1

    def release(self) -> None:
        self.held = False


class _WakeAlarm(WakeAlarmBackend):
    name = "virtual-wake-alarm"

    def __init__(self) -> None:
        self.at: datetime | None = None

    def arm(self, at: datetime | None) -> None:
        self.at = at


class _Cpu(CpuSource):
    """CPU time integrated from the loads a test sets (cores times seconds)."""

    name = "virtual-cpu"

    def __init__(self, host: VirtualHost) -> None:
        self._host = host
        self._load: dict[str, tuple[float, float, datetime]] = {}

    def set_load(self, app_id: str, cores: float) -> None:
        total = self.cpu_seconds(app_id) or 0.0
        self._load[app_id] = (cores, total, self._host.now)

    def cpu_seconds(self, app_id: str) -> float | None:
        cores, total, since = self._load.get(app_id, (0.0, 0.0, self._host.now))
        return total + cores * (self._host.now - since).total_seconds()


class VirtualHost(Host):
    """A host on a virtual clock that records what a real host would do."""

    def __init__(self, now: datetime = _DEFAULT_NOW, policy: Policy | None = None) -> None:
        self._now = as_utc(now, "now")
        self._queue: deque[tuple[datetime, Callable[[], None]]] = deque()
        self._answers: dict[str, bool] = {}
        self._recorder = _Alerts(self)
        self._keep = _KeepAwake()
        self._wake = _WakeAlarm()
        self._events = MemoryEventSink()
        self._cpu = _Cpu(self)
        self.launches: list[tuple[datetime, str]] = []
        #: Session objects of exited processes: they hear nothing, but their state stays true.
        self._exited: dict[str, list[ExtendedRuntimeSession]] = {}
        super().__init__(
            Engine(policy),
            alerts=self._recorder,
            keep_awake=self._keep,
            wake_alarm=self._wake,
            sink=self._events,
            store=MemoryStore(),
            cpu=self._cpu,
        )

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> datetime:
        """The virtual instant; inside a delegate call, the instant of its cause."""
        return self._now

    def advance(self, seconds: float | timedelta = 0) -> None:
        """Move the clock forward, firing every due timer and delivering every pending call."""
        target = self._now + to_seconds(seconds, "seconds")
        self._deliver()
        while (deadline := self.engine.next_deadline()) is not None and deadline <= target:
            self._now = max(self._now, deadline)
            with self._lock:
                self._apply(self.engine.advance(self._now))
            self._deliver()
        self._now = target
        self._deliver()

    def _post(self, at: datetime, call: Callable[[], None], loop: object | None) -> None:
        self._queue.append((at, call))

    def _deliver(self) -> None:
        current = self._now
        try:
            while self._queue:
                at, call = self._queue.popleft()
                self._now = at
                call()
        finally:
            self._now = current

    # ------------------------------------------------------------------ what was recorded

    @property
    def alerts(self) -> list[RecordedAlert]:
        """Every alert played, repetitions included, in order."""
        return self._recorder.played

    @property
    def keep_awake_held(self) -> bool:
        """Whether the host holds its keep-awake now."""
        return self._keep.held

    @property
    def wake_alarm_at(self) -> datetime | None:
        """When the host's wake alarm is armed for (the earliest scheduled start)."""
        return self._wake.at

    @property
    def events(self) -> list[Event]:
        """Every event the engine announced, in order (the audit log)."""
        return self._events.events

    # ------------------------------------------------------------------ the world

    def app(
        self,
        app_id: str,
        background_mode: SessionType | str | None = None,
        *,
        state: ApplicationState = ApplicationState.ACTIVE,
        launch: list[str] | None = None,
    ) -> App:
        """A new app bound to this host, its process running."""
        app = App(app_id, background_mode, launch, state=state)
        app._bind(self)
        return app

    def _can_launch(self, app: App) -> bool:
        return True

    def set_suppressed(self, suppressed: bool) -> None:
        """The user paused (or resumed) all sessions, like `xrs pause`."""
        from dataclasses import replace

        self.set_conditions(replace(self.engine.conditions, paused=suppressed))

    def set_conditions(self, conditions: Conditions) -> None:
        """New system conditions (shutdown, power saver, battery)."""
        with self._lock:
            self._apply(self.engine.set_conditions(conditions, self._now))

    def set_cpu_load(self, app: App, cores: float) -> None:
        """From now on the app's process tree uses `cores` cores."""
        self._cpu.set_load(app.app_id, float(cores))

    def set_auto_launch_answer(self, app: App, allow: bool) -> None:
        """What the user answers when asked about auto-launch (never set: declines)."""
        self._answers[app.app_id] = allow

    def _ask_auto_launch(self, app: App) -> bool:
        return self._answers.get(app.app_id, False)

    def stop_alarm(self, app: App) -> None:
        """The user presses Stop on the app's alarm alert."""
        with self._lock:
            self._apply(self.engine.stop_alarm(app.app_id, self._now))

    def terminate(self, app: App) -> None:
        """The app's process is gone; its session objects hear nothing more."""
        with self._lock:
            for session in self._drop_objects(app.app_id):
                if session.state is not SessionState.INVALID:
                    self._exited.setdefault(session.session_id, []).append(session)
            app._state = ApplicationState.BACKGROUND
            self._cpu.set_load(app.app_id, 0.0)
            self._apply(self.engine.app_exited(app.app_id, self._now))

    def _on_session_event(self, event: SessionEvent) -> Iterable[Output]:
        for exited in self._exited.get(event.session_id, ()):
            exited._apply_event(event)
        if isinstance(event, SessionInvalidated):
            self._exited.pop(event.session_id, None)
        return super()._on_session_event(event)

    def launch(self, app: App) -> None:
        """The user launches the app (it starts ACTIVE) and it hears what it missed."""
        with self._lock:
            app._state = ApplicationState.ACTIVE
            self._apply(self.engine.app_launched(app.app_id, self._now, by_host=False))

    def _launch(self, app: App, session_id: str) -> Iterable[Output]:
        self.launches.append((self._now, app.app_id))
        app._state = ApplicationState.BACKGROUND
        return self.engine.app_launched(app.app_id, self._now, by_host=True)
