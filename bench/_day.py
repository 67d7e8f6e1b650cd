"""What the simulated days share: the users' agenda, the counting, the rounds and the `sched` peer.

A simulated day drives one `VirtualHost` through the public API only. Users' actions wait on an
agenda (`Driver`) and the host's clock is moved to each in turn with `host.advance`; delegates
count what they hear into a `Tally`. `run_rounds` runs a day several times, checks that every
round counted exactly the same, and runs it once more with the engine's timer queue recording
the instant of every timer it fires (`count_timers`); `peer_day` then fires that many timers at
those instants with `sched.scheduler` on a virtual clock, the floor for "a timer fired".

Fairness: the measured rounds create the host and the apps inside the measurement and draw the
plans outside it; the instrumented round is not measured; the peer's events are entered up
front, in firing order, and its action only counts.
"""

from __future__ import annotations

import heapq
import sched
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from _measure import measure
from extended_runtime import (
    App,
    ApplicationState,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    InvalidationReason,
)
from extended_runtime._core import engine as engine_module
from extended_runtime._core.timers import TimerKind, TimerQueue
from extended_runtime.testing import VirtualHost

__all__ = [
    "DAY",
    "START",
    "CountingDelegate",
    "DayRun",
    "Driver",
    "Rounds",
    "Tally",
    "count_timers",
    "outcome",
    "peer_day",
    "report_fields",
    "run_rounds",
]

DAY = 24 * 3600.0
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


@dataclass(slots=True)
class Tally:
    """What happened, counted by the delegates, the handlers and the driver."""

    sessions: int = 0
    started: int = 0  # start() calls
    scheduled: int = 0  # start_at() calls
    cancelled: int = 0  # invalidate() of a scheduled alarm
    did_start: int = 0
    will_expire: int = 0
    did_invalidate: int = 0
    repeat_calls: int = 0
    notify_calls: int = 0
    stops: int = 0
    state_changes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        counts = {name: getattr(self, name) for name in self.__slots__ if name != "reasons"}
        return {**counts, "reasons": dict(sorted(self.reasons.items()))}


class Driver:
    """The users: actions on an agenda, the host's clock moved to each in turn."""

    def __init__(self, host: VirtualHost, tally: Tally) -> None:
        self.host = host
        self.tally = tally
        self._agenda: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = 0
        self.late = 0  # actions added for an instant the clock had already passed

    def at(self, offset: float, action: Callable[[], None]) -> None:
        """Do `action` at `offset` seconds after midnight."""
        self._push(START + timedelta(seconds=offset), action)

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        """Do `action` `seconds` after the host's current instant."""
        self._push(self.host.now + timedelta(seconds=seconds), action)

    def _push(self, when: datetime, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._agenda, (when, self._seq, action))

    def run_until(self, end: datetime) -> None:
        host, agenda = self.host, self._agenda
        while agenda and agenda[0][0] <= end:
            when, _, action = heapq.heappop(agenda)
            now = host.now
            if when > now:
                host.advance(when - now)
            elif when < now:
                self.late += 1
            action()
        host.advance(end - host.now)

    def set_state(self, app: App, state: ApplicationState) -> None:
        self.tally.state_changes += 1
        app.state = state


class CountingDelegate(ExtendedRuntimeSessionDelegate):
    """A delegate that counts what it hears."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.tally.did_start += 1

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self.tally.will_expire += 1

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self.tally.did_invalidate += 1
        self.tally.reasons[reason.name if error is None else f"ERROR:{error.code.name}"] += 1


#: A day lived on a given host: the host, the tally and the late actions.
DayRun = tuple[VirtualHost, Tally, int]


def outcome(host: VirtualHost, tally: Tally, late: int) -> dict[str, Any]:
    """Everything counted at the end of a day."""
    by_host = sum(1 for alert in host.alerts if alert.by_host)
    return {
        **tally.as_dict(),
        "alerts": len(host.alerts),
        "alerts_by_host": by_host,
        "events": len(host.events),
        "still_scheduled": host.engine.scheduled_count(),
        "still_running": len(host.engine.running_sessions()),
        "late_actions": late,
    }


# ---------------------------------------------------------------------- counting timers


class CountingTimers(TimerQueue[Any]):
    """The engine's timer queue, recording the instant of every timer it hands out.

    The virtual host fires each timer with `now` at its deadline, so `now` is that instant.
    """

    __slots__ = ("fired",)

    def __init__(self) -> None:
        super().__init__()
        self.fired: list[datetime] = []

    def pop_due(self, now: datetime) -> tuple[TimerKind, Any] | None:
        due = super().pop_due(now)
        if due is not None:
            self.fired.append(now)
        return due


def count_timers(live: Callable[[VirtualHost], DayRun]) -> tuple[dict[str, Any], list[float]]:
    """The day again, with the engine's timers counted: the outcome and the firing instants
    (seconds after `START`)."""
    created: list[CountingTimers] = []

    def counting() -> CountingTimers:
        created.append(CountingTimers())
        return created[-1]

    original = engine_module.TimerQueue  # type: ignore[attr-defined]
    engine_module.TimerQueue = counting  # type: ignore[attr-defined,assignment]
    try:
        host = VirtualHost(now=START)
    finally:
        engine_module.TimerQueue = original  # type: ignore[attr-defined]
    day = outcome(*live(host))
    return day, [(at - START).total_seconds() for at in created[0].fired]


# ---------------------------------------------------------------------- the peer


class VirtualClock:
    """A clock for `sched.scheduler` that jumps instead of sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds


