"""10,000 smart alarms due over 10 s on one `EmbeddedHost`: how late does `did_start` arrive,
against APScheduler and the event loop's own timer?

What is measured
----------------
One `EmbeddedHost()` (real clock, the backends this machine gets by default, its own timer,
effect and delegate threads) serves 10,000 smart-alarm apps, `host.app("org.bench.alarmNNNNN",
SessionType.SMART_ALARM)`. Each app schedules one session with `start_at(t0 + i * 1 ms)`, so the
alarms come due one per millisecond for 10 s, and `t0` is about 2 s after the setup ends (the
margin is reported, and a run whose setup overran it is refused). Each session's delegate records
its *lateness* in `did_start`: the wall clock minus the start date it asked for. That is
everything between the instant and the app hearing of it: the timer thread's wake-up on its
timerfd, the engine's `advance`, the outputs handled under the host's lock, and the delegate
thread picking the call up, while the effect workers perform the audit records, the wake alarm
and the CPU readings of every start on their own threads. Reported: p50, p99 and max over the
10,000. After the last one the host is closed (outside the measurement).

The peers, at the same instants, each in its own fresh process
--------------------------------------------------------------
* `apscheduler`: APScheduler 3.11 `AsyncIOScheduler`, one `date` job per alarm (a coroutine
  function, so it runs on the loop rather than in a thread pool; `misfire_grace_time=None`, so a
  late job still runs and is counted). The scheduler most Python programs would reach for.
* `call_at`: a bare `loop.call_at` per alarm on an asyncio loop, the instant converted to the
  loop's clock once: the floor for "a callback ran at its time on an event loop" (its waits are
  `epoll` timeouts, rounded up to the millisecond).
* `sched`: `sched.scheduler(time.time, time.sleep)` in one thread: the floor for a thread that
  sleeps until each instant.

Targets: our p99 at most half of APScheduler's; our p50 at most the `call_at` floor's; our p99
under 5 ms.

Each kind runs three times, interleaved, each run in a fresh process pinned to one CPU; each
figure is the median of the three runs' figures.

Run: `python bench/bench_embedded_alarms.py` (one JSON object on the last line of stdout); a
single run: `python bench/bench_embedded_alarms.py --probe {ours,apscheduler,call_at,sched}
{pinned,unpinned}`.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _measure import pin_to_one_core, probe_requested, realtime_scheduler, report
from extended_runtime import (
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    SessionType,
)
from extended_runtime._core.clock import SystemClock

__all__ = [
    "Lateness",
    "main",
    "run_apscheduler",
    "run_call_at",
    "run_ours",
    "run_sched",
]

ALARMS = 10_000
SPACING = 0.001  # seconds between neighbouring start dates
LEAD = 2.0  # seconds from the end of the setup to the first start date, roughly
MIN_MARGIN = 0.25  # a setup that left less than this before the first alarm is refused
_SCHEDULE_ALLOWANCE = 50e-6  # seconds per start_at() call set aside for the setup
TARGET_P99_MS = 5.0
TARGET_P99_OF_APSCHEDULER = 0.5  # our p99 at most this share of APScheduler's
TARGET_MODE = "pinned"
ROUNDS = 3  # runs of each kind, interleaved; each figure is the median run's
KINDS = ("ours", "apscheduler", "call_at", "sched")
MODES = ("pinned", "unpinned")

_CLOCK = SystemClock()


@dataclass(frozen=True, slots=True)
class Lateness:
    """How late each callback ran (seconds), and how long before the first one the setup ended."""

    samples: list[float]
    margin: float

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        return {
            "count": len(ordered),
            "p50_ms": cuts[49] * 1e3,
            "p99_ms": cuts[98] * 1e3,
            "max_ms": ordered[-1] * 1e3,
            "min_ms": ordered[0] * 1e3,
            "margin_s": self.margin,
        }


class _Recorder:
    """Collects latenesses from whichever thread reports them; says when all have come."""

    def __init__(self, expected: int) -> None:
        self.samples: list[float] = []
        self._expected = expected
        self._lock = threading.Lock()
        self.done = threading.Event()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.samples.append(seconds)
            if len(self.samples) >= self._expected:
                self.done.set()


class LatenessDelegate(ExtendedRuntimeSessionDelegate):
    """Records how long after its start date `did_start` arrived."""

    def __init__(self, recorder: _Recorder, when: datetime) -> None:
        self.recorder = recorder
        self.when = when

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.recorder.add((_CLOCK.now() - self.when).total_seconds())


def _first_start(count: int, lead: float) -> datetime:
    """Where the first alarm goes: `lead` after the setup that follows is expected to end."""
    return _CLOCK.now() + timedelta(seconds=lead + count * _SCHEDULE_ALLOWANCE)


def _wait_for(recorder: _Recorder, count: int, margin: float) -> None:
    if margin < MIN_MARGIN:
        raise SystemExit(f"the setup ended {margin:.3f} s before the first alarm; raise LEAD")
    if not recorder.done.wait(margin + count * SPACING + 30.0):
        raise SystemExit(f"only {len(recorder.samples)} of {count} callbacks ran")


def run_ours(count: int = ALARMS, spacing: float = SPACING, lead: float = LEAD) -> Lateness:
    """`count` alarms on one embedded host, `spacing` seconds apart; lateness of `did_start`."""
    recorder = _Recorder(count)
    host = EmbeddedHost()
    try:
        apps = [host.app(f"org.bench.alarm{i:05d}", SessionType.SMART_ALARM) for i in range(count)]
        t0 = _first_start(count, lead)
        whens = [t0 + timedelta(seconds=i * spacing) for i in range(count)]
        for app, when in zip(apps, whens, strict=True):
            session = ExtendedRuntimeSession(app=app, delegate=LatenessDelegate(recorder, when))
            session.start_at(when)
        host.settle(10.0)
        margin = (t0 - _CLOCK.now()).total_seconds()
        _wait_for(recorder, count, margin)
    finally:
        _close_quietly(host)
    return Lateness(recorder.samples, margin)


def _close_quietly(host: EmbeddedHost) -> None:
    """Close the host; its sessions end with logged warnings, not wanted on stderr here."""
    logger = logging.getLogger("extended_runtime")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        host.close(30.0)
    finally:
        logger.setLevel(level)


def run_sched(count: int = ALARMS, spacing: float = SPACING, lead: float = LEAD) -> Lateness:
    """`sched.scheduler(time.time, time.sleep)` in one thread, callbacks at the same spacing."""
    recorder = _Recorder(count)
    scheduler, clock = realtime_scheduler()

    def fire(when: float) -> None:
        recorder.add(clock() - when)

    t0 = clock() + lead + count * _SCHEDULE_ALLOWANCE
    for i in range(count):
        when = t0 + i * spacing
        scheduler.enterabs(when, 0, fire, (when,))
    margin = t0 - clock()
    thread = threading.Thread(target=scheduler.run, name="sched-peer")
    thread.start()
    _wait_for(recorder, count, margin)
    thread.join()
    return Lateness(recorder.samples, margin)


def run_call_at(count: int = ALARMS, spacing: float = SPACING, lead: float = LEAD) -> Lateness:
    """A bare `loop.call_at` per instant on an asyncio loop."""
    import asyncio

    wall = realtime_scheduler()[1]
    samples: list[float] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def fire(when: float) -> None:
            samples.append(wall() - when)
            if len(samples) == count:
                done.set_result(None)

        t0 = wall() + lead + count * _SCHEDULE_ALLOWANCE
        offset = loop.time() - wall()  # the loop's clock, read against the wall clock once
        for i in range(count):
            when = t0 + i * spacing
            loop.call_at(when + offset, fire, when)
        margin = t0 - wall()
        await asyncio.wait_for(done, margin + count * spacing + 30.0)
        return margin

    margin = asyncio.run(main())
    return Lateness(samples, margin)


def run_apscheduler(count: int = ALARMS, spacing: float = SPACING, lead: float = LEAD) -> Lateness:
    """APScheduler 3.11 `AsyncIOScheduler`: a `date` job per instant, a coroutine each."""
    import asyncio

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    samples: list[float] = []

    async def main() -> float:
        done = asyncio.get_running_loop().create_future()

        async def fire(when: datetime) -> None:
            samples.append((_CLOCK.now() - when).total_seconds())
            if len(samples) == count and not done.done():
                done.set_result(None)

        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.start()
        # APScheduler's add_job costs far more than ours: leave it the time it needs
        t0 = _first_start(count, lead + count * 200e-6)
        for i in range(count):
            when = t0 + timedelta(seconds=i * spacing)
            scheduler.add_job(fire, "date", run_date=when, args=(when,), misfire_grace_time=None)
        margin = (t0 - _CLOCK.now()).total_seconds()
        if margin < MIN_MARGIN:
            raise SystemExit(f"the setup ended {margin:.3f} s before the first alarm")
        await asyncio.wait_for(done, margin + count * spacing + 60.0)
        scheduler.shutdown(wait=False)
        return margin

    margin = asyncio.run(main())
    return Lateness(samples, margin)


# ---------------------------------------------------------------------- probes


_RUNS: dict[str, Callable[[], Lateness]] = {
    "ours": run_ours,
    "apscheduler": run_apscheduler,
    "call_at": run_call_at,
    "sched": run_sched,
}


def probe(kind: str, mode: str) -> dict[str, Any]:
    """One run of `kind`, in this (fresh) process, pinned to one CPU or not."""
    cpu = pin_to_one_core() if mode == "pinned" else None
    result = _RUNS[kind]().summary()
    result["cpu"] = cpu
    return result


def _run_probe(kind: str, mode: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", kind, mode]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe {kind} {mode} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs, with every run's p99 kept."""
    figures = ("p50_ms", "p99_ms", "max_ms", "min_ms", "margin_s")
    merged: dict[str, Any] = {key: statistics.median(run[key] for run in runs) for key in figures}
    merged["p99_ms_all"] = [run["p99_ms"] for run in runs]
    merged["count"] = runs[0]["count"]
    merged["cpu"] = runs[0]["cpu"]
    return merged


