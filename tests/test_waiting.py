"""How the embedded host's timer thread sleeps: real timerfds on the wall clock and on BOOTTIME.

These arm the kernel's timers for real (`TimerfdWaiter`) and check what ends each sleep; the
host's use of them is in `test_clock_set.py` and, in real processes, `test_real_time.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from extended_runtime._core.clock import SystemClock
from extended_runtime._hosts.embedded import _spent
from extended_runtime._hosts.waiting import TimerfdWaiter, Woke

from .helpers import T0
from .services import require_root
from .test_real_time import set_clock_to_itself

CLOCK = SystemClock()


@pytest.fixture
def waiter() -> Iterator[tuple[TimerfdWaiter, threading.Condition]]:
    lock = threading.Condition()
    made = TimerfdWaiter(lock)
    yield made, lock
    made.close()


def _sleep(
    waiter: TimerfdWaiter,
    lock: threading.Condition,
    start_in: float | None,
    budget_in: float | None,
) -> tuple[Woke, float]:
    with lock:
        now = CLOCK.now()
        start = None if start_in is None else now + timedelta(seconds=start_in)
        began = CLOCK.monotonic()
        woke = waiter.sleep(start, budget_in, now)
        return woke, CLOCK.monotonic() - began


def test_the_budget_timer_says_its_deadline_came(
    waiter: tuple[TimerfdWaiter, threading.Condition],
) -> None:
    woke, slept = _sleep(*waiter, start_in=None, budget_in=0.2)
    assert woke == Woke(clock_was_set=False, budget_due=True)
    assert slept >= 0.2


def test_the_start_timer_ends_the_sleep_at_the_wall_clock_instant(
    waiter: tuple[TimerfdWaiter, threading.Condition],
) -> None:
    woke, slept = _sleep(*waiter, start_in=0.2, budget_in=30.0)
    assert woke == Woke(clock_was_set=False, budget_due=False)
    assert 0.19 <= slept < 20


def test_wake_ends_a_sleep_without_a_deadline(
    waiter: tuple[TimerfdWaiter, threading.Condition],
) -> None:
    made, lock = waiter

    def wake_soon() -> None:
        threading.Event().wait(0.1)
        with lock:
            made.wake()

    thread = threading.Thread(target=wake_soon)
    thread.start()
    woke, slept = _sleep(made, lock, start_in=None, budget_in=None)
    thread.join()
    assert woke == Woke()
    assert slept < 20


@pytest.mark.parametrize(
    ("start_in", "budget_in"),
    [(3600.0, None), (None, 3600.0)],
    ids=["a start waits", "only a running session"],
)
def test_a_set_of_the_clock_ends_the_sleep_and_says_so(
    waiter: tuple[TimerfdWaiter, threading.Condition],
    start_in: float | None,
    budget_in: float | None,
) -> None:
    require_root("clock_settime")
    made, lock = waiter
    thread = threading.Timer(0.1, set_clock_to_itself)
    thread.start()
    woke, slept = _sleep(made, lock, start_in=start_in, budget_in=budget_in)
    thread.join()
    assert woke.clock_was_set
    assert slept < 20


def test_a_spent_budget_is_due_though_the_wall_clock_lags_unless_a_start_comes_first() -> None:
    """When BOOTTIME says the deadline came and NTP slewing keeps the wall clock a little
    behind, the host advances to the deadline; never past a scheduled start's instant."""
    lagging = T0 - timedelta(milliseconds=3)
    assert _spent(T0, None, lagging) == T0
    assert _spent(T0, T0 + timedelta(seconds=1), lagging) == T0
    assert _spent(T0, T0 - timedelta(milliseconds=1), lagging) == lagging  # the start first
    assert _spent(None, None, lagging) == lagging
    assert _spent(T0, None, T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=1)


def test_a_host_without_timerfds_polls_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A kernel without timerfd, or no descriptors left: the host warns, polls, and its
    sessions still end on time."""
    from extended_runtime import (
        EmbeddedHost,
        ExtendedRuntimeSession,
        ExtendedRuntimeSessionDelegate,
        ExtendedRuntimeSessionError,
        InvalidationReason,
        SessionType,
    )
    from extended_runtime._backends.select import Backends
    from extended_runtime._hosts import waiting

    from .helpers import short_policy

    def no_timerfd(lock: object) -> None:
        raise OSError(24, "Too many open files")

    class Ended(ExtendedRuntimeSessionDelegate):
        def __init__(self) -> None:
            self.reason: InvalidationReason | None = None
            self.event = threading.Event()

        def did_invalidate(
            self,
            session: ExtendedRuntimeSession,
            reason: InvalidationReason,
            error: ExtendedRuntimeSessionError | None,
        ) -> None:
            self.reason = reason
            self.event.set()

    monkeypatch.setattr(waiting, "TimerfdWaiter", no_timerfd)
    ended = Ended()
    with EmbeddedHost(short_policy(self_care=0.6), backends=Backends(cpu=None)) as host:
        assert isinstance(host._waiter, waiting.PollingWaiter)
        app = host.app("org.example.care", SessionType.SELF_CARE)
        ExtendedRuntimeSession(app, ended).start()
        assert ended.event.wait(10)
    assert ended.reason is InvalidationReason.EXPIRED
    assert any("no timerfd" in r.getMessage() for r in caplog.records)
