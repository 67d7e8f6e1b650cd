"""Bytes per scheduled session in the engine at 100,000 scheduled alarms, against `sched`.

What is measured
----------------
One scheduled alarm per app (the engine holds at most one per app), so the probe registers
100,000 smart-alarm apps on a bare `Engine` and calls `engine.start_at(session_id, app_id, when,
now)` for each, with distinct start dates spread over the next 36 hours in shuffled order. The
figure is the growth of the resident set size (`/proc/self/statm`, after `gc.collect()`) across
that loop, divided by 100,000, in a fresh process that did one warm-up alarm first (so imports
and first-use caches are not counted).

Counted: everything created in the loop and still alive after it. That is the engine's app record
and session record, the timer entry, the engine's dict entries, and also the app-id string (23
characters), the session-id string (32 hex characters, like `uuid4().hex`) and the start
`datetime`, which the caller creates and the engine keeps. The outputs `start_at` returns are
dropped at once, as a host drops them after performing them. A second figure ("engine only")
creates the ids and dates before the measured region, to separate the engine's own structures
from the caller's data. `tracemalloc` gives a cross-check of each figure, in a process of its own
(tracing costs memory itself), and a breakdown by source line.

The peer
--------
`sched.scheduler` (virtual `timefunc`/`delayfunc`) holding the same 100,000 starts: one
`enterabs(when.timestamp(), 0, action, (session_id, app_id))` per alarm, with the same ids and
dates created in the loop (`sched` takes float times, so it keeps a float, not the datetime).
It keeps no app record and checks nothing: it is the floor for "a timed callback with two ids".

The scheduler
-------------
APScheduler 3.11 `BackgroundScheduler` (started paused, its default in-memory job store) holding
the same 100,000 as `date` jobs: `add_job(action, "date", run_date=when, args=(session_id,
app_id), id=session_id)`, with the same ids and dates made in the loop. Target: our bytes per
session at most half of APScheduler's bytes per job.

Run: `python bench/bench_memory.py` (one JSON object on the last line of stdout); each probe
runs in a fresh subprocess: `python bench/bench_memory.py --probe ours rss`.
"""

from __future__ import annotations

import gc
import json
import random
import sched
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _measure import measure, pin_to_one_core, probe_requested, report, settled_rss
from extended_runtime import HapticType, SessionType
from extended_runtime._core.engine import Engine

__all__ = ["main", "warm_engine"]

SESSIONS = 100_000
TARGET_BYTES = 600
TARGET_OF_APSCHEDULER = 0.5  # our bytes per session at most this share of APScheduler's
NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
SEED = 36
_PRIME = 100_003  # > SESSIONS: i * _STRIDE % _PRIME visits distinct values in shuffled order
_STRIDE = 48_271
_SPACING = 1.29  # seconds between neighbouring start dates: all within 60 s .. 36 h ahead
_ALARM = SessionType.SMART_ALARM

KINDS = ("ours", "ours-engine-only", "peer", "apscheduler")
HOW = ("rss", "tracemalloc")


# ---------------------------------------------------------------------- the alarms


def _alarms(count: int) -> Iterator[tuple[str, str, datetime]]:
    """(app id, session id, start date) of each alarm, made as they are asked for."""
    rng = random.Random(SEED)
    for i in range(1, count + 1):
        app_id = f"org.example.alarm{i:06d}"
        session_id = f"{rng.getrandbits(128):032x}"
        when = NOW + timedelta(seconds=60 + (i * _STRIDE % _PRIME) * _SPACING)
        yield app_id, session_id, when