def peer_day(instants: list[float]) -> int:
    """`sched.scheduler` firing one counting action at each instant; returns how many fired."""
    clock = VirtualClock()
    scheduler = sched.scheduler(clock.time, clock.sleep)
    fired = [0]

    def fire() -> None:
        fired[0] += 1

    for instant in instants:
        scheduler.enterabs(instant, 0, fire)
    scheduler.run()
    return fired[0]


# ---------------------------------------------------------------------- rounds


@dataclass(frozen=True, slots=True)
class Rounds:
    """A day measured several times, and the peer on the same firing instants."""

    walls: list[float]
    cpus: list[float]
    counts: dict[str, Any]
    firings: int
    peer_walls: list[float]
    peer_cpus: list[float]

    @property
    def wall(self) -> float:
        """The median round's wall time (an odd number of rounds: one of them)."""
        return statistics.median_low(self.walls)

    @property
    def peer_wall(self) -> float:
        return statistics.median(self.peer_walls)


def run_rounds(live: Callable[[VirtualHost | None], DayRun], rounds: int) -> Rounds:
    """Live the day `rounds` times (each must count the same), count its timers, run the peer."""
    walls: list[float] = []
    cpus: list[float] = []
    counts: dict[str, Any] | None = None
    for _ in range(rounds):
        (host, tally, late), ours = measure(lambda: live(None))
        walls.append(ours.wall)
        cpus.append(ours.cpu)
        day = outcome(host, tally, late)
        if counts is not None and day != counts:
            raise SystemExit(f"the day is not deterministic:\n{counts}\n{day}")
        counts = day
        del host, tally
    assert counts is not None
    recount, instants = count_timers(live)
    if recount != counts:
        raise SystemExit(f"the counting run differs:\n{counts}\n{recount}")
    peer_walls: list[float] = []
    peer_cpus: list[float] = []
    for _ in range(rounds):
        fired, peer = measure(lambda: peer_day(instants))
        if fired != len(instants):
            raise SystemExit(f"the peer fired {fired} timers, not {len(instants)}")
        peer_walls.append(peer.wall)
        peer_cpus.append(peer.cpu)
    return Rounds(walls, cpus, counts, len(instants), peer_walls, peer_cpus)


def report_fields(measured: Rounds, apps: int) -> dict[str, Any]:
    """The figures every simulated day reports."""
    wall, peer_wall, firings = measured.wall, measured.peer_wall, measured.firings
    return {
        "apps": apps,
        "rounds": len(measured.walls),
        "simulated_seconds": DAY,
        "wall_seconds": wall,
        "wall_seconds_all": measured.walls,
        "cpu_seconds": measured.cpus[measured.walls.index(wall)],
        "timer_firings": firings,
        "us_per_firing": wall / firings * 1e6,
        "simulated_seconds_per_wall_second": DAY / wall,
        "app_seconds_per_wall_second": DAY * apps / wall,
        "peer_wall_seconds": peer_wall,
        "peer_wall_seconds_all": measured.peer_walls,
        "peer_cpu_seconds": statistics.median(measured.peer_cpus),
        "peer_us_per_firing": peer_wall / firings * 1e6,
        "ratio": wall / peer_wall,
        "counts": measured.counts,
    }
