"""The wake alarm backends: an alarm-clock timerfd (for real) and the RTC's `wakealarm`.

This machine has no RTC (`/sys/class/rtc` is empty), so nothing can actually wake it, and the
RTC backend is tested against a folder laid out like `/sys/class/rtc/rtc0`: a plain file for
the published contract, and a named pipe that records each write, to show the kernel's rule
(clear with 0, then write the new instant) is followed. The timerfd backend is tested on the
real kernel, read back through `timerfd_gettime`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extended_runtime import EmbeddedHost
from extended_runtime._backends.linux.wakealarm import RtcWakeAlarm, TimerfdWakeAlarm
from extended_runtime._backends.select import survey
from extended_runtime.abc import WakeAlarmBackend
from extended_runtime.testing.contracts import WakeAlarmContract

from . import services

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture(autouse=True)
def _root() -> None:
    services.require_root("CAP_WAKE_ALARM and dropping capabilities")


def rtc_folder(tmp_path: Path) -> Path:
    """A folder laid out like the kernel's `/sys/class/rtc/rtc0` (this machine has no RTC)."""
    rtc = tmp_path / "class" / "rtc" / "rtc0"
    rtc.mkdir(parents=True)
    (rtc / "wakealarm").write_text("\n")
    (rtc / "name").write_text("rtc_cmos\n")
    return rtc


class TestTimerfdWakeAlarmContract(WakeAlarmContract):
    """The published contract; `armed_at` is what the backend armed (the contract's instants are
    in the past, where the kernel fires a timer at once: the tests below read the kernel)."""

    def make_backend(self) -> WakeAlarmBackend:
        return TimerfdWakeAlarm()

    def armed_at(self, backend: WakeAlarmBackend) -> datetime | None:
        assert isinstance(backend, TimerfdWakeAlarm)
        return backend.armed_at


class TestRtcWakeAlarmContract(WakeAlarmContract):
    """The published contract against a folder laid out like sysfs, read back from the file."""

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.root = rtc_folder(tmp_path)

    def make_backend(self) -> WakeAlarmBackend:
        return RtcWakeAlarm(self.root)

    def armed_at(self, backend: WakeAlarmBackend) -> datetime | None:
        assert isinstance(backend, RtcWakeAlarm)
        return backend.armed_at


def test_the_timerfd_alarm_is_armed_in_the_kernel_for_the_instant() -> None:
    backend = TimerfdWakeAlarm()
    try:
        at = datetime.now(UTC) + timedelta(hours=1)
        backend.arm(at)
        left = backend.setting().left
        assert 3598.0 < left <= 3600.0
        backend.arm(at - timedelta(minutes=30))  # an earlier start replaces it
        assert 1798.0 < backend.setting().left <= 1800.0
        backend.arm(None)
        assert backend.setting().left == 0.0
        assert backend.armed_at is None
    finally:
        backend.close()


def test_the_timerfd_alarm_fires_at_its_instant_and_goes_with_close() -> None:
    backend = TimerfdWakeAlarm()
    backend.arm(datetime.now(UTC) + timedelta(seconds=0.1))
    assert backend.setting().left > 0.0
    time.sleep(0.15)
    assert backend.setting().left == 0.0  # fired: the kernel keeps nothing armed
    backend.arm(datetime.now(UTC) + timedelta(hours=1))
    backend.close()
    assert backend.setting().left == 0.0
    assert backend.armed_at is None


def test_the_timerfd_probe_says_this_machine_has_no_rtc(tmp_path: Path) -> None:
    probe = TimerfdWakeAlarm(rtc_class=tmp_path).probe()
    assert probe.available
    assert "no RTC" in probe.detail
    assert "nothing can wake it from suspend" in probe.detail


def test_the_timerfd_probe_with_an_rtc(tmp_path: Path) -> None:
    rtc = rtc_folder(tmp_path)
    probe = TimerfdWakeAlarm(rtc_class=rtc.parent).probe()
    assert probe == probe.__class__(
        "timerfd-alarm", True, "a CLOCK_REALTIME_ALARM timer wakes the machine through its RTC"
    )