def warm_engine() -> Engine:
    """An engine with a history, then one scheduled alarm, so first-use costs are paid.

    The history (alarms that rang and alerted, a session sampled for CPU, an app that exited
    and came back) makes the figure that of an engine that has been serving for a while, not
    of a fresh one: per-instance costs that grow with what instances did before (as shared-key
    instance dicts do) would show here.
    """
    engine = Engine()
    ring = NOW - timedelta(hours=2)
    for n, mode in enumerate((_ALARM, SessionType.MINDFULNESS, _ALARM)):
        app_id = f"org.example.history{n}"
        engine.register_app(app_id, mode)
        if mode is _ALARM:
            engine.start_at(f"h{n}", app_id, ring, ring)
            engine.notify_user(f"h{n}", app_id, HapticType.NOTIFICATION, ring)
            engine.set_next_alert(f"h{n}", 1, 3.0, HapticType.NOTIFICATION, ring)
        else:
            engine.start(f"h{n}", app_id, ring)
        engine.observe_cpu({app_id: 1.0}, ring + timedelta(seconds=5))
        engine.app_exited(app_id, ring + timedelta(seconds=10))
        engine.app_launched(app_id, ring + timedelta(seconds=20), by_host=False)
    engine.advance(NOW)
    engine.register_app("org.example.warmup", _ALARM)
    engine.start_at("0" * 32, "org.example.warmup", NOW + timedelta(hours=1), NOW)
    return engine


def _schedule(engine: Engine, alarms: Iterator[tuple[str, str, datetime]]) -> None:
    for app_id, session_id, when in alarms:
        engine.register_app(app_id, _ALARM)
        engine.start_at(session_id, app_id, when, NOW)


class _VirtualClock:
    """`sched`'s clock, in seconds since the epoch, jumping instead of sleeping."""

    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _start_alarm(session_id: str, app_id: str) -> None:
    """The peer's action (never run here)."""


def _enter(scheduler: sched.scheduler, alarms: Iterator[tuple[str, str, datetime]]) -> None:
    for app_id, session_id, when in alarms:
        scheduler.enterabs(when.timestamp(), 0, _start_alarm, (session_id, app_id))


def _add_jobs(scheduler: Any, alarms: Iterator[tuple[str, str, datetime]]) -> None:
    for app_id, session_id, when in alarms:
        scheduler.add_job(
            _start_alarm,
            "date",
            run_date=when,
            args=(session_id, app_id),
            id=session_id,
            misfire_grace_time=None,
        )


def _apscheduler_probe() -> _Probe:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)  # jobs go to the job store, and none runs
    _add_jobs(scheduler, _alarms(1))  # warm-up, then removed
    scheduler.remove_all_jobs()
    return _Probe(
        lambda: _add_jobs(scheduler, _alarms(SESSIONS)),
        scheduler,
        lambda: len(scheduler.get_jobs()),
    )


# ---------------------------------------------------------------------- one probe


@dataclass(slots=True)
class _Probe:
    """One measured region: `fill` runs between the two readings; `holder` keeps the result."""

    fill: Callable[[], None]
    holder: object
    count: Callable[[], int]


def _make_probe(kind: str) -> _Probe:
    if kind == "apscheduler":
        return _apscheduler_probe()
    if kind == "peer":
        clock = _VirtualClock()
        scheduler = sched.scheduler(clock.time, clock.sleep)
        _enter(scheduler, _alarms(1))  # warm-up, then emptied
        scheduler.cancel(scheduler.queue[0])
        return _Probe(
            lambda: _enter(scheduler, _alarms(SESSIONS)), scheduler, lambda: len(scheduler.queue)
        )
    engine = warm_engine()
    if kind == "ours-engine-only":
        made = list(_alarms(SESSIONS))  # ids and dates made before the measured region
        return _Probe(lambda: _schedule(engine, iter(made)), engine, engine.scheduled_count)
    return _Probe(lambda: _schedule(engine, _alarms(SESSIONS)), engine, engine.scheduled_count)


def probe(kind: str, how: str) -> dict[str, Any]:
    """Measure one kind one way, in this (fresh) process."""
    pin_to_one_core()
    subject = _make_probe(kind)
    warm_up = 0 if kind in ("peer", "apscheduler") else 1
    gc.collect()
    if how == "rss":
        before = settled_rss()
        _, elapsed = measure(subject.fill)
        grown = settled_rss() - before
        held = subject.count() - warm_up
        return {"bytes": grown, "per_session": grown / held, "held": held, "wall": elapsed.wall}
    tracemalloc.start(1)
    start = tracemalloc.take_snapshot()
    subject.fill()
    gc.collect()
    end = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = subject.count() - warm_up
    by_line = end.compare_to(start, "lineno")
    total = sum(line.size_diff for line in by_line)
    result: dict[str, Any] = {
        "bytes": total,
        "per_session": total / held,
        "held": held,
        "lines": [
            {
                "where": _where(line.traceback[0].filename, line.traceback[0].lineno),
                "per_session": line.size_diff / held,
                "blocks_per_session": line.count_diff / held,
            }
            for line in by_line
            if abs(line.size_diff) >= held  # a byte per session or more
        ],
    }
    if isinstance(subject.holder, Engine):
        result["sizes"] = _sizes(subject.holder, held)
    return result


