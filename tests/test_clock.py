"""Time is read in one place: the clock module."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from extended_runtime._core.clock import SystemClock, as_utc, to_seconds

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "extended_runtime"
FORBIDDEN = {
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "sleep"),
    ("time", "perf_counter"),
    ("time", "time_ns"),
    ("time", "monotonic_ns"),
    ("time", "clock_gettime"),
    ("time", "clock_gettime_ns"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}


def _time_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in FORBIDDEN
        ):
            found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found.extend(f"{path.name}:{node.lineno} from time import {a.name}" for a in node.names)
    return found


def test_only_the_clock_module_reads_the_time() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != PACKAGE / "_core" / "clock.py":
            offenders.extend(_time_reads(path))
    assert offenders == []


def test_the_scan_catches_a_time_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom datetime import datetime\nx = datetime.now()\n")
    assert _time_reads(sample) == ["sample.py:3 datetime.now"]


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC


def test_as_utc_converts_other_zones_without_moving_the_instant() -> None:
    paris = timezone(timedelta(hours=1))
    value = datetime(2026, 1, 5, 7, 30, tzinfo=paris)
    assert as_utc(value) == datetime(2026, 1, 5, 6, 30, tzinfo=UTC)
    assert as_utc(value).tzinfo is UTC


def test_as_utc_refuses_naive_and_non_datetimes() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        as_utc(datetime(2026, 1, 5, 6, 30))  # noqa: DTZ001
    with pytest.raises(TypeError, match="must be a datetime with a time zone, not str"):
        as_utc("2026-01-05T06:30:00Z")


def test_to_seconds_accepts_numbers_and_timedeltas() -> None:
    assert to_seconds(1.5) == timedelta(seconds=1.5)
    assert to_seconds(timedelta(minutes=1)) == timedelta(minutes=1)
    with pytest.raises(ValueError, match="must not be negative"):
        to_seconds(-1)
    with pytest.raises(TypeError):
        to_seconds("10")
    with pytest.raises(TypeError):
        to_seconds(True)


def test_elapsed_time_counts_on_with_the_wall_clock() -> None:
    """`elapsed()` (BOOTTIME on Linux) moves with the wall clock while nothing sets it: the
    difference of the two stays put, which is how a host tells a clock set from time passing."""
    clock = SystemClock()
    gaps = []
    for _ in range(3):
        wall, elapsed = clock.now().timestamp(), clock.elapsed()
        gaps.append(wall - elapsed)
        clock.sleep(0.05)
    assert max(gaps) - min(gaps) < 0.01
    assert clock.elapsed() > 0
