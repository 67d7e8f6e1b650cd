"""The mixed day: 1,000 apps of every type on one `VirtualHost`, against `sched` on a virtual clock.

What is measured
----------------
Each of 1,000 apps lives through 24 simulated hours (2026-01-05 00:00 to 24:00 UTC) on one
`VirtualHost`, through the public API only: `VirtualHost.app`, `ExtendedRuntimeSession`,
delegates, `app.state`, `host.advance`, `host.stop_alarm` and `host.set_cpu_load`. What each app
does is drawn once from a seeded `random.Random`, before the clock starts, so every run does the
same work:

* smart-alarm apps (30 %) schedule the morning alarm after midnight with `start_at` while ACTIVE,
  then go BACKGROUND; 5 % cancel it and set it again. At the alarm, `did_start` waits for the
  lightest-sleep minute (0-10 min), then calls `notify_user` with a repeat handler (3 s); the
  user presses Stop after 20-60 s, or sleeps through (10 %) and the session expires. 40 % take a
  nap alarm in the afternoon; all set tomorrow's alarm in the evening (still scheduled at 24:00);
* mindfulness apps (25 %) run 1-4 sessions between 07:00 and 23:00: most are invalidated after
  3-20 min, some end when the user leaves the app (RESIGNED_FRONTMOST), some run to expiry
  (will_expire, then EXPIRED) with the user looking away (INACTIVE);
* self-care apps (20 %) brush teeth morning and evening (2-3 min) and wash hands (20-40 s); some
  sessions are forgotten and expire after 10 min;
* physical-therapy apps (25 %) run 1-2 sessions in the background to expiry (1 h) at a modest
  CPU load (0.1-0.3 cores);
* about 2 % of the mindfulness and physical-therapy sessions go over their CPU budget
  (`set_cpu_load`) and end with EXCEEDED_RESOURCE_LIMITS.

The driver keeps the users' actions in an agenda and moves the host's clock to each one with
`host.advance`; `did_start` of an alarm adds its own actions to that agenda. The figure is the
median wall time of five runs of the whole day (creating the host and the apps included, drawing
the plans not) in a process pinned to one core; every run must count exactly the same things.

The peer
--------
`sched.scheduler` with a virtual `timefunc`/`delayfunc` fires the same number of timers at the
same virtual instants as the engine did (recorded in a sixth, instrumented run of the same day,
which must reproduce every count), all entered up front in firing order; its action only counts.
It is the floor for "a timer fired", not an equivalent system: it has no sessions, delegates,
events or alerts. Its figure is also the median of five runs.

The agenda, the counting, the rounds and the peer are shared with the other simulated day
(`_day.py`).

Run: `python bench/bench_mixed_day.py` (one JSON object on the last line of stdout).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from _day import DAY, START, CountingDelegate, DayRun, Driver, Tally, report_fields, run_rounds
from _measure import pin_to_one_core, report
from extended_runtime import (
    App,
    ApplicationState,
    ExtendedRuntimeSession,
    HapticType,
    SessionState,
    SessionType,
)
from extended_runtime.testing import VirtualHost

__all__ = ["main", "plan_apps", "run_day"]

APPS = 1_000
SEED = 20_260_105
TARGET_SECONDS = 2.0
ROUNDS = 5  # the day is run this many times; the figure is the median (a shared machine varies)

_HOUR = 3600.0
_MIN = 60.0
_ACTIVE = ApplicationState.ACTIVE
_INACTIVE = ApplicationState.INACTIVE
_BACKGROUND = ApplicationState.BACKGROUND

# ---------------------------------------------------------------------- the workload, as data


class Ending(Enum):
    """How a started (not scheduled) session ends."""

    INVALIDATE = "invalidate"  # the app calls invalidate() when the user is done
    RESIGN = "resign"  # the user leaves the app: a frontmost session ends
    EXPIRE = "expire"  # nobody ends it: will_expire, then EXPIRED


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """One `start()` session. Times are seconds after midnight or after `start`."""

    start: float
    ending: Ending
    end_after: float  # INVALIDATE / RESIGN: when the app or the user ends it
    background_after: float  # when the app goes BACKGROUND
    cpu_load: float = 0.0  # cores used from `cpu_after` on (0: idle)
    cpu_after: float = 0.0
    inactive_after: float | None = None  # the user looks away (INACTIVE keeps it running)


@dataclass(frozen=True, slots=True)
class AlarmPlan:
    """One `start_at()` alarm. Times are seconds after midnight, or after the alarm starts."""

    set_at: float  # the app is ACTIVE and schedules the alarm
    ring_at: float  # the alarm's start date
    smart_wait: float  # did_start waits this long (lightest-sleep minute) before alerting
    stop_after: float | None  # Stop pressed this long after the first alert; None: sleeps on
    cancel_at: float | None = None  # the user cancels it at this time (it never rings)


Step = SessionPlan | AlarmPlan


@dataclass(frozen=True, slots=True)
class AppPlan:
    """One app and its day."""

    app_id: str
    mode: SessionType
    steps: tuple[Step, ...]


def plan_apps(count: int = APPS, seed: int = SEED) -> list[AppPlan]:
    """The day of `count` apps, drawn from one seeded generator."""
    rng = random.Random(seed)
    kinds = (
        SessionType.SMART_ALARM,
        SessionType.MINDFULNESS,
        SessionType.SELF_CARE,
        SessionType.PHYSICAL_THERAPY,
    )
    plans: list[AppPlan] = []
    for index in range(count):
        mode = rng.choices(kinds, weights=(30, 25, 20, 25))[0]
        app_id = f"org.example.{mode.value}.app{index:04d}"
        if mode is SessionType.SMART_ALARM:
            steps: list[Step] = _alarm_day(rng)
        elif mode is SessionType.MINDFULNESS:
            steps = list(_mindfulness_day(rng))
        elif mode is SessionType.SELF_CARE:
            steps = list(_self_care_day(rng))
        else:
            steps = list(_therapy_day(rng))
        plans.append(AppPlan(app_id, mode, tuple(steps)))
    return plans


def _alarm(rng: random.Random, set_at: float, ring_at: float) -> AlarmPlan:
    stop_after = rng.uniform(20, 60) if rng.random() < 0.9 else None
    return AlarmPlan(set_at, ring_at, rng.uniform(0, 10 * _MIN), stop_after)


def _alarm_day(rng: random.Random) -> list[Step]:
    steps: list[Step] = []
    set_at = rng.uniform(0, 30 * _MIN)
    ring_at = rng.uniform(5.5 * _HOUR, 8 * _HOUR)
    if rng.random() < 0.05:  # set, then cancelled and set 15 min later
        cancel_at = set_at + rng.uniform(10 * _MIN, 60 * _MIN)
        steps.append(AlarmPlan(set_at, ring_at, 0.0, None, cancel_at=cancel_at))
        set_at, ring_at = cancel_at + 1, ring_at + 15 * _MIN
    steps.append(_alarm(rng, set_at, ring_at))
    if rng.random() < 0.4:  # an afternoon nap
        nap = rng.uniform(13 * _HOUR, 15 * _HOUR)
        steps.append(_alarm(rng, nap, nap + rng.uniform(20 * _MIN, 40 * _MIN)))
    evening = rng.uniform(22 * _HOUR, 23.5 * _HOUR)  # tomorrow's alarm, still scheduled at 24:00
    steps.append(_alarm(rng, evening, DAY + rng.uniform(6 * _HOUR, 8 * _HOUR)))
    return steps


def _frontmost(rng: random.Random, start: float, limit: float, length: float) -> SessionPlan:
    """A frontmost session: invalidated after `length`, resigned, or left to expire."""
    roll = rng.random()
    if roll < 0.75:
        return SessionPlan(start, Ending.INVALIDATE, length, length + rng.uniform(5, 60))
    if roll < 0.85:
        return SessionPlan(start, Ending.RESIGN, length, length)
    return SessionPlan(
        start, Ending.EXPIRE, limit, limit + 30, inactive_after=rng.uniform(60, limit / 2)
    )


def _with_hog(rng: random.Random, plan: SessionPlan) -> SessionPlan:
    """Now and then a session goes over its CPU budget (1.5 cores) a few minutes in."""
    if rng.random() >= 0.02:
        return plan
    until = plan.end_after if plan.ending is not Ending.EXPIRE else plan.end_after - 120
    cpu_after = rng.uniform(0, max(1.0, until - 60))
    return SessionPlan(
        plan.start, plan.ending, plan.end_after, plan.background_after,
        1.5, cpu_after, plan.inactive_after,
    )  # fmt: skip


def _mindfulness_day(rng: random.Random) -> list[SessionPlan]:
    limit = _HOUR
    steps: list[SessionPlan] = []
    t = 7 * _HOUR
    for _ in range(rng.randint(1, 4)):
        t += rng.uniform(10 * _MIN, 3 * _HOUR)
        if t > 23 * _HOUR:
            break
        plan = _with_hog(rng, _frontmost(rng, t, limit, rng.uniform(3 * _MIN, 20 * _MIN)))
        steps.append(plan)
        t += limit + 2 * _MIN
    return steps


def _self_care_day(rng: random.Random) -> list[SessionPlan]:
    limit = 10 * _MIN
    starts = [rng.uniform(6.5 * _HOUR, 8 * _HOUR), rng.uniform(21 * _HOUR, 23 * _HOUR)]
    starts += [rng.uniform(9 * _HOUR, 20 * _HOUR) for _ in range(rng.randint(0, 2))]
    steps: list[SessionPlan] = []
    last_end = -_HOUR
    for start in sorted(starts):
        if start < last_end:
            continue
        brushing = start in starts[:2]
        length = rng.uniform(120, 180) if brushing else rng.uniform(20, 40)
        roll = rng.random()
        if roll < 0.1:
            plan = SessionPlan(start, Ending.EXPIRE, limit, limit + 30)
        else:
            plan = SessionPlan(start, Ending.INVALIDATE, length, length + rng.uniform(5, 30))
        steps.append(plan)
        last_end = start + limit + 2 * _MIN
    return steps


def _therapy_day(rng: random.Random) -> list[SessionPlan]:
    limit = _HOUR
    steps: list[SessionPlan] = []
    t = 9 * _HOUR
    for _ in range(rng.randint(1, 2)):
        t += rng.uniform(0, 4 * _HOUR)
        load = rng.uniform(0.1, 0.3)
        plan = SessionPlan(t, Ending.EXPIRE, limit, rng.uniform(60, 180), load, rng.uniform(0, 120))
        steps.append(_with_hog(rng, plan))
        t += limit + 5 * _MIN
    return steps


# ---------------------------------------------------------------------- the day, driven


class AlarmDelegate(CountingDelegate):
    """A smart alarm: on `did_start`, wait for the lightest-sleep minute, then alert."""

    def __init__(self, driver: Driver, app: App, plan: AlarmPlan) -> None:
        super().__init__(driver.tally)
        self.driver = driver
        self.app = app
        self.plan = plan

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        super().did_start(session)
        self.driver.after(self.plan.smart_wait, lambda: self._alert(session))

    def _alert(self, session: ExtendedRuntimeSession) -> None:
        if session.state is not SessionState.RUNNING:
            return
        self.tally.notify_calls += 1
        session.notify_user(HapticType.NOTIFICATION, self._repeat)
        stop_after = self.plan.stop_after
        if stop_after is not None:
            self.driver.after(stop_after, self._stop)

    def _repeat(self, played: HapticType) -> float:
        self.tally.repeat_calls += 1
        return 3.0

    def _stop(self) -> None:
        self.tally.stops += 1
        self.driver.host.stop_alarm(self.app)


def _schedule_alarm(driver: Driver, app: App, plan: AlarmPlan) -> None:
    tally = driver.tally

    def set_alarm() -> None:
        driver.set_state(app, _ACTIVE)
        session = ExtendedRuntimeSession(app=app, delegate=AlarmDelegate(driver, app, plan))
        tally.sessions += 1
        tally.scheduled += 1
        session.start_at(START + timedelta(seconds=plan.ring_at))
        driver.after(20, lambda: driver.set_state(app, _BACKGROUND))
        if plan.cancel_at is not None:
            driver.at(plan.cancel_at, lambda: cancel(session))
        elif plan.ring_at < DAY:
            driver.at(plan.ring_at, _nothing)  # be on time for did_start

    def cancel(session: ExtendedRuntimeSession) -> None:
        driver.set_state(app, _ACTIVE)
        tally.cancelled += 1
        session.invalidate()
        driver.set_state(app, _BACKGROUND)

    driver.at(plan.set_at, set_alarm)


def _schedule_session(driver: Driver, app: App, plan: SessionPlan) -> None:
    host, tally = driver.host, driver.tally

    def begin() -> None:
        driver.set_state(app, _ACTIVE)
        session = ExtendedRuntimeSession(app=app, delegate=CountingDelegate(tally))
        tally.sessions += 1
        tally.started += 1
        session.start()
        if plan.cpu_load:
            driver.after(plan.cpu_after, lambda: host.set_cpu_load(app, plan.cpu_load))
        if plan.inactive_after is not None:
            driver.after(plan.inactive_after, lambda: driver.set_state(app, _INACTIVE))
        if plan.ending is Ending.INVALIDATE:
            driver.after(plan.end_after, session.invalidate)
        driver.after(plan.background_after, lambda: driver.set_state(app, _BACKGROUND))
        done = max(plan.end_after, plan.background_after) + 1
        if plan.cpu_load:
            driver.after(done, lambda: host.set_cpu_load(app, 0.0))

    driver.at(plan.start, begin)


def _nothing() -> None:
    pass


def run_day(plans: list[AppPlan], host: VirtualHost | None = None) -> DayRun:
    """Live through the day of every app; return the host, the tally and late actions."""
    host = host if host is not None else VirtualHost(now=START)
    tally = Tally()
    driver = Driver(host, tally)
    for plan in plans:
        app = host.app(plan.app_id, plan.mode, state=_BACKGROUND)
        for step in plan.steps:
            if isinstance(step, AlarmPlan):
                _schedule_alarm(driver, app, step)
            else:
                _schedule_session(driver, app, step)
    driver.run_until(START + timedelta(seconds=DAY))
    return host, tally, driver.late


# ---------------------------------------------------------------------- main


def main() -> None:
    cpu = pin_to_one_core()
    plans = plan_apps()
    measured = run_rounds(lambda host: run_day(plans, host), ROUNDS)
    wall = measured.wall
    report(
        {
            "benchmark": "mixed_day",
            "cpu": cpu,
            **report_fields(measured, len(plans)),
            "target_seconds": TARGET_SECONDS,
            "passed": wall < TARGET_SECONDS,
        }
    )


if __name__ == "__main__":
    main()
