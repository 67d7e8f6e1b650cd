"""CPU metering at scale: one reading per process tree, and cost that follows events.

The rule itself (60 s window, budgets per type, time before the start counting zero) is pinned
in `test_cpu_budget.py` through the public API. Here the engine's outputs are counted: which
trees it asks to read and how often, so a change that makes cost grow with running sessions
times time fails.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

from extended_runtime import (
    ErrorCode,
    ExtendedRuntimeSession,
    InvalidationReason,
    Policy,
    SessionState,
    SessionType,
)
from extended_runtime._core.engine import Engine
from extended_runtime._core.events import Output, SampleCpu, SessionInvalidated
from extended_runtime._core.metering import CpuReadings
from extended_runtime.testing import VirtualHost

from .helpers import T0

SECOND = timedelta(seconds=1)


def _samples(outputs: list[Output]) -> list[tuple[str, ...]]:
    return [o.trees for o in outputs if isinstance(o, SampleCpu)]


def _walk(engine: Engine, seconds: int, step: int = 5) -> list[Output]:
    """Advance in `step`-second moves (as a host wakes for each deadline)."""
    outputs: list[Output] = []
    for at in range(step, seconds + 1, step):
        outputs.extend(engine.advance(T0 + at * SECOND))
    return outputs


def test_idle_apps_of_a_source_that_reports_changes_are_never_sampled() -> None:
    engine = Engine(cpu=CpuReadings.PUSHED)
    outputs: list[Output] = []
    for number in range(500):
        app_id = f"org.example.m{number}"
        engine.register_app(app_id, SessionType.MINDFULNESS)
        outputs.extend(engine.start(f"s{number}", app_id, T0))
    outputs.extend(_walk(engine, 3_600))
    assert _samples(outputs) == []
    assert len(engine.running_sessions()) == 0  # all expired at the hour


def test_only_the_app_whose_load_changed_is_sampled() -> None:
    engine = Engine(cpu=CpuReadings.PUSHED)
    for number in range(100):
        app_id = f"org.example.m{number}"
        engine.register_app(app_id, SessionType.MINDFULNESS)
        engine.start(f"s{number}", app_id, T0)
    changed = engine.cpu_changed("org.example.m7", 0.0, T0)
    outputs = [*changed, *_walk(engine, 60)]
    assert set(_samples(outputs)) == {("org.example.m7",)}
    assert len(_samples(outputs)) == 12  # every 5 s for a minute


def test_a_tree_that_stopped_moving_is_no_longer_sampled() -> None:
    engine = Engine(cpu=CpuReadings.PUSHED)
    engine.register_app("org.example.m", SessionType.MINDFULNESS)
    engine.start("s", "org.example.m", T0)
    engine.cpu_changed("org.example.m", 0.0, T0)  # a load starts...
    engine.observe_cpu({"org.example.m": 2.0}, T0 + 5 * SECOND)
    engine.cpu_changed("org.example.m", 2.0, T0 + 5 * SECOND)  # ...and stops
    engine.observe_cpu({"org.example.m": 2.0}, T0 + 10 * SECOND)  # the tick: still
    assert _samples(_walk(engine, 600)) == []


def test_apps_of_one_process_share_one_reading_per_sample() -> None:
    engine = Engine(cpu=CpuReadings.POLLED)
    starts: list[Output] = []
    for number in range(50):
        app_id = f"org.example.p{number}"
        engine.register_app(app_id, SessionType.PHYSICAL_THERAPY, tree="pid:42")
        starts.extend(engine.start(f"s{number}", app_id, T0))
    assert set(_samples(starts)) == {("pid:42",)}  # each start asks a baseline of the one tree
    ticks = _samples(_walk(engine, 60))
    assert ticks == [("pid:42",)] * 12


def test_one_busy_tree_ends_each_of_its_sessions_by_its_own_budget() -> None:
    """0.75 cores for the whole window: over the background budget (0.5), under the
    frontmost one (1.0). Sessions started later count time before their start as zero."""
    engine = Engine(cpu=CpuReadings.POLLED)
    for app_id, mode in [
        ("org.example.pt", SessionType.PHYSICAL_THERAPY),
        ("org.example.m", SessionType.MINDFULNESS),
        ("org.example.late", SessionType.PHYSICAL_THERAPY),
    ]:
        engine.register_app(app_id, mode, tree="pid:42")
    engine.start("pt", "org.example.pt", T0)
    engine.start("m", "org.example.m", T0)
    engine.observe_cpu({"pid:42": 0.0}, T0)
    engine.start("late", "org.example.late", T0 + 30 * SECOND)
    engine.observe_cpu({"pid:42": 22.5}, T0 + 30 * SECOND)
    ended = engine.observe_cpu({"pid:42": 45.0}, T0 + 60 * SECOND)
    invalidated = [e for e in ended if isinstance(e, SessionInvalidated)]
    assert [(e.session_id, e.reason, e.error_code) for e in invalidated] == [
        ("pt", InvalidationReason.ERROR, ErrorCode.EXCEEDED_RESOURCE_LIMITS)
    ]
    assert set(engine.running_sessions()) == {"m", "late"}  # late: 22.5/60 = 0.375


def test_a_reading_that_has_not_moved_ends_nothing_and_asks_nothing() -> None:
    engine = Engine(cpu=CpuReadings.POLLED)
    engine.register_app("org.example.pt", SessionType.PHYSICAL_THERAPY, tree="pid:42")
    engine.start("pt", "org.example.pt", T0)
    engine.observe_cpu({"pid:42": 100.0}, T0)
    outputs = engine.observe_cpu({"pid:42": 100.0}, T0 + 5 * SECOND)
    assert outputs == []


def test_sessions_without_a_budget_are_not_metered_at_all() -> None:
    policy = replace(Policy(), cpu_budget_background=math.inf)
    engine = Engine(policy, cpu=CpuReadings.POLLED)
    engine.register_app("org.example.build", SessionType.PHYSICAL_THERAPY)
    outputs = [*engine.start("b", "org.example.build", T0), *_walk(engine, 600)]
    assert _samples(outputs) == []
    assert engine.running_sessions() == {"b": "org.example.build"}


def test_a_load_that_starts_after_the_session_is_metered_from_then() -> None:
    """The tree was still when the session started, so it had no record; the first change
    enrols the session with that reading as its baseline (the public API, virtual host)."""
    host = VirtualHost(now=T0)
    app = host.app("org.example.pt", SessionType.PHYSICAL_THERAPY)
    session = ExtendedRuntimeSession(app)
    session.start()
    host.advance(100)
    host.set_cpu_load(app, 0.75)  # 0.75 * 45 / 60 > 0.5 at the first sample 45 s later
    host.advance(44)
    assert session.state is SessionState.RUNNING
    host.advance(10)
    assert session.error is not None
    assert session.error.code is ErrorCode.EXCEEDED_RESOURCE_LIMITS
    ended = [e for e in host.events if isinstance(e, SessionInvalidated)]
    assert [e.at for e in ended] == [T0 + 145 * SECOND]
