"""The effects runner: outside the lock, in order per channel, guarded, never stuck.

Real threads and real waits; the hanging jobs block on an `Event` the test releases. Bounds on
waits are generous (seconds) and only stop a broken run from hanging the suite.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from extended_runtime._core.clock import SystemClock
from extended_runtime._hosts.effects import Effects, Job, spaced_by
from extended_runtime.abc import KeepAwakeBackend, Probe

Failure = tuple[str, str, bool]


class Runner:
    """An `Effects` with its reported failures kept."""

    def __init__(self, *, threaded: bool, timeout: float = 5.0) -> None:
        self.failures: list[Failure] = []
        self.reported = threading.Event()
        self.effects = Effects(self._report, threaded=threaded, timeout=timeout)

    def _report(self, job: Job, message: str, timed_out: bool) -> None:
        self.failures.append((job.effect, message, timed_out))
        self.reported.set()


@pytest.fixture
def threaded() -> Iterator[Runner]:
    runner = Runner(threaded=True, timeout=0.3)
    yield runner
    runner.effects.close(5)


def _job(effect: str, run: Callable[[], object]) -> Job:
    return Job(effect, "test-backend", run)


def _raise() -> None:
    raise OSError("the service is gone")


def test_inline_jobs_wait_for_flush_and_run_in_submission_order_across_channels() -> None:
    runner = Runner(threaded=False)
    done: list[str] = []
    effects = runner.effects
    effects.queue("a")
    effects.queue("b")
    effects.latest("level", lambda value: _job("level", lambda: done.append(f"level={value}")))
    effects.submit("a", _job("a1", lambda: done.append("a1")))
    effects.set("level", True)
    effects.submit("b", _job("b1", lambda: done.append("b1")))
    effects.submit("a", _job("a2", lambda: done.append("a2")))
    assert done == []
    effects.flush()
    assert done == ["a1", "level=True", "b1", "a2"]


def test_inline_a_raising_job_is_reported_and_the_rest_still_runs() -> None:
    runner = Runner(threaded=False)
    done: list[str] = []
    runner.effects.queue("a")
    runner.effects.submit("a", _job("first", _raise))
    runner.effects.submit("a", _job("second", lambda: done.append("second")))
    runner.effects.flush()
    assert done == ["second"]
    assert runner.failures == [("first", "OSError: the service is gone", False)]


def test_threaded_channels_keep_their_order(threaded: Runner) -> None:
    done: list[int] = []
    threaded.effects.queue("a")
    for number in range(200):
        threaded.effects.submit("a", _job("n", lambda n=number: done.append(n)))  # type: ignore[misc]
    assert threaded.effects.settle(5)
    assert done == list(range(200))


def test_a_latest_channel_merges_what_arrives_while_it_works(threaded: Runner) -> None:
    """CPU readings asked for during a reading are merged: a burst costs one more reading."""
    applied: list[frozenset[str]] = []
    taken, gate = threading.Event(), threading.Event()

    def read(trees: frozenset[str]) -> None:
        taken.set()
        gate.wait(5)
        applied.append(trees)

    threaded.effects.latest(
        "cpu", lambda trees: _job("cpu", lambda: read(trees)), merge=frozenset.union
    )
    threaded.effects.set("cpu", frozenset({"a"}))
    assert taken.wait(5)
    for trees in ({"b"}, {"c"}, {"b", "d"}):
        threaded.effects.set("cpu", frozenset(trees))
    gate.set()
    assert threaded.effects.settle(5)
    assert applied == [frozenset({"a"}), frozenset({"b", "c", "d"})]


def test_a_level_channel_applies_only_the_newest_value(threaded: Runner) -> None:
    applied: list[bool] = []
    taken, gate = threading.Event(), threading.Event()

    def apply(value: bool) -> None:
        taken.set()
        gate.wait(5)
        applied.append(value)

    threaded.effects.latest("keep-awake", lambda value: _job("keep-awake", lambda: apply(value)))
    threaded.effects.set("keep-awake", True)
    assert taken.wait(5)
    for value in (False, True, False):
        threaded.effects.set("keep-awake", value)
    gate.set()
    assert threaded.effects.settle(5)
    assert applied == [True, False]


def test_a_hanging_job_is_abandoned_and_the_channel_goes_on(threaded: Runner) -> None:
    gate = threading.Event()
    done: list[str] = []
    threaded.effects.queue("alerts")
    threaded.effects.submit("alerts", _job("alert", lambda: gate.wait(30)))
    threaded.effects.submit("alerts", _job("alert", lambda: done.append("next")))
    assert threaded.reported.wait(5)
    assert threaded.effects.settle(5)
    assert done == ["next"]
    assert threaded.failures == [("alert", "test-backend did not return within 0.3 s", True)]
    gate.set()


def test_a_hang_in_one_channel_delays_no_other(threaded: Runner) -> None:
    gate = threading.Event()
    other = threading.Event()
    threaded.effects.queue("alerts")
    threaded.effects.queue("audit")
    threaded.effects.submit("alerts", _job("alert", lambda: gate.wait(30)))
    threaded.effects.submit("audit", _job("record", other.set))
    assert other.wait(5)
    assert threaded.failures == []  # well before the alert's timeout
    gate.set()


def test_a_level_applied_late_is_applied_again_with_the_newest_value(threaded: Runner) -> None:
    """A hold that returns after its release was applied: the release is applied again."""
    gate = threading.Event()
    held: list[bool] = []

    def apply(value: bool) -> None:
        if value and not gate.is_set():
            gate.wait(30)  # the first hold hangs
        held.append(value)

    threaded.effects.latest("keep-awake", lambda value: _job("keep-awake", lambda: apply(value)))
    threaded.effects.set("keep-awake", True)
    assert threaded.reported.wait(5)  # abandoned
    threaded.effects.set("keep-awake", False)
    assert threaded.effects.settle(5)
    assert held == [False]
    gate.set()  # the abandoned hold returns at last
    for _ in range(100):
        if len(held) == 3:
            break
        threading.Event().wait(0.05)
    assert held == [False, True, False]


def test_a_failed_level_is_tried_again(threaded: Runner) -> None:
    attempts: list[bool] = []

    def apply(value: bool) -> None:
        attempts.append(value)
        if len(attempts) == 1:
            raise OSError("logind restarted")

    threaded.effects.latest("keep-awake", lambda value: _job("keep-awake", lambda: apply(value)))
    threaded.effects.set("keep-awake", False)
    assert threaded.reported.wait(5)
    for _ in range(100):  # the retry comes after about a second
        if len(attempts) == 2:
            break
        threading.Event().wait(0.05)
    assert attempts == [False, False]
    assert threaded.failures == [("keep-awake", "OSError: logind restarted", False)]


def test_settle_gives_up_at_its_bound(threaded: Runner) -> None:
    gate = threading.Event()
    runner = Runner(threaded=True, timeout=30)
    runner.effects.queue("a")
    runner.effects.submit("a", _job("a", lambda: gate.wait(30)))
    assert not runner.effects.settle(0.2)
    gate.set()
    assert runner.effects.settle(5)
    runner.effects.close(1)


def test_a_spaced_channel_delays_minor_values_and_never_a_release(threaded: Runner) -> None:
    """Keep-awake's relabels while held wait out the spacing and merge; a release does not."""
    applied: list[tuple[str | None, float]] = []
    arrived = threading.Condition()
    clock = SystemClock()

    def apply(value: str | None) -> None:
        with arrived:
            applied.append((value, clock.monotonic()))
            arrived.notify_all()

    def until(count: int) -> list[str | None]:
        with arrived:
            assert arrived.wait_for(lambda: len(applied) >= count, 5)
            return [value for value, _ in applied]

    threaded.effects.latest(
        "keep-awake",
        lambda value: _job("keep-awake", lambda: apply(value)),
        spacing=spaced_by(0.4, lambda last, new: last is not None and new is not None),
    )
    threaded.effects.set("keep-awake", "a")
    assert until(1) == ["a"]
    for label in ("a and 1 more", "a and 2 more", "a and 3 more"):
        threaded.effects.set("keep-awake", label)
    assert until(2) == ["a", "a and 3 more"]
    assert applied[1][1] - applied[0][1] >= 0.4
    threaded.effects.set("keep-awake", "b")
    threaded.effects.set("keep-awake", None)  # released before the relabel was due
    assert until(3) == ["a", "a and 3 more", None]
    assert applied[2][1] - applied[1][1] < 0.3
    # settling takes a spaced value at once
    threaded.effects.set("keep-awake", "c")
    assert until(4)[3] == "c"
    threaded.effects.set("keep-awake", "c and 1 more")
    settling = clock.monotonic()
    assert threaded.effects.settle(5)
    assert clock.monotonic() - settling < 0.3
    assert until(5)[4] == "c and 1 more"


