"""What a real keep-awake adds to `xrs run -- true`.

What is measured
----------------
Whole processes, as a user runs them: `xrs run -q -- true` with the backends this machine
offers (logind's inhibitor for keep-awake, taken and released), against the same command with
the logging keep-awake chosen by name (`--backend keep-awake=log-keep-awake`), which does nothing
to the machine. Everything else (start-up, the other backends' probes, the session, the child)
is the same in both, so their difference is what keep-awake costs: the logind probe (one trial
lock), the lock and its release. Runs alternate, A B A B, and the figure is the median of the
differences of neighbouring runs, which cancels the machine's drift; single runs vary by tens of
milliseconds on a shared machine. The children may write their bytecode cache (a machine that
forbids it compiles every module on every run, which only adds noise), and one warm-up run of
each fills it. Target: at most 10 ms.

Run: `python bench/bench_xrs_run.py` (one JSON object on the last line of stdout); the services
must run (`sudo scripts/services start`), or the result says `"skipped"`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys

from _measure import load_services, report, stopwatch

__all__ = ["main", "timings"]

RUNS = 41
TARGET_MS = 10.0
REAL = ["run", "-q", "--", "true"]
LOGGING = ["run", "-q", "--backend", "keep-awake=log-keep-awake", "--", "true"]


def _xrs() -> list[str]:
    found = shutil.which("xrs")
    return [found] if found else [sys.executable, "-m", "extended_runtime"]


def _once(arguments: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = stopwatch()
    subprocess.run([*_xrs(), *arguments], check=True, env=env)
    return stopwatch() - started


def timings(runs: int = RUNS) -> dict[str, list[float]]:
    """Alternating runs of both commands (after one warm-up each), in seconds."""
    _once(REAL)
    _once(LOGGING)
    taken: dict[str, list[float]] = {"real": [], "logging": []}
    for _ in range(runs):
        taken["real"].append(_once(REAL))
        taken["logging"].append(_once(LOGGING))
    return taken


def main() -> None:
    if not load_services():
        report({"benchmark": "xrs_run", "skipped": "run `sudo scripts/services start` first"})
        return
    taken = timings()
    real, logging = (statistics.median(taken[k]) * 1000 for k in ("real", "logging"))
    added = statistics.median(a - b for a, b in zip(taken["real"], taken["logging"], strict=True))
    report(
        {
            "benchmark": "xrs_run",
            "runs": RUNS,
            "real_ms": real,
            "logging_ms": logging,
            "added_ms": added * 1000,
            "real_ms_all": [t * 1000 for t in taken["real"]],
            "logging_ms_all": [t * 1000 for t in taken["logging"]],
            "target_ms": TARGET_MS,
            "passed": added * 1000 <= TARGET_MS,
        }
    )


if __name__ == "__main__":
    main()
