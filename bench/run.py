"""Run every benchmark, each in a fresh subprocess, and write `results.json` and `results.md`.

Usage: `python bench/run.py` from anywhere (it finds its own folder). Each benchmark module pins
itself to one CPU (the embedded host's also runs unpinned) and prints one JSON object on the last
line of its stdout; this script adds the machine (Python version, CPU model from /proc/cpuinfo)
and the date (from the package's `SystemClock`), then writes `bench/results.json`, the tables in
`bench/results.md`, and the summary between the README's `bench:start` and `bench:end` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _measure import measure
from extended_runtime._core.clock import SystemClock

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "bench_virtual_day.py",
    "bench_mixed_day.py",
    "bench_embedded_alarms.py",
    "bench_idle.py",
    "bench_churn.py",
    "bench_memory.py",
    "bench_alert_sound.py",
    "bench_keep_awake.py",
    "bench_xrs_run.py",
    "bench_daemon.py",
    "bench_durable_schedule.py",
)
_CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table (`target` "-": no target, no verdict)."""

    benchmark: str
    ours: str
    peer: str
    ratio: str
    target: str
    passed: bool = True


def run_benchmark(script: str) -> dict[str, Any]:
    """Run one benchmark module in a fresh interpreter and return its JSON result."""
    done = subprocess.run(
        [sys.executable, str(HERE / script)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what platform knows."""
    if _CPUINFO.is_file():
        for line in _CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What the figures were measured on, and when."""
    return {
        "date": SystemClock().now().isoformat(timespec="seconds"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


# ---------------------------------------------------------------------- the table


def day_rows(day: dict[str, Any], title: str, alerts: bool) -> list[Row]:
    """A simulated day: its wall time, and its time per timer firing against `sched`'s."""
    counts = day["counts"]
    what = f"{counts['sessions']:,} sessions" + (f", {counts['alerts']:,} alerts" if alerts else "")
    ratio_target = day.get("target_ratio")
    return [
        Row(
            f"VirtualHost: {title} ({what}), wall time on one core (median of {day['rounds']})",
            f"{day['wall_seconds']:.3f} s",
            f"{day['peer_wall_seconds']:.3f} s (`sched`, {day['timer_firings']:,} firings)",
            f"{day['ratio']:.1f}x",
            f"< {day['target_seconds']:g} s",
            bool(day["passed"]),
        ),
        Row(
            f"VirtualHost: {title}, wall time per timer firing",
            f"{day['us_per_firing']:.1f} us",
            f"{day['peer_us_per_firing']:.1f} us",
            f"{day['ratio']:.1f}x",
            "-" if ratio_target is None else f"< {ratio_target:g}x",
            bool(day.get("ratio_passed", True)),
        ),
    ]


def alarm_rows(alarms: dict[str, Any]) -> list[Row]:
    """The embedded host's lateness against APScheduler, the `call_at` floor and `sched`."""
    runs = alarms["runs"]
    ours, aps, floor, thread = runs["ours"], runs["apscheduler"], runs["call_at"], runs["sched"]
    title = (
        f"EmbeddedHost: {alarms['alarms']:,} smart alarms due over "
        f"{alarms['alarms'] * alarms['spacing_s']:g} s, lateness of `did_start`"
    )
    version = alarms["versions"]["apscheduler"]

    def figure(run: dict[str, Any]) -> str:
        return f"{run['p99_ms']:.2f} ms (p50 {run['p50_ms']:.2f}, max {run['max_ms']:.1f})"

    return [
        Row(
            f"{title}, p99 (pinned, median of {alarms['rounds']} runs)",
            figure(ours),
            f"{figure(aps)[:-1]}; APScheduler {version} `AsyncIOScheduler`)",
            f"{alarms['ratio_p99_apscheduler']:.2f}x",
            f"<= {alarms['target_p99_of_apscheduler']:g}x and < {alarms['target_p99_ms']:g} ms",
            alarms["ratio_p99_apscheduler"] <= alarms["target_p99_of_apscheduler"]
            and ours["p99_ms"] < alarms["target_p99_ms"],
        ),
        Row(
            f"{title}, p50",
            f"{ours['p50_ms']:.3f} ms",
            f"{floor['p50_ms']:.3f} ms (bare `loop.call_at`; p99 {floor['p99_ms']:.2f})",
            f"{alarms['ratio_p50_call_at']:.2f}x",
            "<= 1x",
            alarms["ratio_p50_call_at"] <= 1.0,
        ),
        Row(
            f"{title}, p99 against a thread that sleeps to each instant",
            f"{ours['p99_ms']:.2f} ms",
            f"{figure(thread)[:-1]}; `sched` thread)",
            f"{alarms['ratio_p99_sched']:.2f}x",
            "-",
        ),
    ]


def idle_rows(idle: dict[str, Any]) -> list[Row]:
    """Wake-ups and CPU of an idle process holding scheduled sessions."""
    runs = idle["runs"]
    aps, polling = runs["apscheduler_20000"], runs["polling_20000"]
    target = f"<= {idle['target_wakeups']} wake-ups, <= {idle['target_cpu_ms']:g} ms"
    rows = []
    for size in (20_000, 100_000):
        ours = runs[f"ours_{size}"]
        peer = (
            f"APScheduler: {aps['wakeups']} wake-ups, {aps['cpu_ms']:.1f} ms; polling host: "
            f"{polling['wakeups']} wake-ups, {polling['cpu_ms']:.1f} ms (20,000)"
        )
        rows.append(
            Row(
                f"EmbeddedHost idle {idle['window_s']:g} s with {size:,} scheduled sessions, "
                "wake-ups and CPU of every thread",
                f"{ours['wakeups']} wake-ups, {ours['cpu_ms']:.1f} ms",
                peer,
                "-",
                target,
                ours["wakeups"] <= idle["target_wakeups"]
                and ours["cpu_ms"] <= idle["target_cpu_ms"],
            )
        )
    return rows


def churn_rows(churn: dict[str, Any]) -> list[Row]:
    """Sessions the engine holds after start/invalidate pairs."""
    peer = churn["loops"]["peer"]
    rows = []
    for kind in ("start", "start_at"):
        loop = churn["loops"][kind]
        held = loop["held"]
        passed = held["live_session_objects"] <= churn["target_held"] and (
            held["live_sessions"] <= churn["target_held"]
        )
        rows.append(
            Row(
                f"Engine: sessions held after {loop['pairs']:,} `{kind}` + `invalidate`",
                f"{held['live_session_objects']} (timer entries +{held['timer_entries']}, "
                f"RSS {loop['rss_bytes_per_session']:.2f} B/session)",
                f"{peer['held']['events']} (`sched` enter + cancel, "
                f"RSS {peer['rss_bytes_per_session']:.2f} B/pair)",
                "-",
                f"{churn['target_held']}",
                passed,
            )
        )
    return rows


def memory_rows(memory: dict[str, Any]) -> list[Row]:
    """Bytes per scheduled session, RSS and tracemalloc."""
    traced, peer_traced = (
        memory["tracemalloc_bytes_per_session"],
        memory["peer_tracemalloc_bytes_per_session"],
    )
    return [
        Row(
            f"Engine memory per scheduled session at {memory['sessions']:,}, against APScheduler "
            "(RSS growth)",
            f"{memory['bytes_per_session']:.1f} B",
            f"{memory['apscheduler_bytes_per_job']:.1f} B per `date` job (APScheduler "
            f"{memory['apscheduler_version']} `BackgroundScheduler`)",
            f"{memory['ratio_apscheduler']:.2f}x",
            f"<= {memory['target_of_apscheduler']:g}x",
            memory["ratio_apscheduler"] <= memory["target_of_apscheduler"],
        ),
        Row(
            f"Engine memory per scheduled session at {memory['sessions']:,} (RSS growth)",
            f"{memory['bytes_per_session']:.1f} B",
            f"{memory['peer_bytes_per_session']:.1f} B (`sched`)",
            f"{memory['ratio']:.2f}x",
            f"< {memory['target_bytes']} B",
            memory["bytes_per_session"] < memory["target_bytes"],
        ),
        Row(
            "Engine memory per scheduled session (tracemalloc cross-check)",
            f"{traced:.1f} B",
            f"{peer_traced:.1f} B",
            f"{traced / peer_traced:.2f}x",
            "-",
        ),
        Row(
            "Engine memory per scheduled session, ids and dates made outside (RSS)",
            f"{memory['engine_only_bytes_per_session']:.1f} B",
            "-",
            "-",
            "-",
        ),
    ]


def sound_rows(sound: dict[str, Any]) -> list[Row]:
    """From `notify_user()` to sound on the sink's monitor, against a bare libcanberra play."""
    title = "EmbeddedHost: `notify_user()` to the alarm's sound on the sound server, p50"
    if "skipped" in sound:
        return [Row(title, f"not measured: {sound['skipped']}", "-", "-", "-")]
    ours, peer = sound["runs"]["ours"], sound["runs"]["peer"]
    return [
        Row(
            f"{title} ({ours['rounds']} alarms)",
            f"{ours['p50_ms']:.1f} ms (p90 {ours['p90_ms']:.1f}, max {ours['max_ms']:.1f})",
            f"{peer['p50_ms']:.1f} ms (p90 {peer['p90_ms']:.1f}, max {peer['max_ms']:.1f}; "
            "bare libcanberra play)",
            f"{sound['ratio_p50']:.2f}x",
            f"< {sound['target_p50_ms']:g} ms",
            bool(sound["passed"]),
        )
    ]


def rows(results: dict[str, Any]) -> list[Row]:
    """The table: one row per measured figure."""
    return [
        *day_rows(results["virtual_day"], "a day of 1,000 apps", alerts=True),
        *day_rows(results["mixed_day"], "the mixed day of 1,000 apps", alerts=False),
        *alarm_rows(results["embedded_alarms"]),
        *idle_rows(results["idle"]),
        *churn_rows(results["engine_churn"]),
        *memory_rows(results["engine_memory"]),
        *sound_rows(results["alert_sound"]),
        *keep_awake_rows(results["keep_awake"], results["xrs_run"]),
        *daemon_rows(results["daemon"]),
        *durable_rows(results["durable_schedule"]),
    ]


def daemon_rows(daemon: dict[str, Any]) -> list[Row]:
    """The daemon: one call's round trip, lifecycles per second, a restart with 100,000."""
    trip, flow, back = daemon["round_trip"], daemon["throughput"], daemon["restart"]
    late = daemon["lateness"]
    targets, passed = daemon["targets"], daemon["passed"]
    return [
        Row(
            "Daemon: one call (`start()` or `invalidate()`) from an app, p50 round trip (the "
            "app, the daemon and the peers pinned to one CPU)",
            f"{trip['call_p50_us']:.0f} us (p99 {trip['call_p99_us']:.0f})",
            f"{trip['echo_p50_us']:.1f} us (bare Python Unix-socket echo in another process); "
            f"the protocol's floor (a framed request answered with a push and a reply, no "
            f"engine) {trip['floor_p50_us']:.1f} us, {trip['floor_ratio']:.1f}x the echo",
            f"{trip['ratio']:.1f}x",
            f"< {targets['round_trip_of_echo']:g}x",
            bool(passed["round_trip"]),
        ),
        Row(
            f"Daemon: session lifecycles (start + invalidate) per second, {flow['clients']} "
            "client processes",
            f"{flow['per_s']:,.0f}/s",
            "-",
            "-",
            f">= {targets['lifecycles_per_s']:,.0f}/s",
            bool(passed["throughput"]),
        ),
        Row(
            f"Daemon: {late['alarms']:,} smart alarms due over "
            f"{late['alarms'] * late['spacing_s']:g} s, lateness of `did_start` in the app, p99",
            f"{late['ours']['p99_ms']:.2f} ms (p50 {late['ours']['p50_ms']:.2f}, "
            f"max {late['ours']['max_ms']:.1f})",
            f"{late['apscheduler']['p99_ms']:.2f} ms (p50 {late['apscheduler']['p50_ms']:.2f}, "
            f"max {late['apscheduler']['max_ms']:.1f}; "
            "APScheduler `AsyncIOScheduler` in one process)",
            f"{late['ratio_p99']:.2f}x",
            f"<= {targets['lateness_p99_of_apscheduler']:g}x",
            bool(passed["lateness"]),
        ),
        Row(
            f"Daemon: start with {back['sessions']:,} scheduled sessions in its store, to serving "
            f"(median of {len(back.get('ready_s_all', [0]))})",
            f"{back['ready_s']:.2f} s ({back['scheduled']:,} scheduled after)",
            "-",
            "-",
            f"< {targets['restart_s']:g} s, all there",
            bool(passed["restart"]),
        ),
    ]


def keep_awake_rows(lock: dict[str, Any], run: dict[str, Any]) -> list[Row]:
    """The logind lock after `start()`, and what a real keep-awake adds to `xrs run`."""
    rows: list[Row] = []
    if "skipped" in lock:
        rows.append(Row("Keep-awake: `start()` to the lock in `ListInhibitors`", "skipped",
                        lock["skipped"], "-", "-", True))  # fmt: skip
    else:
        ours, peer = lock["ours"], lock["peer"]
        rows.append(
            Row(
                f"Keep-awake: `start()` to our lock in logind's `ListInhibitors`, p99 "
                f"({lock['rounds']} rounds)",
                f"{ours['p99_ms']:.2f} ms (p50 {ours['p50_ms']:.2f})",
                f"{peer['p99_ms']:.2f} ms (p50 {peer['p50_ms']:.2f}; bare `Inhibit` on a fresh "
                "connection)",
                f"{lock['ratio']:.2f}x",
                f"< {lock['target_ratio']:g}x",
                bool(lock["passed"]),
            )
        )
    if "skipped" in run:
        rows.append(Row("Keep-awake added to `xrs run -- true`", "skipped", run["skipped"],
                        "-", "-", True))  # fmt: skip
    else:
        rows.append(
            Row(
                f"Keep-awake added to `xrs run -- true` (median of {run['runs']} paired "
                "differences)",
                f"{run['added_ms']:+.1f} ms ({run['real_ms']:.0f} ms with logind)",
                f"{run['logging_ms']:.0f} ms (`--backend keep-awake=log-keep-awake`)",
                "-",
                f"<= {run['target_ms']:g} ms",
                bool(run["keep_awake_passed"]),
            )
        )
        rows.append(
            Row(
                f"Start-up: `xrs run -q -- true` wall time, the quick path (median of "
                f"{run['runs']})",
                f"{run['quick_ms']:.0f} ms (the full path, `xrs run -- true`: "
                f"{run['real_ms']:.0f} ms)",
                f'`python -c pass` {run["python_ms"]:.0f} ms; `python -c "import wakepy"` '
                f"{run['wakepy_ms']:.0f} ms (wakepy {run['wakepy_version']}); the floor (jeepney, "
                f"logind's lock, `true`) {run['floor_ms']:.0f} ms",
                f"{run['ratio_python']:.2f}x, {run['ratio_wakepy']:.2f}x",
                "<= 2x python, < wakepy",
                bool(run["startup_passed"]),
            )
        )
    return rows


def durable_rows(durable: dict[str, Any]) -> list[Row]:
    """Scheduled records made durable in the SQLite store, against APScheduler's `add_job`."""
    return [
        Row(
            f"SqliteStore: {durable['records']:,} scheduled records saved and flushed "
            f"{durable['group']} at a time ({durable['commits']:,} synced commits, "
            f"{durable['filesystem']}), wall time (median of {durable['rounds']})",
            f"{durable['wall_seconds']:.2f} s ({durable['us_per_record']:.1f} us per record)",
            f"{durable['apscheduler_wall_seconds']:.2f} s ({durable['apscheduler_us_per_job']:.1f} "
            f"us per `date` job; APScheduler {durable['apscheduler_version']} "
            "`BackgroundScheduler`, paused, in memory)",
            f"{durable['ratio']:.2f}x ({durable['speedup']:.1f}x faster)",
            f"<= {1 / durable['target_speedup']:g}x",
            bool(durable["passed"]),
        ),
        Row(
            f"SqliteStore: opening the file with {durable['records']:,} records (read into "
            "its cache)",
            f"{durable['reopen_seconds']:.2f} s",
            "-",
            "-",
            "-",
        ),
    ]


# ---------------------------------------------------------------------- results.md


def markdown(info: dict[str, Any], table: list[Row], results: dict[str, Any]) -> str:
    """`results.md`: the table, the machine, and each benchmark's details."""
    lines = [
        "# Benchmark results",
        "",
        f"Measured {info['date']} on {info['cpu_model']} ({info['logical_cpus']} logical CPUs, "
        f"each benchmark pinned to CPU {results['virtual_day']['cpu']} unless a row says "
        f"unpinned), {info['python']}, {info['platform']}. `python bench/run.py` took "
        f"{results['total_seconds']:.1f} s."
        + (f" Rerun then: {', '.join(results['rerun'])}." if results.get("rerun") else ""),
        "",
        "| Benchmark | Ours | Peer | Ratio (ours/peer) | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    for row in table:
        verdict = "-" if row.target == "-" else ("pass" if row.passed else "FAIL")
        lines.append(
            f"| {row.benchmark} | {row.ours} | {row.peer} | {row.ratio} | {row.target} "
            f"| {verdict} |"
        )
    lines += day_section("A day of 1,000 apps", results["virtual_day"])
    lines += day_section("The mixed day", results["mixed_day"])
    lines += alarm_section(results["embedded_alarms"])
    lines += idle_section(results["idle"])
    lines += churn_section(results["engine_churn"])
    lines += memory_section(results["engine_memory"])
    lines += sound_section(results["alert_sound"])
    return "\n".join(lines) + "\n"


def day_section(title: str, day: dict[str, Any]) -> list[str]:
    """What happened during a simulated day, and its rounds."""
    walls = ", ".join(f"{w:.3f}" for w in day["wall_seconds_all"])
    peers = ", ".join(f"{w:.3f}" for w in day["peer_wall_seconds_all"])
    lines = [
        "",
        f"## {title}",
        "",
        f"Rounds (wall s): {walls}; CPU time of the median round {day['cpu_seconds']:.3f} s. "
        f"Peer rounds (wall s): {peers}. Simulated seconds per wall second: "
        f"{day['simulated_seconds_per_wall_second']:,.0f}.",
        "",
        "| What happened | Count |",
        "|---|---|",
    ]
    counts = dict(day["counts"])
    reasons = counts.pop("reasons")
    lines += [f"| {name.replace('_', ' ')} | {value:,} |" for name, value in counts.items()]
    lines += [f"| did_invalidate: {name} | {value:,} |" for name, value in reasons.items()]
    return lines


def alarm_section(alarms: dict[str, Any]) -> list[str]:
    """Every lateness figure of the embedded host and its peers."""
    lines = _section(
        "Smart alarms on the embedded host",
        f"{alarms['alarms']:,} alarms, {alarms['spacing_s'] * 1e3:g} ms apart; each figure is "
        f"the median over {alarms['rounds']} runs, each run in a fresh process pinned to one "
        "CPU. Margin: how long before the first alarm the setup ended.",
        ("Run", "p50", "p99 (each run)", "max", "margin"),
    )
    for kind, run in alarms["runs"].items():
        each = ", ".join(f"{p:.2f}" for p in run["p99_ms_all"])
        lines.append(
            f"| {kind} | {run['p50_ms']:.3f} ms | {run['p99_ms']:.2f} ms ({each}) "
            f"| {run['max_ms']:.1f} ms | {run['margin_s']:.2f} s |"
        )
    return lines


def idle_section(idle: dict[str, Any]) -> list[str]:
    """Each idle probe's wake-ups, CPU and threads."""
    lines = _section(
        "Idle",
        f"Counted over {idle['window_s']:g} s from outside each process, over every thread "
        "(`/proc/PID/task/*`: context switches, and `schedstat` time on CPU).",
        ("Probe", "sessions", "wake-ups", "CPU", "threads"),
    )
    for run in idle["runs"].values():
        lines.append(
            f"| {run['kind']} | {run['sessions']:,} | {run['wakeups']} | {run['cpu_ms']:.2f} ms "
            f"| {run['threads']} |"
        )
    return lines


def churn_section(churn: dict[str, Any]) -> list[str]:
    """What the engine held before and after each loop of start/invalidate pairs."""
    lines = _section(
        "What the engine holds after sessions come and go",
        "Counted after `gc.collect()`, before and after each loop, on an engine warmed with a "
        "history (some of whose sessions it keeps for their apps' next launch) and one "
        "scheduled alarm.",
        (
            "Loop",
            "LiveSession objects",
            "Run objects",
            "live_sessions()",
            "timer_entries",
            "RSS growth",
            "us per pair",
        ),
    )
    for kind in ("start", "start_at"):
        loop = churn["loops"][kind]
        before, after = loop["before"], loop["after"]
        cells = " | ".join(
            f"{before[key]} -> {after[key]}"
            for key in ("live_session_objects", "run_objects", "live_sessions", "timer_entries")
        )
        lines.append(
            f"| {loop['pairs']:,} x `{kind}` + `invalidate` | {cells} "
            f"| {loop['rss_growth_bytes']:,} B | {loop['us_per_pair']:.1f} |"
        )
    peer = churn["loops"]["peer"]
    lines.append(
        f"| peer: {peer['pairs']:,} x `sched` enter + cancel | - | - | "
        f"{peer['held']['events']} events held | - | {peer['rss_growth_bytes']:,} B "
        f"| {peer['us_per_pair']:.1f} |"
    )
    return lines


def memory_section(memory: dict[str, Any]) -> list[str]:
    """Where the bytes of a scheduled session go."""
    lines = [
        "",
        "## Where the bytes of a scheduled session go",
        "",
        "Counted: everything the 100,000-alarm loop creates and keeps (the engine's app and "
        "session records, the timer entry, dict entries, and the app-id string, session-id "
        "string and start `datetime` that the caller makes and the engine keeps).",
        "",
        "| Object | `sys.getsizeof` (GC header included) | Bytes taken (pymalloc block) |",
        "|---|---|---|",
    ]
    taken = {name: _block(name, size) for name, size in memory["sizes"].items()}
    lines += [
        f"| {name} | {size:.1f} | {taken[name]:.1f} |" for name, size in memory["sizes"].items()
    ]
    lines += [
        f"| **total** | {sum(memory['sizes'].values()):.1f} | {sum(taken.values()):.1f} |",
        "",
        "Objects of up to 512 bytes take a pymalloc block, a multiple of 16 bytes; dict and "
        "list costs are per entry, their whole table divided by the sessions. The `LiveApp(...)` "
        "line below also carries the growth of `engine._apps`.",
    ]
    lines += _breakdown(memory["breakdown"])
    lines += ["", "Peer (`sched.scheduler`), by line:"]
    lines += _breakdown(memory["peer_breakdown"])
    return lines


def sound_section(sound: dict[str, Any]) -> list[str]:
    """Each kind's latencies, from the call to the first block of sound."""
    lines = ["", "## The alarm heard", ""]
    if "skipped" in sound:
        return [*lines, f"Not measured: {sound['skipped']}."]
    lines += [
        "`notify_user(HapticType.NOTIFICATION)` on a running smart alarm, then the first 5 ms "
        f"block of the default sink's monitor above RMS {sound['threshold']:g} "
        f"(theme event `{sound['event_id']}`); each kind in a fresh process, pinned to one CPU; "
        "the first rounds (warm-up) are not counted.",
        "",
        "| Kind | rounds | p50 | p90 | min | max | warm-up rounds |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, run in sound["runs"].items():
        warm = ", ".join(f"{x:.1f}" for x in run["warmup_ms"])
        lines.append(
            f"| {kind} | {run['rounds']} | {run['p50_ms']:.1f} ms | {run['p90_ms']:.1f} ms "
            f"| {run['min_ms']:.1f} ms | {run['max_ms']:.1f} ms | {warm} ms |"
        )
    return lines


def _section(title: str, intro: str, columns: tuple[str, ...]) -> list[str]:
    """A section's heading, its opening paragraph and the head of its table."""
    return [
        "",
        f"## {title}",
        "",
        intro,
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]


def _breakdown(lines: list[dict[str, Any]]) -> list[str]:
    table = ["", "| tracemalloc, by line | Bytes per session | Blocks |", "|---|---|---|"]
    return table + [
        f"| `{line['where']}` | {line['per_session']:.1f} | {line['blocks_per_session']:.2f} |"
        for line in lines
    ]


def _block(name: str, size: float) -> float:
    """Bytes an object really takes: pymalloc rounds small requests up to 16 bytes."""
    if "per entry" in name or size > 512:
        return size
    return float(-(-int(size) // 16) * 16)


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmarks; write the results.")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        metavar="SCRIPT",
        help="rerun only these (e.g. bench_daemon.py); the others keep their last results",
    )
    only: list[str] | None = parser.parse_args().only
    scripts = only or list(BENCHMARKS)

    def run_all() -> dict[str, Any]:
        return {name: run_benchmark(name) for name in scripts}

    by_script, elapsed = measure(run_all)
    results: dict[str, Any] = {r["benchmark"]: r for r in by_script.values()}
    results["total_seconds"] = elapsed.wall
    if only:
        kept = json.loads((HERE / "results.json").read_text(encoding="utf-8"))["results"]
        results = {**kept, **results, "total_seconds": kept["total_seconds"], "rerun": only}
    info = machine()
    table = rows(results)
    (HERE / "results.json").write_text(
        json.dumps({"machine": info, "results": results}, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    text = markdown(info, table, results)
    (HERE / "results.md").write_text(text, encoding="utf-8")
    update_readme(text)
    sys.stdout.write(text)


def update_readme(results_md: str) -> None:
    """Put the summary (the first paragraph and the first table) between the README's markers."""
    readme = HERE.parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        return
    summary = results_md.split("\n## ", 1)[0].split("\n", 1)[1].strip()
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(
        f"{head}{start}\n{summary}\n\nDetails: `bench/results.md`.\n{end}{tail}", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
