"""`VirtualHost`: the whole system on a virtual clock, for tests.

Theory
------
The virtual host is the same engine and the same output handling as the real hosts (`Host`),
with two differences: time moves only when a test calls `advance`, and posted calls (delegate
calls, repeat handlers, relaunch handlers) wait in a queue until then. `advance(seconds)` walks
the engine's deadlines one instant at a time: it sets `now` to the deadline, fires what is due,
performs the effects, then delivers the queued calls with `now` set to the instant of the event
that caused each, so an hour-long session takes microseconds and a delegate sees the time its
event happened.

It records what it asked for (`alerts`, `keep_awake_held`, `wake_alarm_at`, `events`,
`launches`) as the engine decides it, whatever the backends then do. By default it has no
backends: it performs nothing and its few effects (CPU readings, launches, log lines) run inline,
in the caller's thread, which keeps a test deterministic.
Given `backends=` (your own, to test them, or ones that fail), it performs them on the real
effect channels, threads and timeouts included, and waits after every step until they are done
or abandoned: a backend that raises or hangs is tested against the real machinery.

It also plays the parts no test machine has: apps that can be terminated and relaunched (a
launch hands sessions to `app.on_session` handlers), a user who answers the auto-launch question
(`set_auto_launch_answer`) and presses Stop (`stop_alarm`), CPU load (`set_cpu_load`; an app with
no load costs nothing per sample), and system conditions (`set_suppressed`, `set_conditions`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from .._api.app import App
from .._api.port import AppRecord, SessionLink
from .._backends.select import Backends
from .._core.clock import as_utc, to_seconds
from .._core.engine import Engine
from .._core.enums import ApplicationState, HapticType
from .._core.events import (
    AlertPlayed,
    Event,
    KeepAwake,
    Output,
    SessionEvent,
    SessionInvalidated,
    WakeAlarm,
)
from .._core.metering import CpuReadings
from .._core.policy import Policy
from .._hosts.base import Host
from ..abc import CpuSource

__all__ = ["RecordedAlert", "VirtualHost"]

_DEFAULT_NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
#: How long one step waits for given backends (their own timeouts abandon them before that).
_SETTLE = 60.0


@dataclass(frozen=True, slots=True)
class RecordedAlert:
    """One alert the virtual host played."""

    at: datetime
    app_id: str
    session_id: str
    haptic: HapticType
    by_host: bool


class _Cpu(CpuSource):
    """CPU time integrated from the loads a test sets (cores times seconds), one tree per app.

    It reports every change of load, so the engine samples only apps whose load is not zero.
    """

    name = "virtual-cpu"
    reports_changes = True

    def __init__(self, host: VirtualHost) -> None:
        self._host = host
        self._load: dict[str, tuple[float, float, datetime]] = {}

    def set_load(self, app_id: str, cores: float) -> float:
        """Change the load from now on; returns the CPU seconds used until now."""
        total = self.total(app_id)
        self._load[app_id] = (cores, total, self._host.now)
        return total

    def total(self, app_id: str) -> float:
        cores, total, since = self._load.get(app_id, (0.0, 0.0, self._host.now))
        return total + cores * (self._host.now - since).total_seconds()

    def tree_of(self, app_id: str) -> str:
        return app_id

    def read(self, trees: Collection[str]) -> dict[str, float]:
        return {tree: self.total(tree) for tree in trees}


class VirtualHost(Host):
    """A host on a virtual clock that records what a real host would do."""

    def __init__(
        self,
        now: datetime = _DEFAULT_NOW,
        policy: Policy | None = None,
        *,
        backends: Backends | None = None,
        effect_timeout: float = 5.0,
    ) -> None:
        self._now = as_utc(now, "now")
        self._queue: deque[tuple[datetime, Callable[[], None]]] = deque()
        self._answers: dict[str, bool] = {}
        self._cpu = _Cpu(self)
        self._played: list[RecordedAlert] = []
        self._events: list[Event] = []
        self._keep_awake = False
        self._wake_at: datetime | None = None
        self.launches: list[tuple[datetime, str]] = []
        #: Links of exited processes: they hear nothing, but their state stays true.
        self._exited: dict[str, list[SessionLink]] = {}
        self._performs = backends is not None
        chosen = replace(backends or Backends(None, None, None, None, None), cpu=self._cpu)
        super().__init__(
            Engine(policy, cpu=CpuReadings.PUSHED),
            chosen,
            threaded=backends is not None,
            effect_timeout=effect_timeout,
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
            self._effects_submitted()
            self._deliver()
        self._now = target
        self._deliver()

    def _effects_submitted(self) -> None:
        if not self._performs:
            self._effects.flush()
        elif not self._effects.in_worker():  # a failure reported from a worker settles later
            self._effects.settle(_SETTLE)

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

    def _submit_audit(self, event: Event) -> None:
        self._events.append(event)
        if isinstance(event, AlertPlayed):
            alert = RecordedAlert(
                event.at, event.app_id, event.session_id, event.haptic, event.by_host
            )
            self._played.append(alert)
        super()._submit_audit(event)

    def _on_keep_awake(self, effect: KeepAwake) -> None:
        self._keep_awake = effect.held
        super()._on_keep_awake(effect)

    def _on_wake_alarm(self, effect: WakeAlarm) -> None:
        self._wake_at = effect.at
        super()._on_wake_alarm(effect)

    @property
    def alerts(self) -> list[RecordedAlert]:
        """Every alert played, repetitions included, in order."""
        return self._played

    @property
    def keep_awake_held(self) -> bool:
        """Whether the host holds its keep-awake now."""
        return self._keep_awake

    @property
    def wake_alarm_at(self) -> datetime | None:
        """When the host's wake alarm is armed for (the earliest scheduled start)."""
        return self._wake_at

    @property
    def events(self) -> list[Event]:
        """Every event the engine announced, in order (the audit log)."""
        return self._events

    # ------------------------------------------------------------------ the world

    def _can_launch(self, app: AppRecord) -> bool:
        return True

    def set_cpu_load(self, app: App, cores: float) -> None:
        """From now on the app's process tree uses `cores` cores."""
        used = self._cpu.set_load(app.app_id, float(cores))
        self._feed(lambda: self.engine.cpu_changed(app.app_id, used, self._now))

    def set_auto_launch_answer(self, app: App, allow: bool) -> None:
        """What the user answers when asked about auto-launch (never set: declines)."""
        self._answers[app.app_id] = allow

    def _ask_auto_launch(self, app: AppRecord) -> bool:
        return self._answers.get(app.app_id, False)

    def stop_alarm(self, app: App) -> None:
        """The user presses Stop on the app's alarm alert."""
        self._command(lambda: self.engine.stop_alarm(app.app_id, self._now))

    def terminate(self, app: App) -> None:
        """The app's process is gone; its session objects hear nothing more."""

        def command() -> list[Output]:
            for link in self._drop_links(app.app_id):
                self._exited.setdefault(link.session_id, []).append(link)
            app.record.state = ApplicationState.BACKGROUND
            used = self._cpu.set_load(app.app_id, 0.0)
            return [
                *self.engine.cpu_changed(app.app_id, used, self._now),
                *self.engine.app_exited(app.app_id, self._now),
            ]

        self._command(command)

    def _on_session_event(self, event: SessionEvent) -> None:
        for exited in self._exited.get(event.session_id, ()):
            exited.mirror(event)
        if isinstance(event, SessionInvalidated):
            self._exited.pop(event.session_id, None)
        super()._on_session_event(event)

    def launch(self, app: App) -> None:
        """The user launches the app (it starts ACTIVE) and it hears what it missed."""

        def command() -> list[Output]:
            app.record.state = ApplicationState.ACTIVE
            return self.engine.app_launched(app.app_id, self._now, by_host=False)

        self._command(command)

    def _launch(self, app: AppRecord, session_id: str) -> None:
        self.launches.append((self._now, app.app_id))

        def command() -> list[Output]:
            app.state = ApplicationState.BACKGROUND
            return self.engine.app_launched(app.app_id, self._now, by_host=True)

        self._feed(command)
