"""100,000 scheduled sessions made durable by the daemon's SQLite store, against APScheduler
adding the same 100,000 alarms as `date` jobs to its in-memory job store.

What is measured
----------------
The daemon answers a client's `start_at` once the session's record is on disk: it saves the
record in its `SqliteStore` and flushes, and the flushes of clients that ask at the same moment
share one commit (group commit, `_backends/sqlite.py`). The workload stands for 64 client
connections scheduling at once, over and over: 100,000 SCHEDULED smart-alarm `SessionRecord`s
(the engine's record of a session, as `_core.records.fold` makes it) are saved 64 at a time, each
group followed by one `flush`, so 1,563 commits, each synced to the disk (WAL, `synchronous =
FULL`). The store starts empty, in a new file in a temporary folder (on the disk the temporary
folder is on: the report names its file system, since on tmpfs a sync costs nothing). The ids
and start dates are those of `bench_memory` (the same 100,000 alarms: 128-bit hex session ids,
start dates spread over 36 hours in shuffled order) and the records are made before the measured
region. The figure is the median wall time of three runs, each in a fresh process pinned to one
CPU, of saving and flushing every record; afterwards the file is opened again (its records read
back into the cache, which is also reported) and must hold all of them.

The peer
--------
APScheduler 3.11 `BackgroundScheduler` with its default `MemoryJobStore`, started paused (jobs go
into the job store, none runs), adding the same alarms with `add_job(action, "date",
run_date=when, args=(session_id, app_id), id=session_id, misfire_grace_time=None)` after one
warm-up job (as in `bench_memory`): the scheduler a Python program would otherwise reach for,
keeping its jobs in memory only, so it writes nothing to the disk. Same rounds, same processes.
Target: the store at least 5x faster than the peer (ours/peer at most 0.2).

Run: `python bench/bench_durable_schedule.py` (one JSON object on the last line of stdout); one
run: `python bench/bench_durable_schedule.py --probe {ours,apscheduler} pinned`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _measure import measure, pin_to_one_core, probe_requested, report
from bench_memory import _add_jobs, _alarms
from extended_runtime import SessionState, SessionType
from extended_runtime._backends.sqlite import SqliteStore
from extended_runtime._core.records import SessionRecord

__all__ = ["main", "records", "run_apscheduler", "run_ours"]

SESSIONS = 100_000
GROUP = 64  # records saved between two flushes: 64 clients asking at once
ROUNDS = 3
TARGET_SPEEDUP = 5.0  # APScheduler's wall time over ours, at least
NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # bench_memory's: the records' `updated_at`
KINDS = ("ours", "apscheduler")
MODES = ("pinned",)
_MOUNTS = Path("/proc/self/mounts")


def records(count: int) -> list[SessionRecord]:
    """The alarms of `bench_memory`, as the engine's records of scheduled sessions."""
    return [
        SessionRecord(
            session_id,
            app_id,
            SessionType.SMART_ALARM,
            SessionState.SCHEDULED,
            NOW,
            start_date=when,
        )
        for app_id, session_id, when in _alarms(count)
    ]


def _save_and_flush(store: SqliteStore, made: list[SessionRecord], group: int) -> None:
    for start in range(0, len(made), group):
        for record in made[start : start + group]:
            store.save(record)
        store.flush()


def run_ours(made: list[SessionRecord], folder: Path, group: int = GROUP) -> dict[str, Any]:
    """Save and flush `made` into a new store in `folder`, then open it again."""
    path = folder / "store.db"
    store = SqliteStore(path)
    _, elapsed = measure(lambda: _save_and_flush(store, made, group))
    commits = store.commits
    store.close()
    again, reopened = measure(lambda: SqliteStore(path))
    kept = len(again.records())
    again.close()
    return {
        "wall": elapsed.wall,
        "cpu": elapsed.cpu,
        "commits": commits,
        "kept": kept,
        "reopen_wall": reopened.wall,
        "filesystem": _filesystem(folder),
    }


def run_apscheduler(alarms: list[tuple[str, str, datetime]]) -> dict[str, Any]:
    """Add `alarms` as `date` jobs to a paused `BackgroundScheduler`."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)  # jobs go to the job store, and none runs
    _add_jobs(scheduler, _alarms(1))  # warm-up, then removed
    scheduler.remove_all_jobs()
    _, elapsed = measure(lambda: _add_jobs(scheduler, iter(alarms)))
    kept = len(scheduler.get_jobs())
    scheduler.shutdown(wait=False)
    return {"wall": elapsed.wall, "cpu": elapsed.cpu, "kept": kept}


def probe(kind: str, mode: str) -> dict[str, Any]:
    """One run of one kind, in this (fresh) process."""
    cpu = pin_to_one_core()
    if kind == "apscheduler":
        return {"cpu_pinned": cpu, **run_apscheduler(list(_alarms(SESSIONS)))}
    made = records(SESSIONS)
    with tempfile.TemporaryDirectory(prefix="xrs-bench-") as folder:
        return {"cpu_pinned": cpu, **run_ours(made, Path(folder))}


def _filesystem(folder: Path) -> str:
    """The type of the file system `folder` is on (the longest mount point above it)."""
    if not _MOUNTS.is_file():
        return "unknown"
    resolved, found, deepest = folder.resolve(), "unknown", -1
    for line in _MOUNTS.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        point = Path(fields[1])
        if resolved.is_relative_to(point) and len(point.parts) > deepest:
            found, deepest = fields[2], len(point.parts)
    return found


def _run_probe(kind: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", kind, MODES[0]]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe {kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["kept"] != SESSIONS:
        raise SystemExit(f"probe {kind} kept {result['kept']} of {SESSIONS}")
    return result


def _runs() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each round: ours, then the peer, each in a fresh process."""
    for _ in range(ROUNDS):
        yield _run_probe("ours"), _run_probe("apscheduler")


def main() -> None:
    if probe_requested(__doc__.splitlines()[0], KINDS, MODES, probe):
        return
    ours, peer = (list(kind) for kind in zip(*_runs(), strict=True))
    wall = statistics.median(run["wall"] for run in ours)
    peer_wall = statistics.median(run["wall"] for run in peer)
    speedup = peer_wall / wall
    report(
        {
            "benchmark": "durable_schedule",
            "records": SESSIONS,
            "group": GROUP,
            "flushes": -(-SESSIONS // GROUP),
            "commits": ours[0]["commits"],
            "rounds": ROUNDS,
            "cpu": ours[0]["cpu_pinned"],
            "filesystem": ours[0]["filesystem"],
            "wall_seconds": wall,
            "wall_seconds_all": [run["wall"] for run in ours],
            "cpu_seconds_all": [run["cpu"] for run in ours],
            "us_per_record": wall / SESSIONS * 1e6,
            "reopen_seconds": statistics.median(run["reopen_wall"] for run in ours),
            "apscheduler_wall_seconds": peer_wall,
            "apscheduler_wall_seconds_all": [run["wall"] for run in peer],
            "apscheduler_us_per_job": peer_wall / SESSIONS * 1e6,
            "apscheduler_version": _version("apscheduler"),
            "ratio": wall / peer_wall,
            "speedup": speedup,
            "target_speedup": TARGET_SPEEDUP,
            "passed": speedup >= TARGET_SPEEDUP,
        }
    )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
