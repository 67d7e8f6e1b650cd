"""The benchmarks' workloads run and mean what they say (on a small scale; no timing)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _day  # noqa: E402
import bench_alert_sound  # noqa: E402
import bench_churn  # noqa: E402
import bench_durable_schedule  # noqa: E402
import bench_embedded_alarms  # noqa: E402
import bench_idle  # noqa: E402
import bench_memory  # noqa: E402
import bench_mixed_day  # noqa: E402
import bench_virtual_day  # noqa: E402

# ---------------------------------------------------------------------- a day of 1,000 apps


def test_a_small_day_of_sessions_and_alarms_counts_what_it_means() -> None:
    plan = bench_virtual_day.plan_day(mindful=6, alarms=5)
    host, tally, late = bench_virtual_day.run_day(plan)
    counts = _day.outcome(host, tally, late)
    sessions = 6 * 12 + 5  # a session every other hour, one alarm each
    assert counts["late_actions"] == 0
    assert counts["sessions"] == sessions
    assert counts["did_start"] == counts["did_invalidate"] == sessions
    assert counts["will_expire"] == 6 * 12
    assert counts["reasons"] == {"EXPIRED": 6 * 12, "NONE": 5}
    assert counts["stops"] == counts["notify_calls"] == 5
    assert counts["alerts"] == 5 * 41  # every 3 s from 0 to 120 s
    assert counts["alerts_by_host"] == 0
    assert counts["still_running"] == counts["still_scheduled"] == 0
    assert not host.keep_awake_held


def test_the_day_is_deterministic_and_the_peer_fires_every_timer() -> None:
    plan = bench_virtual_day.plan_day(mindful=3, alarms=3)
    measured = _day.run_rounds(lambda host: bench_virtual_day.run_day(plan, host), rounds=2)
    # an expiry and a warning per session, a start and 40 repetitions per alarm
    assert measured.firings == 3 * 12 * 2 + 3 * (1 + 40)
    assert measured.counts["sessions"] == 3 * 12 + 3
    assert len(measured.walls) == len(measured.peer_walls) == 2


# ---------------------------------------------------------------------- the mixed day


def test_a_small_mixed_day_keeps_every_rule() -> None:
    plans = bench_mixed_day.plan_apps(count=40)
    counts = _day.outcome(*bench_mixed_day.run_day(plans))
    assert counts["late_actions"] == 0
    assert counts["sessions"] > 40
    assert counts["alerts"] > 0
    assert counts["will_expire"] > 0
    assert counts["did_start"] >= counts["will_expire"]
    assert counts["still_running"] == 0


def test_the_mixed_day_is_deterministic() -> None:
    first = _day.outcome(*bench_mixed_day.run_day(bench_mixed_day.plan_apps(10)))
    again = _day.outcome(*bench_mixed_day.run_day(bench_mixed_day.plan_apps(10)))
    assert first == again


# ---------------------------------------------------------------------- the embedded host


@pytest.mark.parametrize(
    "run",
    [
        bench_embedded_alarms.run_ours,
        bench_embedded_alarms.run_apscheduler,
        bench_embedded_alarms.run_call_at,
        bench_embedded_alarms.run_sched,
    ],
)
def test_every_alarm_is_heard_and_none_early(
    run: Callable[..., bench_embedded_alarms.Lateness],
) -> None:
    lateness = run(count=40, spacing=0.002, lead=0.4)
    assert len(lateness.samples) == 40
    assert min(lateness.samples) >= 0
    summary = lateness.summary()
    assert summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert summary["margin_s"] >= bench_embedded_alarms.MIN_MARGIN


# ---------------------------------------------------------------------- memory


@pytest.mark.parametrize("kind", ["start", "start_at"])
def test_sessions_that_came_and_went_leave_nothing_behind(kind: str) -> None:
    engine = bench_memory.warm_engine()
    app_ids = bench_churn.register(engine, kind, apps=50)
    bench_churn.churn(engine, kind, app_ids, rounds=1)
    before = bench_churn.census(engine)
    pairs = bench_churn.churn(engine, kind, app_ids, rounds=20, first=1)
    assert pairs == 1_000
    assert bench_churn.census(engine) == before


def test_the_memory_workload_schedules_every_alarm() -> None:
    engine = bench_memory.warm_engine()
    before = engine.scheduled_count()
    bench_memory._schedule(engine, bench_memory._alarms(500))
    assert engine.scheduled_count() == before + 500


def test_the_apscheduler_peer_holds_every_job() -> None:
    probe = bench_memory._make_probe("apscheduler")
    assert probe.count() == 0
    bench_memory._add_jobs(probe.holder, bench_memory._alarms(300))
    assert probe.count() == 300
    probe.holder.shutdown(wait=False)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "polling"), [("ours", False), ("polling", True)])
def test_an_idle_probe_schedules_every_session(kind: str, polling: bool) -> None:
    host = bench_idle._ours(50, polling)
    try:
        assert host.engine.scheduled_count() == 50  # type: ignore[attr-defined]
        waiter = type(host._waiter).__name__  # type: ignore[attr-defined]
        assert waiter == ("PollingWaiter" if polling else "TimerfdWaiter")
    finally:
        host.close()  # type: ignore[attr-defined]


def test_the_idle_counts_read_every_thread_of_a_process() -> None:
    import os
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        counts = bench_idle._threads(os.getpid())
        assert len(counts) >= 2
        assert all(switches > 0 and on_cpu >= 0 for switches, on_cpu in counts.values())
    finally:
        stop.set()
        thread.join()


def test_the_keep_awake_rounds_see_our_lock_and_the_peers() -> None:
    """A few rounds against the real logind (no timing asserted)."""
    from . import services

    services.require("logind")
    import bench_keep_awake

    result = bench_keep_awake.rounds(count=3)
    assert set(result) == {"ours", "peer"}
    for figures in result.values():
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


# ---------------------------------------------------------------------- durable scheduling


def test_the_durable_schedule_keeps_every_record_with_a_commit_per_group(tmp_path: Path) -> None:
    records = bench_durable_schedule.records(300)
    assert len({r.session_id for r in records}) == 300
    result = bench_durable_schedule.run_ours(records, tmp_path, group=64)
    assert result["kept"] == 300
    assert result["commits"] == 5  # 64 + 64 + 64 + 64 + 44
    assert result["filesystem"] != "unknown"


def test_the_durable_schedule_peer_adds_every_date_job() -> None:
    alarms = list(bench_memory._alarms(300))
    assert bench_durable_schedule.run_apscheduler(alarms)["kept"] == 300


# ---------------------------------------------------------------------- the alarm heard


@pytest.mark.parametrize("run", [bench_alert_sound.run_ours, bench_alert_sound.run_peer])
def test_each_alert_is_heard_after_its_call(
    run: Callable[[bench_alert_sound.Onsets, int], list[float]],
) -> None:
    """On the real sound server (`scripts/services start`)."""
    from . import services

    services.require("pulseaudio", "notifications")
    assert bench_alert_sound.missing() is None
    onsets = bench_alert_sound.Onsets()
    try:
        latencies = run(onsets, bench_alert_sound.WARMUP + 3)
    finally:
        onsets.close()
    assert len(latencies) == bench_alert_sound.WARMUP + 3
    assert all(0 < latency < 5 for latency in latencies)
    summary = bench_alert_sound.summary(latencies)
    assert summary["rounds"] == 3
    assert summary["min_ms"] <= summary["p50_ms"] <= summary["p90_ms"] <= summary["max_ms"]


def test_the_daemon_benchmark_measures_a_real_daemon(tmp_path: Path) -> None:
    import bench_daemon

    allowed = os.sched_getaffinity(0)
    trips = bench_daemon.round_trips(tmp_path, count=20)
    assert os.sched_getaffinity(0) == allowed  # pinned for the round trips only
    assert trips["call_p50_us"] > 0 and trips["echo_p50_us"] > 0
    assert trips["ratio"] == trips["call_p50_us"] / trips["echo_p50_us"]
    assert trips["floor_ratio"] == trips["floor_p50_us"] / trips["echo_p50_us"]
    back = bench_daemon.restart(tmp_path, sessions=300)
    assert back["scheduled"] == 300
    assert back["ready_s"] > 0


def test_the_protocol_floor_answers_a_start_with_a_push_then_its_reply(tmp_path: Path) -> None:
    import bench_daemon
    from extended_runtime._daemon import protocol as p

    env = dict(os.environ, PYTHONPATH=str(BENCH.parent / "src"))
    floor = bench_daemon._Floor(tmp_path, env)
    try:
        floor.connection.sendall(p.frame(p.Start(id=7, app_id="org.x", session_id="s-7")))
        push = p.decode_reply(p.read_frame(floor.connection))
        reply = p.decode_reply(p.read_frame(floor.connection))
        assert isinstance(push, p.Push) and push.event["session_id"] == "s-7"
        assert isinstance(reply, p.Reply) and reply.id == 7
        assert floor.round_trip() > 0
    finally:
        floor.close()
