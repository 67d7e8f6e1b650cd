"""`xrs run -- true`: what a real keep-awake adds, and how it starts next to Python itself.

What is measured
----------------
Whole processes, as a user runs them, through the `xrs` script this interpreter installed
(`sysconfig`'s scripts folder; a version manager's shim in front of it would add its own
start-up to ours, and `python` below is this interpreter itself, not a shim).

Keep-awake: `xrs run -- true` (the full path: the engine, the host, the session's events
printed) with the backends this machine offers (logind's inhibitor, taken and released), against
the same command with the logging keep-awake chosen by name (`--backend
keep-awake=log-keep-awake`), which does nothing to the machine. Everything else is the same in
both, so their difference is what keep-awake costs: the logind probe (one trial lock), the lock
and its release. Runs alternate, A B A B, and the figure is the median of the differences of
neighbouring runs, which cancels the machine's drift; single runs vary by tens of milliseconds on
a shared machine. The children may write their bytecode cache (a machine that forbids it
compiles every module on every run, which only adds noise), and one warm-up run of each fills
it. Target: at most 10 ms.

Start-up: `xrs run -q -- true`, the quick path scripts take (the command starts under logind's
lock before the engine is imported; see `extended_runtime/_cli/quick.py`), in the same rotation
as `python -c pass` (the interpreter alone, with this environment's site packages) and
`python -c "import wakepy"` (wakepy 1.0, the usual keep-awake package, imported and nothing
else). Targets: at most 2x `python -c pass`, and below the wakepy import.

For scale, the same rotation runs the floor of any keep-awake run on this machine: a Python
process that imports jeepney, takes logind's idle lock, runs `true` and lets go (`FLOOR`), with
nothing else: no session, no checks, no budget.

Run: `python bench/bench_xrs_run.py` (one JSON object on the last line of stdout); the services
must run (`sudo scripts/services start`), or the result says `"skipped"`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from functools import partial
from pathlib import Path

from _measure import load_services, report, stopwatch

__all__ = ["main", "timings"]

RUNS = 41
TARGET_MS = 10.0
REAL = ["run", "--", "true"]
LOGGING = ["run", "--backend", "keep-awake=log-keep-awake", "--", "true"]
QUICK = ["run", "-q", "--", "true"]


def _xrs() -> list[str]:
    """The `xrs` script installed with this interpreter, else the first on `PATH`."""
    script = Path(sysconfig.get_path("scripts")) / "xrs"
    if script.is_file():
        return [str(script)]
    found = shutil.which("xrs")
    return [found] if found else [sys.executable, "-m", "extended_runtime"]


def _once(arguments: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = stopwatch()
    subprocess.run([*_xrs(), *arguments], check=True, env=env, stderr=subprocess.DEVNULL)
    return stopwatch() - started


def _python(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = stopwatch()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return stopwatch() - started


#: The least a keep-awake run does: connect to the system bus, take logind's idle lock, run
#: the command, let go.
FLOOR = """
import subprocess
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
bus = open_dbus_connection(bus="SYSTEM", enable_fds=True)
logind = DBusAddress("/org/freedesktop/login1", bus_name="org.freedesktop.login1",
                     interface="org.freedesktop.login1.Manager")
call = new_method_call(logind, "Inhibit", "ssss", ("idle", "floor", "run", "block"))
lock = bus.send_and_get_reply(call).body[0]
subprocess.run(["true"], check=True)
lock.close()
bus.close()
"""

_COMMANDS: dict[str, Callable[[], float]] = {
    "real": partial(_once, REAL),
    "logging": partial(_once, LOGGING),
    "quick": partial(_once, QUICK),
    "python": partial(_python, "pass"),
    "wakepy": partial(_python, "import wakepy"),
    "floor": partial(_python, FLOOR),
}


def timings(runs: int = RUNS) -> dict[str, list[float]]:
    """Runs of every command in turn (after one warm-up each), in seconds."""
    for command in _COMMANDS.values():
        command()
    taken: dict[str, list[float]] = {name: [] for name in _COMMANDS}
    for _ in range(runs):
        for name, command in _COMMANDS.items():
            taken[name].append(command())
    return taken


def main() -> None:
    if not load_services():
        report({"benchmark": "xrs_run", "skipped": "run `sudo scripts/services start` first"})
        return
    taken = timings()
    names = ("real", "logging", "quick", "python", "wakepy", "floor")
    real, logging, quick, python, wakepy, floor = (
        statistics.median(taken[k]) * 1000 for k in names
    )
    added = statistics.median(a - b for a, b in zip(taken["real"], taken["logging"], strict=True))
    startup_ok = quick <= 2 * python and quick < wakepy
    report(
        {
            "benchmark": "xrs_run",
            "runs": RUNS,
            "real_ms": real,
            "logging_ms": logging,
            "added_ms": added * 1000,
            "real_ms_all": [t * 1000 for t in taken["real"]],
            "logging_ms_all": [t * 1000 for t in taken["logging"]],
            "quick_ms": quick,
            "quick_ms_all": [t * 1000 for t in taken["quick"]],
            "python_ms": python,
            "wakepy_ms": wakepy,
            "ratio_python": quick / python,
            "ratio_wakepy": quick / wakepy,
            "floor_ms": floor,
            "ratio_floor": quick / floor,
            "xrs": _xrs()[0],
            "wakepy_version": _version("wakepy"),
            "target_ms": TARGET_MS,
            "keep_awake_passed": added * 1000 <= TARGET_MS,
            "startup_passed": startup_ok,
            "passed": added * 1000 <= TARGET_MS and startup_ok,
        }
    )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