def _where(filename: str, lineno: int) -> str:
    """`path:line: source` for a traceback frame, the path from the package or bench folder."""
    path = Path(filename)
    if not path.is_file():  # generated code: here, the namedtuple `sched.Event`
        return f"{filename}:{lineno} (a namedtuple's generated __new__)"
    source = path.read_text(encoding="utf-8").splitlines()[lineno - 1].strip()
    parts = path.parts
    short = "/".join(parts[parts.index("src") + 1 :] if "src" in parts else parts[-2:])
    return f"{short}:{lineno}: {source}"


def _sizes(engine: Engine, held: int) -> dict[str, float]:
    """`sys.getsizeof` of each structure behind one scheduled session (GC header included).

    A waiting session is held by its app record (`session_id`, `start_date`), indexed by session
    id in `engine._waiting`, and the record itself sits in the list of starts (a list of blocks).
    """
    app_id, app = next(reversed(engine._apps.items()))
    assert app.session_id is not None and app.start_date is not None
    blocks: list[list[Any]] = engine._timers._starts._blocks
    return {
        "app record with its waiting session (LiveApp)": sys.getsizeof(app),
        "app id str": sys.getsizeof(app_id),
        "session id str": sys.getsizeof(app.session_id),
        "start datetime": sys.getsizeof(app.start_date),
        "engine._apps dict, per entry": sys.getsizeof(engine._apps) / held,
        "engine._waiting dict, per entry": sys.getsizeof(engine._waiting) / held,
        "list of starts, per entry": (sys.getsizeof(blocks) + sum(map(sys.getsizeof, blocks)))
        / held,
    }


# ---------------------------------------------------------------------- all probes


def _run_probe(kind: str, how: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", kind, how]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe {kind} {how} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if probe_requested(__doc__.splitlines()[0], KINDS, HOW, probe):
        return
    ours = _run_probe("ours", "rss")
    engine_only = _run_probe("ours-engine-only", "rss")
    peer = _run_probe("peer", "rss")
    ours_tm = _run_probe("ours", "tracemalloc")
    engine_only_tm = _run_probe("ours-engine-only", "tracemalloc")
    peer_tm = _run_probe("peer", "tracemalloc")
    aps = _run_probe("apscheduler", "rss")
    per_session = ours["per_session"]
    of_apscheduler = per_session / aps["per_session"]
    report(
        {
            "benchmark": "engine_memory",
            "sessions": ours["held"],
            "bytes_per_session": per_session,
            "tracemalloc_bytes_per_session": ours_tm["per_session"],
            "engine_only_bytes_per_session": engine_only["per_session"],
            "engine_only_tracemalloc_bytes_per_session": engine_only_tm["per_session"],
            "peer_bytes_per_session": peer["per_session"],
            "peer_tracemalloc_bytes_per_session": peer_tm["per_session"],
            "ratio": per_session / peer["per_session"],
            "apscheduler_bytes_per_job": aps["per_session"],
            "apscheduler_fill_wall_seconds": aps["wall"],
            "ratio_apscheduler": of_apscheduler,
            "target_of_apscheduler": TARGET_OF_APSCHEDULER,
            "apscheduler_version": _version("apscheduler"),
            "target_bytes": TARGET_BYTES,
            "passed": per_session < TARGET_BYTES and of_apscheduler <= TARGET_OF_APSCHEDULER,
            "fill_wall_seconds": ours["wall"],
            "peer_fill_wall_seconds": peer["wall"],
            "breakdown": ours_tm["lines"],
            "sizes": ours_tm["sizes"],
            "peer_breakdown": peer_tm["lines"],
        }
    )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
