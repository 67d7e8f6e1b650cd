"""Idle with 20,000 and 100,000 scheduled sessions: how often does the process wake, and what
CPU does it use, in 40 s?

What is measured
----------------
Each probe is a fresh process that makes one `EmbeddedHost()` (the backends this machine gets
by default: logind, the timerfd wake alarm, D-Bus watchers), and N smart-alarm apps, each with
one session scheduled by `start_at` for an instant between one and 36 hours ahead. Then it
prints `ready` and does nothing. Over the next 40 s this script reads, from outside, every
thread of the process in `/proc/PID/task/*`: context switches (`voluntary_ctxt_switches` plus
`nonvoluntary_ctxt_switches`: each time a thread woke and ran, it counts at least one) and CPU
time (`schedstat`, nanoseconds on CPU). All probes idle side by side in the same 40 s.

Kinds:

* `ours`, at 20,000 and 100,000 sessions: the host's timer thread sleeps on one timerfd armed
  for the earliest start; targets at most 2 wakeups and 10 ms of CPU in 40 s, at both sizes;
* `polling`, at 20,000: the same host with a clock that is not the machine's own
  (`SystemClock` subclassed), so the portable `PollingWaiter` runs, as the host did before the
  timerfd: it looks at the clock every 5 s;
* `apscheduler`, at 20,000: APScheduler 3.11 `BackgroundScheduler` with one `date` job per
  instant, the same instants: the peer.

Run: `python bench/bench_idle.py` (one JSON object on the last line of stdout); one probe by
hand: `python bench/bench_idle.py --probe KIND N` (it idles until killed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _measure import load_services
from extended_runtime._core.clock import SystemClock

__all__ = ["main", "probe"]

WINDOW = 40.0  # seconds of idling measured
TARGET_WAKEUPS = 2
TARGET_CPU_MS = 10.0
RUNS = (("ours", 20_000), ("ours", 100_000), ("polling", 20_000), ("apscheduler", 20_000))
_SPREAD = timedelta(hours=35)  # instants from one hour ahead to 36 hours ahead


def _instants(now: datetime, count: int) -> list[datetime]:
    step = _SPREAD / count
    return [now + timedelta(hours=1) + step * i for i in range(count)]


class _OtherClock(SystemClock):
    """The machine's clock under another type: the host then polls, as it did before."""


def _ours(count: int, polling: bool) -> object:
    from extended_runtime import EmbeddedHost, ExtendedRuntimeSession, SessionType

    host = EmbeddedHost(clock=_OtherClock() if polling else None)
    for i, when in enumerate(_instants(host.now, count)):
        app = host.app(f"org.bench.idle{i:06d}", SessionType.SMART_ALARM)
        ExtendedRuntimeSession(app).start_at(when)
    host.settle(30.0)
    return host


def _apscheduler(count: int) -> object:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start()
    for when in _instants(SystemClock().now(), count):
        scheduler.add_job(print, "date", run_date=when, misfire_grace_time=None)
    return scheduler


def probe(kind: str, count: int) -> None:
    """Set up `count` scheduled sessions (or jobs), say `ready`, and idle until killed."""
    load_services()
    keep = _apscheduler(count) if kind == "apscheduler" else _ours(count, kind == "polling")
    print("ready", flush=True)
    sys.stdin.read()  # blocks: stdin is a pipe nobody writes to
    del keep


def _threads(pid: int) -> dict[str, tuple[int, int]]:
    """Per thread: context switches so far, nanoseconds on CPU so far."""
    found: dict[str, tuple[int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            on_cpu = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended
        switches = sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
        found[task.name] = (switches, on_cpu)
    return found


def _difference(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> Any:
    wakeups = cpu_ns = 0
    for tid, (switches, on_cpu) in after.items():
        old = before.get(tid, (0, 0))
        wakeups += switches - old[0]
        cpu_ns += on_cpu - old[1]
    return {"wakeups": wakeups, "cpu_ms": cpu_ns / 1e6, "threads": len(after)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--probe":
        probe(sys.argv[2], int(sys.argv[3]))
        return
    script = str(Path(__file__).resolve())
    children = [
        subprocess.Popen(
            [sys.executable, script, "--probe", kind, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for kind, count in RUNS
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise SystemExit(f"a probe failed to set up (exit {child.wait()})")
        time.sleep(1.0)  # let the last set-up's effects settle
        before = [_threads(child.pid) for child in children]
        time.sleep(WINDOW)
        after = [_threads(child.pid) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    runs = {
        f"{kind}_{count}": {"kind": kind, "sessions": count, **_difference(b, a)}
        for (kind, count), b, a in zip(RUNS, before, after, strict=True)
    }
    ours = [run for run in runs.values() if run["kind"] == "ours"]
    result = {
        "benchmark": "idle",
        "window_s": WINDOW,
        "runs": runs,
        "target_wakeups": TARGET_WAKEUPS,
        "target_cpu_ms": TARGET_CPU_MS,
        "passed": all(
            run["wakeups"] <= TARGET_WAKEUPS and run["cpu_ms"] <= TARGET_CPU_MS for run in ours
        ),
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
