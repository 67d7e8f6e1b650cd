"""After 100,000 sessions started and invalidated, the engine holds nothing of them.

What is measured
----------------
An ended session leaves the engine at once and its timers are cancelled, and cancelled timers
are pruned when they outnumber live ones (`extended_runtime._core.live`, `timers`), so memory
should follow live sessions, not the sessions there ever were. Two loops check it on a bare
`Engine` (CPU readings POLLED, as in the embedded host), warmed first exactly as for the
per-session memory figure (`bench_memory.warm_engine`: a history, then one scheduled alarm that
stays), with 1,000 apps registered and 1,000 pairs done before the measured region:

* `start`: 1,000 mindfulness apps x 100 rounds of `start(session_id, app_id, now)` then
  `invalidate(session_id, app_id, now)`: each session runs (expiry, warning and CPU metering
  armed) and ends at once;
* `start_at`: 1,000 smart-alarm apps x 100 rounds of `start_at(session_id, app_id, when, now)`
  (a start date 1-2 h ahead) then `invalidate`: scheduled, then cancelled, which exercises the
  heap of starts and its pruning.

The clock moves one second per round (`advance(now)` each round); outputs are dropped, as a host
drops them once performed; session ids are 32 hex characters, like `uuid4().hex`. After the loop
(and `gc.collect()`) the figures are what the engine holds compared with before it: `LiveSession`
and `Run` instances alive (a census of `gc.get_objects()`), `engine.live_sessions()`, and
`engine.timer_entries` (entries in the timer heaps, cancelled ones not yet pruned included), and
the growth of the resident set size over the loop, per session (it should be about zero). The
target is no session held.

The peer
--------
`sched.scheduler` (virtual clock) with the same 100,000 pairs: `enterabs(when, 0, action,
(session_id, app_id))` then `cancel(event)`. It too should hold nothing; its RSS growth per pair
and time per pair are reported beside ours.

Run: `python bench/bench_churn.py` (one JSON object on the last line of stdout); a single loop:
`python bench/bench_churn.py --probe {start,start_at,peer}`.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sched
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _measure import measure, pin_to_one_core, report, settled_rss
from bench_memory import warm_engine
from extended_runtime import SessionType
from extended_runtime._core.engine import Engine
from extended_runtime._core.live import LiveSession, Run

__all__ = ["census", "churn", "main"]

APPS = 1_000
ROUNDS = 100  # sessions per app: APPS * ROUNDS pairs in the measured loop
WARM_ROUNDS = 1  # rounds done before the measured region
NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
SEED = 100_000
TARGET_HELD = 0
KINDS = ("start", "start_at", "peer")

_MODES = {"start": SessionType.MINDFULNESS, "start_at": SessionType.SMART_ALARM}


# ---------------------------------------------------------------------- ours


def _ids(rng: random.Random, count: int) -> list[str]:
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


def register(engine: Engine, kind: str, apps: int = APPS) -> list[str]:
    """Register the loop's apps (ACTIVE) and return their ids."""
    app_ids = [f"org.bench.{kind.replace('_', '-')}{i:04d}" for i in range(apps)]
    for app_id in app_ids:
        engine.register_app(app_id, _MODES[kind])
    return app_ids


def churn(engine: Engine, kind: str, app_ids: list[str], rounds: int, first: int = 0) -> int:
    """`rounds` rounds of one pair per app, from round `first`; returns the pairs done."""
    rng = random.Random(SEED + first)
    pairs = 0
    for r in range(first, first + rounds):
        now = NOW + timedelta(seconds=r)
        engine.advance(now)
        for app_id, session_id in zip(app_ids, _ids(rng, len(app_ids)), strict=True):
            if kind == "start":
                engine.start(session_id, app_id, now)
            else:
                when = now + timedelta(hours=1, seconds=rng.random() * 3600)
                engine.start_at(session_id, app_id, when, now)
            engine.invalidate(session_id, app_id, now)
            pairs += 1
    return pairs