PROBE = """
from extended_runtime._backends.select import survey
for candidate in survey(everything=True).candidates:
    if candidate.capability == "wake-alarm":
        probe = candidate.probe
        print(probe.name, probe.available, candidate.chosen, probe.detail, sep="|")
"""


def test_without_cap_wake_alarm_the_probe_says_why_and_the_next_candidate_is_tried() -> None:
    """A child whose capability bounding set lacks CAP_WAKE_ALARM (root keeps the rest)."""
    command = ["setpriv", "--bounding-set=-wake_alarm", sys.executable, "-c", PROBE]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()]
    assert rows == [
        [
            "timerfd-alarm",
            "False",
            "False",
            "the kernel refuses alarm timers to this process (EPERM): it lacks CAP_WAKE_ALARM",
        ],
        [
            "rtc-wakealarm",
            "False",
            "False",
            "no RTC wake alarm here (/sys/class/rtc/rtc0/wakealarm is missing)",
        ],
        ["log-wake-alarm", "False", "True", "logs only: does not wake the machine"],
    ]


def test_the_embedded_host_arms_a_kernel_alarm_timer_here() -> None:
    wake = survey().backends.wake_alarm
    assert isinstance(wake, TimerfdWakeAlarm)
    wake.close()


@pytest.fixture
def recorded_writes(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """An RTC folder whose `wakealarm` is a named pipe: each write the backend makes is kept."""
    rtc = tmp_path / "rtc0"
    rtc.mkdir()
    fifo = rtc / "wakealarm"
    os.mkfifo(fifo)
    writes: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with fifo.open(encoding="ascii") as pipe:  # blocks until a writer opens it
                writes.extend(line for line in pipe.read().splitlines() if line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    yield rtc, writes
    stop.set()
    with fifo.open("w"):  # let the reader's last open return
        pass
    reader.join(2)


def wait_for(writes: list[str], count: int) -> list[str]:
    deadline = time.monotonic() + 10  # a bound for a loaded machine, not a timing check
    while len(writes) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return list(writes)


def test_the_rtc_is_cleared_then_armed_for_the_instant_rounded_down(
    recorded_writes: tuple[Path, list[str]],
) -> None:
    root, writes = recorded_writes
    backend = RtcWakeAlarm(root)
    at = datetime(2026, 12, 3, 6, 30, 0, 900_000, tzinfo=UTC)  # the RTC counts whole seconds
    backend.arm(at)
    assert wait_for(writes, 2) == ["0", str(int(at.timestamp()))]
    backend.arm(at)  # the same instant again: nothing is written
    backend.arm(at + timedelta(hours=1))
    assert wait_for(writes, 4) == ["0", "1796279400", "0", "1796283000"]
    backend.arm(None)
    assert wait_for(writes, 5)[4:] == ["0"]


def test_the_rtc_probe_says_when_there_is_no_rtc(tmp_path: Path) -> None:
    probe = RtcWakeAlarm(tmp_path / "rtc0").probe()
    assert not probe.available
    assert probe.detail == f"no RTC wake alarm here ({tmp_path}/rtc0/wakealarm is missing)"
    assert RtcWakeAlarm(rtc_folder(tmp_path)).probe().available


def test_the_host_disarms_the_alarm_when_it_closes(tmp_path: Path) -> None:
    """A real embedded host with the RTC backend: scheduling arms it, closing disarms it."""
    from extended_runtime import ExtendedRuntimeSession, SessionType
    from extended_runtime._backends.select import Backends

    rtc = RtcWakeAlarm(rtc_folder(tmp_path))
    host = EmbeddedHost(backends=Backends(wake_alarm=rtc))
    try:
        at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        ExtendedRuntimeSession(host.app("org.example.rtc", SessionType.SMART_ALARM)).start_at(at)
        assert host.settle()
        assert rtc.armed_at == at
    finally:
        host.close()
    assert rtc.armed_at is None
