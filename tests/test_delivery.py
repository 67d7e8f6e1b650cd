"""Delegate delivery: every posted call runs once, in order, on its loop or on the thread.

Real asyncio loops and threads. A loop that stops or closes with calls still queued is the case
the embedded host meets at interpreter exit (`asyncio.run` has returned); those calls must still
run, in the order they were posted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from extended_runtime._hosts.delivery import Delivery


@pytest.fixture
def delivery() -> Iterator[Delivery]:
    delivering = Delivery()
    yield delivering
    delivering.close(5)


def _recorder(seen: list[tuple[str, str]]) -> Callable[[str], Callable[[], None]]:
    def make(name: str) -> Callable[[], None]:
        return lambda: seen.append((name, threading.current_thread().name))

    return make


def test_calls_without_a_loop_run_in_order_on_the_delegate_thread(delivery: Delivery) -> None:
    seen: list[tuple[str, str]] = []
    call = _recorder(seen)
    for number in range(50):
        delivery.post(call(str(number)), None)
    assert delivery.drain(5)
    assert seen == [(str(n), "xrs-delegate") for n in range(50)]


def test_calls_for_a_running_loop_run_on_it(delivery: Delivery) -> None:
    seen: list[tuple[str, str]] = []
    call = _recorder(seen)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        delivery.post(call("first"), loop)
        delivery.post(call("second"), loop)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert seen == [("first", "MainThread"), ("second", "MainThread")]
    assert delivery.idle()


def test_calls_stranded_on_a_stopped_loop_are_rescued_in_order(delivery: Delivery) -> None:
    seen: list[tuple[str, str]] = []
    call = _recorder(seen)
    loop = asyncio.new_event_loop()
    try:
        for name in ("did_start", "will_expire", "did_invalidate"):
            delivery.post(call(name), loop)  # the loop never runs again
        assert delivery.drain(5)
    finally:
        loop.close()
    assert seen == [
        ("did_start", "xrs-delegate"),
        ("will_expire", "xrs-delegate"),
        ("did_invalidate", "xrs-delegate"),
    ]


def test_a_call_for_a_closed_loop_follows_that_loops_stranded_calls(delivery: Delivery) -> None:
    seen: list[tuple[str, str]] = []
    call = _recorder(seen)
    loop = asyncio.new_event_loop()
    delivery.post(call("did_start"), loop)
    loop.close()
    delivery.post(call("did_invalidate"), loop)
    assert delivery.drain(5)
    assert [name for name, _ in seen] == ["did_start", "did_invalidate"]


def test_a_rescued_call_does_not_run_again_when_its_loop_runs(delivery: Delivery) -> None:
    seen: list[tuple[str, str]] = []
    loop = asyncio.new_event_loop()
    try:
        delivery.post(_recorder(seen)("once"), loop)
        assert delivery.drain(5)
        loop.run_until_complete(asyncio.sleep(0))  # the loop runs its queued callback now
    finally:
        loop.close()
    assert seen == [("once", "xrs-delegate")]


def test_drain_gives_up_at_its_bound_behind_a_hanging_call(delivery: Delivery) -> None:
    gate = threading.Event()

    def hang() -> None:
        gate.wait(30)

    delivery.post(hang, None)
    assert not delivery.drain(0.2)
    gate.set()
    assert delivery.drain(5)


def test_a_raising_call_does_not_stop_the_thread(delivery: Delivery) -> None:
    seen: list[tuple[str, str]] = []

    def fail() -> None:
        raise RuntimeError("app bug")

    delivery.post(fail, None)
    delivery.post(_recorder(seen)("after"), None)
    assert delivery.drain(5)
    assert seen == [("after", "xrs-delegate")]