def census(engine: Engine) -> dict[str, int]:
    """What the engine holds: live records counted on the heap, and its own counts."""
    gc.collect()
    sessions = runs = 0
    for obj in gc.get_objects():
        kind = type(obj)
        if kind is LiveSession:
            sessions += 1
        elif kind is Run:
            runs += 1
    return {
        "live_session_objects": sessions,
        "run_objects": runs,
        "live_sessions": engine.live_sessions(),
        "scheduled": engine.scheduled_count(),
        "running": len(engine.running_sessions()),
        "timer_entries": engine.timer_entries,
    }


def probe_ours(kind: str) -> dict[str, Any]:
    """One loop on a warmed engine: what it holds before and after, and the RSS growth."""
    engine = warm_engine()
    app_ids = register(engine, kind)
    churn(engine, kind, app_ids, WARM_ROUNDS)
    before = census(engine)
    rss0 = settled_rss()
    pairs, elapsed = measure(lambda: churn(engine, kind, app_ids, ROUNDS, WARM_ROUNDS))
    grown = settled_rss() - rss0
    after = census(engine)
    held = {key: after[key] - before[key] for key in after}
    return {
        "pairs": pairs,
        "before": before,
        "after": after,
        "held": held,
        "rss_growth_bytes": grown,
        "rss_bytes_per_session": grown / pairs,
        "us_per_pair": elapsed.wall / pairs * 1e6,
    }


# ---------------------------------------------------------------------- the peer


def _action(session_id: str, app_id: str) -> None:
    """The peer's action (never run here)."""


def _peer_churn(scheduler: sched.scheduler, rounds: int, first: int = 0) -> int:
    rng = random.Random(SEED + first)
    pairs = 0
    for r in range(first, first + rounds):
        base = NOW.timestamp() + r
        for i, session_id in enumerate(_ids(rng, APPS)):
            when = base + 3600 + rng.random() * 3600
            event = scheduler.enterabs(when, 0, _action, (session_id, f"org.bench.peer{i:04d}"))
            scheduler.cancel(event)
            pairs += 1
    return pairs


def probe_peer() -> dict[str, Any]:
    """The same pairs entered into and cancelled from `sched.scheduler`."""
    clock = [NOW.timestamp()]
    scheduler = sched.scheduler(lambda: clock[0], lambda seconds: None)
    _peer_churn(scheduler, WARM_ROUNDS)
    held_before = len(scheduler.queue)
    rss0 = settled_rss()
    pairs, elapsed = measure(lambda: _peer_churn(scheduler, ROUNDS, WARM_ROUNDS))
    grown = settled_rss() - rss0
    return {
        "pairs": pairs,
        "held": {"events": len(scheduler.queue) - held_before},
        "rss_growth_bytes": grown,
        "rss_bytes_per_session": grown / pairs,
        "us_per_pair": elapsed.wall / pairs * 1e6,
    }


# ---------------------------------------------------------------------- main


_PROBES: dict[str, Callable[[], dict[str, Any]]] = {
    "start": lambda: probe_ours("start"),
    "start_at": lambda: probe_ours("start_at"),
    "peer": probe_peer,
}


def _run_probe(kind: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", kind]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe {kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", choices=KINDS)
    args = parser.parse_args()
    if args.probe:
        pin_to_one_core()
        report(_PROBES[args.probe]())
        return
    loops = {kind: _run_probe(kind) for kind in KINDS}
    held = max(loops[kind]["held"]["live_session_objects"] for kind in _MODES)
    report(
        {
            "benchmark": "engine_churn",
            "pairs": APPS * ROUNDS,
            "loops": loops,
            "sessions_held": held,
            "target_held": TARGET_HELD,
            "passed": all(
                loops[kind]["held"]["live_session_objects"] <= TARGET_HELD
                and loops[kind]["held"]["live_sessions"] <= TARGET_HELD
                for kind in _MODES
            ),
        }
    )


if __name__ == "__main__":
    main()
