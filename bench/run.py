"""Run every benchmark, each in a fresh subprocess, and write `results.json` and `results.md`.

Usage: `python bench/run.py` from anywhere (it finds its own folder). Each benchmark module pins
itself to one CPU and prints one JSON object on the last line of its stdout; this script adds the
machine (Python version, CPU model from /proc/cpuinfo) and the date (from the package's
`SystemClock`), then writes `bench/results.json` and the table in `bench/results.md`.
"""

from __future__ import annotations

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
BENCHMARKS = ("bench_virtual_host.py", "bench_memory.py")
_CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table."""

    benchmark: str
    ours: str
    peer: str
    ratio: str
    target: str
    passed: bool


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


def rows(virtual: dict[str, Any], memory: dict[str, Any]) -> list[Row]:
    """The table: one row per measured figure."""
    firings = virtual["timer_firings"]
    traced, peer_traced = (
        memory["tracemalloc_bytes_per_session"],
        memory["peer_tracemalloc_bytes_per_session"],
    )
    return [
        Row(
            f"VirtualHost: {virtual['apps']:,} apps x 24 simulated h, wall time on one core "
            f"(median of {virtual['rounds']})",
            f"{virtual['wall_seconds']:.3f} s",
            f"{virtual['peer_wall_seconds']:.3f} s (`sched`, {firings:,} firings)",
            f"{virtual['ratio']:.1f}x",
            f"< {virtual['target_seconds']:g} s",
            bool(virtual["passed"]),
        ),
        Row(
            "VirtualHost: simulated seconds per wall second",
            f"{virtual['simulated_seconds_per_wall_second']:,.0f}",
            f"{virtual['simulated_seconds'] / virtual['peer_wall_seconds']:,.0f}",
            f"{virtual['peer_wall_seconds'] / virtual['wall_seconds']:.2f}x",
            "-",
            True,
        ),
        Row(
            "VirtualHost: wall time per timer firing",
            f"{virtual['us_per_firing']:.1f} us",
            f"{virtual['peer_us_per_firing']:.1f} us",
            f"{virtual['ratio']:.1f}x",
            "-",
            True,
        ),
        Row(
            f"Engine memory per scheduled session at {memory['sessions']:,} (RSS growth)",
            f"{memory['bytes_per_session']:.1f} B",
            f"{memory['peer_bytes_per_session']:.1f} B (`sched`)",
            f"{memory['ratio']:.2f}x",
            f"< {memory['target_bytes']} B",
            bool(memory["passed"]),
        ),
        Row(
            "Engine memory per scheduled session (tracemalloc cross-check)",
            f"{traced:.1f} B",
            f"{peer_traced:.1f} B",
            f"{traced / peer_traced:.2f}x",
            "-",
            True,
        ),
        Row(
            "Engine memory per scheduled session, ids and dates made outside (RSS)",
            f"{memory['engine_only_bytes_per_session']:.1f} B",
            "-",
            "-",
            "-",
            True,
        ),
    ]


def markdown(info: dict[str, Any], table: list[Row], results: dict[str, Any]) -> str:
    """`results.md`: the table, the machine, what happened and where the bytes go."""
    virtual, memory = results["virtual_host_day"], results["engine_memory"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {info['date']} on {info['cpu_model']} ({info['logical_cpus']} logical CPUs, "
        f"each benchmark pinned to CPU {virtual['cpu']}), {info['python']}, "
        f"{info['platform']}. `python bench/run.py` took {results['total_seconds']:.1f} s.",
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
    walls = ", ".join(f"{w:.3f}" for w in virtual["wall_seconds_all"])
    lines += [
        "",
        "## The simulated day",
        "",
        f"Rounds (wall s): {walls}; CPU time of the median round {virtual['cpu_seconds']:.3f} s.",
        "",
        "| What happened | Count |",
        "|---|---|",
    ]
    counts = dict(virtual["counts"])
    reasons = counts.pop("reasons")
    lines += [f"| {name.replace('_', ' ')} | {value:,} |" for name, value in counts.items()]
    lines += [f"| did_invalidate: {name} | {value:,} |" for name, value in reasons.items()]
    lines += [
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
        "list costs are per entry, their whole table divided by the sessions. The `_App(...)` "
        "line below also carries the growth of `engine._apps`.",
    ]
    lines += ["", "| tracemalloc, by line | Bytes per session | Blocks |", "|---|---|---|"]
    lines += [
        f"| `{line['where']}` | {line['per_session']:.1f} | {line['blocks_per_session']:.2f} |"
        for line in memory["breakdown"]
    ]
    lines += ["", "Peer (`sched.scheduler`), by line:", ""]
    lines += ["| tracemalloc, by line | Bytes per session | Blocks |", "|---|---|---|"]
    lines += [
        f"| `{line['where']}` | {line['per_session']:.1f} | {line['blocks_per_session']:.2f} |"
        for line in memory["peer_breakdown"]
    ]
    return "\n".join(lines) + "\n"


def _block(name: str, size: float) -> float:
    """Bytes an object really takes: pymalloc rounds small requests up to 16 bytes."""
    if "per entry" in name or size > 512:
        return size
    return float(-(-int(size) // 16) * 16)


def main() -> None:
    def run_all() -> dict[str, Any]:
        return {name: run_benchmark(name) for name in BENCHMARKS}

    by_script, elapsed = measure(run_all)
    results: dict[str, Any] = {r["benchmark"]: r for r in by_script.values()}
    results["total_seconds"] = elapsed.wall
    info = machine()
    table = rows(results["virtual_host_day"], results["engine_memory"])
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
