"""What every benchmark shares: the stopwatch, the memory readings, one core, the JSON report.

This is the only module in `bench/` that touches `time`: it reads the two duration clocks,
`time.perf_counter` (wall time) and `time.process_time` (CPU time of this process), and it
builds the real-time `sched.scheduler` peer on `time.time` and `time.sleep`. Instants (the date
of a run, a delegate call's lateness) come from the package's own clock, `SystemClock`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sched
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "Elapsed",
    "load_services",
    "measure",
    "percentile",
    "pin_to_one_core",
    "realtime_scheduler",
    "report",
    "rss_bytes",
    "settled_rss",
    "stopwatch",
]

T = TypeVar("T")

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Elapsed:
    """How long something took: wall seconds and CPU seconds of this process."""

    wall: float
    cpu: float


def stopwatch() -> float:
    """A reading of the wall-time stopwatch (`time.perf_counter`), in seconds: only differences
    mean anything. For durations that start and end on different threads."""
    return time.perf_counter()


def measure(work: Callable[[], T]) -> tuple[T, Elapsed]:
    """Run `work` once and return its result with the time it took."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = work()
    wall1, cpu1 = time.perf_counter(), time.process_time()
    return result, Elapsed(wall1 - wall0, cpu1 - cpu0)


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def load_services() -> bool:
    """Put the real services' addresses (`.services.env`, from `scripts/services start`) into
    the environment; False when they were never started."""
    env_file = Path(__file__).resolve().parent.parent / ".services.env"
    if not env_file.is_file():
        return False
    for line in env_file.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            os.environ[key.strip()] = value.strip()
    return True


def pin_to_one_core() -> int:
    """Pin this process to one CPU (CPU 0 when allowed) and return which."""
    allowed = os.sched_getaffinity(0)
    cpu = 0 if 0 in allowed else min(allowed)
    os.sched_setaffinity(0, {cpu})
    return cpu


def realtime_scheduler() -> tuple[sched.scheduler, Callable[[], float]]:
    """`sched.scheduler(time.time, time.sleep)`, and its clock (seconds since the epoch)."""
    return sched.scheduler(time.time, time.sleep), time.time


def rss_bytes() -> int:
    """The resident set size of this process, from /proc/self/statm."""
    resident_pages = int(_STATM.read_text(encoding="ascii").split()[1])
    return resident_pages * _PAGE


def settled_rss() -> int:
    """The RSS after a full garbage collection, so freed cycles do not count."""
    gc.collect()
    return rss_bytes()


def probe_requested(
    description: str,
    kinds: tuple[str, ...],
    modes: tuple[str, ...],
    probe: Callable[[str, str], dict[str, Any]],
) -> bool:
    """Parse the command line; if it asks `--probe KIND MODE`, run that one probe, report it and
    return True (the caller stops); else return False (the caller runs the whole benchmark)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--probe", nargs=2, metavar=("KIND", "MODE"))
    args = parser.parse_args()
    if not args.probe:
        return False
    kind, mode = args.probe
    if kind not in kinds or mode not in modes:
        parser.error(f"--probe takes one of {kinds} and one of {modes}")
    report(probe(kind, mode))
    return True


def report(result: dict[str, object]) -> None:
    """Hand a benchmark's result to `run.py`: one JSON object on the last line of stdout."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