def main() -> None:
    if probe_requested(__doc__.splitlines()[0], KINDS, MODES, probe):
        return
    raw: dict[str, list[dict[str, Any]]] = {}
    for _ in range(ROUNDS):
        for kind in KINDS:
            raw.setdefault(kind, []).append(_run_probe(kind, TARGET_MODE))
    runs = {kind: _median_run(raw[kind]) for kind in KINDS}
    ours, aps, floor = runs["ours"], runs["apscheduler"], runs["call_at"]
    of_apscheduler = ours["p99_ms"] / aps["p99_ms"]
    p50_of_floor = ours["p50_ms"] / floor["p50_ms"]
    report(
        {
            "benchmark": "embedded_alarms",
            "alarms": ALARMS,
            "spacing_s": SPACING,
            "rounds": ROUNDS,
            "mode": TARGET_MODE,
            "runs": runs,
            "versions": _versions(),
            "target_p99_ms": TARGET_P99_MS,
            "target_p99_of_apscheduler": TARGET_P99_OF_APSCHEDULER,
            "ratio_p99_apscheduler": of_apscheduler,
            "ratio_p50_call_at": p50_of_floor,
            "ratio_p99_sched": ours["p99_ms"] / runs["sched"]["p99_ms"],
            "passed": ours["p99_ms"] < TARGET_P99_MS
            and of_apscheduler <= TARGET_P99_OF_APSCHEDULER
            and p50_of_floor <= 1.0,
        }
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"apscheduler": version("apscheduler")}


if __name__ == "__main__":
    main()
