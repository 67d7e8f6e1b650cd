"""The timerfd module, on the real kernel: armed, read back, fired, and cancelled by a clock set.

The wall clock is never moved: `clock_settime(CLOCK_REALTIME, now)` sets it to the time it
already shows, which is enough for the kernel to cancel `cancel_on_set` timers (SERVICES.md).
The alarm clocks need CAP_WAKE_ALARM, which root has here; a child process without it shows the
kernel's refusal.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from extended_runtime._backends.linux.timerfd import ClockId, ClockWasSet, Setting, Timer

from . import services

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture(autouse=True)
def _root() -> None:
    services.require_root("CAP_WAKE_ALARM, setting the clock and dropping capabilities")


def set_clock_to_now() -> None:
    """Set the wall clock to the time it shows (it does not move; cancel-on-set timers hear)."""
    time.clock_settime_ns(time.CLOCK_REALTIME, time.clock_gettime_ns(time.CLOCK_REALTIME))


def test_a_relative_boottime_timer_reads_back_and_fires_once() -> None:
    with Timer(ClockId.BOOTTIME) as timer:
        assert timer.get() == Setting(0.0, 0.0)
        armed = time.clock_gettime(time.CLOCK_BOOTTIME)
        timer.set(0.05)
        left = timer.get()
        assert 0.0 < left.left <= 0.05
        assert left.interval == 0.0
        assert timer.read() == 1
        assert time.clock_gettime(time.CLOCK_BOOTTIME) - armed >= 0.05
        assert timer.get() == Setting(0.0, 0.0)  # a one-shot timer is disarmed once it fired


@pytest.mark.parametrize("clock", [ClockId.REALTIME, ClockId.REALTIME_ALARM])
def test_an_absolute_wall_clock_timer_fires_at_its_instant(clock: ClockId) -> None:
    with Timer(clock) as timer:
        at = time.time() + 0.05
        timer.set(at, absolute=True)
        assert 0.0 < timer.get().left <= 0.05
        assert timer.read() == 1
        assert time.time() >= at


def test_an_absolute_boottime_alarm_timer_fires_at_its_instant() -> None:
    with Timer(ClockId.BOOTTIME_ALARM) as timer:
        at = time.clock_gettime(time.CLOCK_BOOTTIME) + 0.05
        timer.set(at, absolute=True)
        assert timer.read() == 1
        assert time.clock_gettime(time.CLOCK_BOOTTIME) >= at


def test_an_instant_in_the_past_fires_at_once() -> None:
    with Timer(ClockId.REALTIME, nonblocking=True) as timer:
        timer.set(time.time() - 3600, absolute=True)
        assert timer.read() == 1
        timer.set(0.0, absolute=True)  # the epoch itself: still an instant, not "disarm"
        assert timer.read() == 1


def test_an_interval_counts_every_expiration_since_the_last_read() -> None:
    with Timer(ClockId.MONOTONIC) as timer:
        timer.set(0.01, interval=0.01)
        assert timer.get().interval == pytest.approx(0.01)
        time.sleep(0.055)
        assert timer.read() >= 4
        timer.disarm()
        assert timer.get() == Setting(0.0, 0.0)


def test_a_disarmed_alarm_timer_does_not_fire_though_get_remembers_its_instant() -> None:
    """The quirk the module documents: `get` may still count down to the cancelled instant,
    but the timer does not fire."""
    with Timer(ClockId.REALTIME_ALARM, nonblocking=True) as timer:
        timer.set(time.time() + 0.1, absolute=True)
        timer.disarm()
        assert timer.get().left <= 0.1  # 0.0 where the kernel forgets the instant; not here
        time.sleep(0.15)
        with pytest.raises(BlockingIOError):
            timer.read()  # it did not fire
        assert timer.get() == Setting(0.0, 0.0)


def test_set_returns_the_previous_setting_and_disarm_stops_the_timer() -> None:
    with Timer(ClockId.BOOTTIME, nonblocking=True) as timer:
        assert timer.set(60.0) == Setting(0.0, 0.0)
        previous = timer.set(120.0)
        assert 59.0 < previous.left <= 60.0
        previous = timer.disarm()
        assert 119.0 < previous.left <= 120.0
        time.sleep(0.01)
        with pytest.raises(BlockingIOError):
            timer.read()


def test_a_non_blocking_timer_that_has_not_fired_raises_blocking_io_error() -> None:
    with Timer(ClockId.BOOTTIME, nonblocking=True) as timer:
        timer.set(60.0)
        with pytest.raises(BlockingIOError) as caught:
            timer.read()
        assert caught.value.errno == errno.EAGAIN


def test_setting_the_wall_clock_cancels_a_cancel_on_set_timer_once() -> None:
    with Timer(ClockId.REALTIME) as timer:
        at = time.time() + 60
        timer.set(at, absolute=True, cancel_on_set=True)
        set_clock_to_now()
        started = time.monotonic()
        with pytest.raises(ClockWasSet) as caught:
            timer.read()
        assert time.monotonic() - started < 0.5
        assert caught.value.errno == errno.ECANCELED
        assert isinstance(caught.value, OSError)
        assert 58.0 < timer.get().left <= 60.0  # still armed for its instant


def test_without_cancel_on_set_a_clock_set_goes_unnoticed() -> None:
    with Timer(ClockId.REALTIME, nonblocking=True) as timer:
        timer.set(time.time() + 60, absolute=True)
        set_clock_to_now()
        with pytest.raises(BlockingIOError):
            timer.read()


def test_cancel_on_set_needs_an_absolute_time_and_times_are_not_negative() -> None:
    with Timer(ClockId.REALTIME) as timer:
        with pytest.raises(ValueError, match="absolute timers only"):
            timer.set(1.0, cancel_on_set=True)
        with pytest.raises(ValueError, match="negative"):
            timer.set(-1.0)


def test_the_timer_joins_a_select_loop_and_closes() -> None:
    import selectors

    timer = Timer(ClockId.BOOTTIME, nonblocking=True)
    with selectors.DefaultSelector() as selector:
        selector.register(timer, selectors.EVENT_READ)
        assert selector.select(0) == []
        timer.set(0.01)
        (ready,) = selector.select(1)
        assert ready[0].fileobj is timer
        selector.unregister(timer)
    fd = timer.fileno()
    timer.close()
    assert timer.closed
    timer.close()  # again: nothing happens
    with pytest.raises(ValueError, match="closed"):
        timer.get()
    with pytest.raises(OSError) as caught:
        os.fstat(fd)
    assert caught.value.errno == errno.EBADF


WITHOUT_CAP = """
import errno
from extended_runtime._backends.linux.timerfd import ClockId, Timer
for clock in (ClockId.REALTIME_ALARM, ClockId.BOOTTIME_ALARM):
    try:
        Timer(clock)
    except OSError as error:
        print(clock.name, errno.errorcode[error.errno], error.strerror)
Timer(ClockId.REALTIME).close()
print("REALTIME ok")
"""


def test_without_cap_wake_alarm_the_alarm_clocks_are_refused_with_eperm() -> None:
    """A child whose capability bounding set lacks CAP_WAKE_ALARM (root keeps the rest)."""
    command = ["setpriv", "--bounding-set=-wake_alarm", sys.executable, "-c", WITHOUT_CAP]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "REALTIME_ALARM EPERM timerfd_create(REALTIME_ALARM): Operation not permitted",
        "BOOTTIME_ALARM EPERM timerfd_create(BOOTTIME_ALARM): Operation not permitted",
        "REALTIME ok",
    ]