class _CountingKeepAwake(KeepAwakeBackend):
    """A keep-awake backend that counts the calls it gets, and when the last release came."""

    name = "counting-keep-awake"

    def __init__(self) -> None:
        self.holds = 0
        self.releases = 0
        self.held = False
        self.released_at = 0.0

    def probe(self) -> Probe:
        return Probe(self.name, True, "counts")

    def hold(self, who: str, why: str) -> None:
        self.holds += 1
        self.held = True

    def release(self) -> None:
        self.releases += 1
        self.held = False
        self.released_at = time.monotonic()

    def close(self) -> None:
        self.release()


def test_a_burst_of_short_sessions_keeps_one_lock_and_a_longer_one_is_released_at_once() -> None:
    """`keep_awake_spacing`: a release waits `RELEASE_LINGER` after its hold was taken, so 50
    sessions started and ended one after another take and drop a lock a few times, not 50; a
    session that ran longer than that is released as soon as it ends."""
    from extended_runtime import Backends, EmbeddedHost, ExtendedRuntimeSession, SessionType
    from extended_runtime._hosts.base import RELEASE_LINGER

    keep = _CountingKeepAwake()
    host = EmbeddedHost(backends=Backends(keep_awake=keep))
    try:
        app = host.app("org.example.burst", SessionType.PHYSICAL_THERAPY)
        for _ in range(50):
            session = ExtendedRuntimeSession(app)
            session.start()
            session.invalidate()
        assert host.settle()
        assert not keep.held
        assert keep.holds <= 5, keep.holds
        longer = ExtendedRuntimeSession(app)
        longer.start()
        assert host.settle()
        time.sleep(RELEASE_LINGER * 2)
        ended = time.monotonic()
        longer.invalidate()
        deadline = ended + 2
        while keep.held and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not keep.held
        assert keep.released_at - ended < RELEASE_LINGER / 2
    finally:
        host.close()
