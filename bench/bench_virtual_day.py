"""A day of 1,000 apps on one `VirtualHost`: sessions on the hour and alarms that ring, against
`sched.scheduler` firing the same timers at the same instants on a virtual clock.

What is measured
----------------
Two kinds of app live through 24 simulated hours (2026-01-05 00:00 to 24:00 UTC) on one
`VirtualHost`, through the public API only (`VirtualHost.app`, `ExtendedRuntimeSession`,
delegates, `app.state`, `host.advance`, `host.stop_alarm`):

* 500 mindfulness apps each start an hour-long session every other hour, at 00:00, 02:00, ...,
  22:00 plus a seeded jitter of up to a minute, and let it run to its limit: `will_expire`,
  then `did_invalidate(EXPIRED)`. That is 6,000 sessions, up to 500 running at once;
* 500 smart-alarm apps each schedule one alarm with `start_at` in the first minute of the day
  for a seeded instant between 00:10 and 23:30, then go to the background. The delegate's
  `did_start` calls `notify_user` (no repeat handler: the default 3 s repetition) and the user
  presses Stop (`host.stop_alarm`) two minutes later: 41 alerts per alarm (at 0, 3, ..., 120 s:
  the alert due at the instant of the Stop plays first), 20,500 in all.

The users' actions wait on an agenda and the host's clock moves to each with `host.advance`
(`_day.Driver`). The figure is the median wall time of five runs of the whole day in a process
pinned to one core, creating the host and the apps included (drawing the plans is not); every run
must count exactly the same sessions, alerts and delegate calls by kind and by reason.

The peer
--------
`sched.scheduler` on a virtual clock fires one counting action at each instant at which the
engine fired a timer (recorded in a sixth, instrumented run of the same day, which must count
the same), all entered up front in firing order. It is the floor for "a timer fired", not an
equivalent system: it has no sessions, delegates, events or alerts. Targets: under 1 s, and
within 10x of the peer.

Run: `python bench/bench_virtual_day.py` (one JSON object on the last line of stdout).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from _day import DAY, START, CountingDelegate, DayRun, Driver, Tally, report_fields, run_rounds
from _measure import pin_to_one_core, report
from extended_runtime import (
    App,
    ApplicationState,
    ExtendedRuntimeSession,
    HapticType,
    SessionType,
)
from extended_runtime.testing import VirtualHost

__all__ = ["DayPlan", "main", "plan_day", "run_day"]

MINDFUL_APPS = 500
ALARM_APPS = 500
SEED = 20_260_106
TARGET_SECONDS = 1.0
TARGET_RATIO = 10.0
ROUNDS = 5  # the day is run this many times; the figure is the median (a shared machine varies)

STOP_AFTER = 120.0  # the user presses Stop this long after the alarm starts
_HOUR = 3600.0
_JITTER = 60.0  # a session starts up to this long after its even hour


@dataclass(frozen=True, slots=True)
class DayPlan:
    """Every app's day: mindfulness session starts and alarm instants, seconds after midnight."""

    mindful: tuple[tuple[str, tuple[float, ...]], ...]  # (app id, session starts)
    alarms: tuple[tuple[str, float, float], ...]  # (app id, set at, rings at)

    @property
    def apps(self) -> int:
        return len(self.mindful) + len(self.alarms)


def plan_day(mindful: int = MINDFUL_APPS, alarms: int = ALARM_APPS, seed: int = SEED) -> DayPlan:
    """The day of every app, drawn from one seeded generator."""
    rng = random.Random(seed)
    sessions = tuple(
        (
            f"org.bench.mindful{i:04d}",
            tuple(hour * _HOUR + rng.uniform(0, _JITTER) for hour in range(0, 24, 2)),
        )
        for i in range(mindful)
    )
    rings = tuple(
        (f"org.bench.alarm{i:04d}", rng.uniform(0, 60), rng.uniform(600, 23.5 * _HOUR))
        for i in range(alarms)
    )
    return DayPlan(sessions, rings)


class AlarmDelegate(CountingDelegate):
    """An alarm: alert at once (default repetition); the user presses Stop two minutes later."""

    def __init__(self, driver: Driver, app: App) -> None:
        super().__init__(driver.tally)
        self.driver = driver
        self.app = app

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        super().did_start(session)
        self.tally.notify_calls += 1
        session.notify_user(HapticType.NOTIFICATION)
        self.driver.after(STOP_AFTER, self._stop)

    def _stop(self) -> None:
        self.tally.stops += 1
        self.driver.host.stop_alarm(self.app)


def _mindful(driver: Driver, app: App, starts: tuple[float, ...]) -> None:
    tally = driver.tally
    delegate = CountingDelegate(tally)

    def begin() -> None:
        tally.sessions += 1
        tally.started += 1
        ExtendedRuntimeSession(app=app, delegate=delegate).start()

    for start in starts:
        driver.at(start, begin)


def _alarm(driver: Driver, app: App, set_at: float, ring_at: float) -> None:
    tally = driver.tally

    def set_alarm() -> None:
        tally.sessions += 1
        tally.scheduled += 1
        session = ExtendedRuntimeSession(app=app, delegate=AlarmDelegate(driver, app))
        session.start_at(START + timedelta(seconds=ring_at))
        driver.set_state(app, ApplicationState.BACKGROUND)

    driver.at(set_at, set_alarm)
    driver.at(ring_at, _nothing)  # be on time for did_start


def _nothing() -> None:
    pass


def run_day(plan: DayPlan, host: VirtualHost | None = None) -> DayRun:
    """Live through the day of every app; return the host, the tally and late actions."""
    host = host if host is not None else VirtualHost(now=START)
    tally = Tally()
    driver = Driver(host, tally)
    for app_id, starts in plan.mindful:
        _mindful(driver, host.app(app_id, SessionType.MINDFULNESS), starts)
    for app_id, set_at, ring_at in plan.alarms:
        _alarm(driver, host.app(app_id, SessionType.SMART_ALARM), set_at, ring_at)
    driver.run_until(START + timedelta(seconds=DAY))
    return host, tally, driver.late


def main() -> None:
    cpu = pin_to_one_core()
    plan = plan_day()
    measured = run_rounds(lambda host: run_day(plan, host), ROUNDS)
    wall, ratio = measured.wall, measured.wall / measured.peer_wall
    report(
        {
            "benchmark": "virtual_day",
            "cpu": cpu,
            **report_fields(measured, plan.apps),
            "target_seconds": TARGET_SECONDS,
            "target_ratio": TARGET_RATIO,
            "passed": wall < TARGET_SECONDS,
            "ratio_passed": ratio < TARGET_RATIO,
        }
    )


if __name__ == "__main__":
    main()
