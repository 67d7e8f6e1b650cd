"""The daemon's full garbage collections run between timers (`_daemon/interpreter.py`).

The tests make real cyclic garbage that only a full pass can free (a cycle that
lived long enough to reach the oldest generation, then dropped) and watch it through a weak
reference, so what is asserted is whether CPython's collector really ran, not a counter of ours.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import timedelta

import pytest

from extended_runtime import Backends, ExtendedRuntimeSession, Policy
from extended_runtime._daemon.host import DaemonHost
from extended_runtime._daemon.interpreter import (
    BACKSTOP,
    QUIET,
    STOCK,
    collect_if_due,
    quiet_collections,
)

from .helpers import ALARM, eventually


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _old_cyclic_garbage() -> weakref.ref[_Cycle]:
    """A cycle in the oldest generation, no longer referenced: only a full pass frees it.
    Afterwards a full pass is owed (`STOCK` middle passes since the last full one)."""
    cycle = _Cycle()
    gc.collect(1)  # the cycle, still referenced, moves to the oldest generation
    ref = weakref.ref(cycle)
    del cycle
    for _ in range(STOCK):
        gc.collect(1)  # the middle passes that owe a full one; none of them frees the cycle
    assert ref() is not None
    return ref


@pytest.fixture
def quiet() -> Iterator[None]:
    with quiet_collections():
        yield


def test_full_passes_wait_for_the_backstop_while_in_force_and_not_after() -> None:
    with quiet_collections():
        assert gc.get_threshold()[2] == BACKSTOP
    assert gc.get_threshold()[2] == STOCK


@pytest.mark.usefixtures("quiet")
def test_a_full_pass_owed_runs_in_a_quiet_gap_only() -> None:
    ref = _old_cyclic_garbage()
    assert not collect_if_due(QUIET / 10)  # a timer is due soon: the pass waits
    assert ref() is not None
    assert collect_if_due(QUIET * 2)
    assert ref() is None
    assert not collect_if_due(None)  # nothing is owed any more


@pytest.mark.usefixtures("quiet")
def test_no_pass_runs_when_none_is_owed() -> None:
    gc.collect()
    cycle = _Cycle()
    gc.collect(1)
    ref = weakref.ref(cycle)
    del cycle
    assert not collect_if_due(None)  # fewer than STOCK middle passes since the last full one
    assert ref() is not None
    gc.collect()
    assert ref() is None


@pytest.mark.usefixtures("quiet")
def test_the_daemons_timer_thread_runs_the_pass_owed_before_it_sleeps() -> None:
    host = DaemonHost(Policy(), backends=Backends(cpu=None))
    try:
        app = host.app("org.example.collect", ALARM)
        ref = _old_cyclic_garbage()
        # an alarm an hour away: the timer thread wakes for it, arms it and goes to sleep
        ExtendedRuntimeSession(app).start_at(host.now + timedelta(hours=1))
        assert eventually(lambda: ref() is None)
    finally:
        host.close()
