"""The benchmarks' workloads run and mean what they say (on a small scale; no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench_memory  # noqa: E402
import bench_virtual_host  # noqa: E402


def test_a_small_simulated_day_keeps_every_rule() -> None:
    plans = bench_virtual_host.plan_apps(count=40)
    host, tally, late = bench_virtual_host.run_day(plans)
    counts = bench_virtual_host.outcome(host, tally, late)
    assert counts["late_actions"] == 0
    assert counts["sessions"] > 40
    assert counts["alerts"] > 0
    assert counts["will_expire"] > 0
    assert counts["did_start"] >= counts["will_expire"]
    assert counts["still_running"] == 0
    assert not host.keep_awake_held


def test_the_day_is_deterministic() -> None:
    first = bench_virtual_host.outcome(
        *bench_virtual_host.run_day(bench_virtual_host.plan_apps(10))
    )
    again = bench_virtual_host.outcome(
        *bench_virtual_host.run_day(bench_virtual_host.plan_apps(10))
    )
    assert first == again


def test_the_memory_workload_schedules_every_alarm() -> None:
    engine = bench_memory._warm_engine()
    before = engine.scheduled_count()
    bench_memory._schedule(engine, bench_memory._alarms(500))
    assert engine.scheduled_count() == before + 500
