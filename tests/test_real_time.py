"""Time that moves under a real process: a set of the wall clock, jumps, a time-zone change, and a
process stopped past its alarm.

Each test runs `programs/timed_app.py` (an app on the embedded host, on the machine's clock and
its timerfd) in a subprocess and reads what it prints: each line carries the process's wall
clock and CLOCK_BOOTTIME. Setting this machine's clock for real is not done (SERVICES.md): a
set is made with `clock_settime(CLOCK_REALTIME, now)`, which moves nothing but is reported to
every cancel-on-set timer, and the jump itself is made by libfaketime in the child (its offset
file, re-read on every call), so the child sees what a real set looks like: the wall clock moves
and the kernel says so. Setting the clock needs root, as in CI.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from .services import require_root, skip_or_fail

PROGRAM = Path(__file__).resolve().parent / "programs" / "timed_app.py"
FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@dataclass(frozen=True)
class Line:
    what: str
    wall: float
    elapsed: float
    detail: str


class App:
    """The child process; a thread per output stream collects what it prints."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(PROGRAM), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log: queue.Queue[tuple[float, str]] = queue.Queue()
        self.lines: list[Line] = []
        self.log: list[str] = []
        out, err = self.process.stdout, self.process.stderr
        assert out is not None and err is not None
        self._pumps = [
            threading.Thread(target=_pump, args=(out, self._lines.put), daemon=True),
            threading.Thread(target=_pump, args=(err, self._stamp), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _stamp(self, text: str) -> None:
        self._log.put((time.monotonic(), text))

    def wait_for(self, what: str, timeout: float = 15.0) -> Line:
        """Read lines until one is `what` (a session's call: `alarm did_start`)."""
        for line in self.lines:
            if line.what == what:
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                text = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if text is None:
                break
            line = _parse(text)
            self.lines.append(line)
            if line.what == what:
                return line
        self.finish()
        raise AssertionError(f"no {what!r}; printed {self.lines}; log {self.log[-20:]}")

    def log_lines_until(self, needle: str, timeout: float) -> float | None:
        """Read the child's log until a line holds `needle`: the monotonic time it came."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, text = self._log.get(timeout=left)
            except queue.Empty:
                return None
            self.log.append(text)
            if needle in text:
                return at
        return None

    def finish(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for pump in self._pumps:  # they end at the end of their streams
            pump.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        while not self._log.empty():
            self.log.append(self._log.get()[1])


def _pump(stream: IO[str], put: Callable[[str], None]) -> None:
    for text in stream:
        put(text.rstrip("\n"))


def _parse(text: str) -> Line:
    words = text.split()
    calls = 2 if words[0] in ("alarm", "mindful") else 1  # `alarm did_start W E`
    what = " ".join(words[:calls])
    wall, elapsed, *detail = words[calls:]
    return Line(what, float(wall), float(elapsed), " ".join(detail))


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


def set_clock_to_itself() -> None:
    """`clock_settime(CLOCK_REALTIME, now)`: a set of the clock that moves it by nothing."""
    libc = ctypes.CDLL(None, use_errno=True)
    now = _Timespec()
    if libc.clock_gettime(0, ctypes.byref(now)) != 0 or libc.clock_settime(0, ctypes.byref(now)):
        error = ctypes.get_errno()
        raise OSError(error, f"clock_settime: {os.strerror(error)}")


@pytest.fixture
def offset_file(tmp_path: Path) -> Iterator[Path]:
    """libfaketime's offset for the child, re-read at every clock read (`+0` at first)."""
    if not FAKETIME.exists():
        skip_or_fail(f"needs libfaketime ({FAKETIME}): apt install faketime")
    path = tmp_path / "faketime"
    path.write_text("+0\n")
    yield path


def faked(offset_file: Path) -> dict[str, str]:
    return {
        "LD_PRELOAD": str(FAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def test_a_set_of_the_wall_clock_is_noticed_at_once() -> None:
    """The kernel reports the set through the timerfd: the timer thread wakes at once (a
    polling loop would look only 5 s later, and would see no set: the clock did not move), with
    an alarm an hour away. The clock is set every 0.25 s until the host says so: a set that came
    before the timer thread first armed its timer is not reported to it."""
    require_root("clock_settime")
    app = App(["3600"])
    try:
        app.wait_for("ready")
        noticed = None
        for _ in range(12):
            set_at = time.monotonic()
            set_clock_to_itself()
            noticed = app.log_lines_until("the kernel reported a set of the wall clock", 0.25)
            if noticed is not None:
                break
        assert noticed is not None, app.log[-20:]
        assert noticed - set_at < 0.25
    finally:
        app.finish()


def _elapsed() -> float:
    """CLOCK_BOOTTIME here: the same clock as the child's ELAPSED column."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class Jumped:
    """An app (alarm in 6 s, 4 s of mindfulness) whose wall clock jumped about 1 s in."""

    app: App
    alarm_at: float
    ready: Line
    started: Line
    jumped: float


#: The 4 s budget as the app sees it: from `did_start` to `did_invalidate`, each timed when the
#: delegate hears it, so a `did_start` delivered late on a busy machine (half a second has been
#: seen under faketime) shortens it. A budget the jump had moved would be off by the jump
#: itself: 6 s for the backward jump, nothing left for the forward one.
BUDGET_SEEN = (3.0, 5.5)

#: An alarm heard within this of its instant is on time here: the app hears it through its
#: delegate, under libfaketime, on a machine that may be busy (0.26 s has been seen). A clock or
#: zone mistake is off by the jump itself (2 s, 10 s) or by the zone (hours).
ON_TIME = 0.5


def _jump(offset_file: Path, offset: str) -> Jumped:
    app = App(["6", "--mindful", "4"], faked(offset_file))
    try:
        alarm_at = float(app.wait_for("alarm-at").detail)
        ready = app.wait_for("ready")
        started = app.wait_for("mindful did_start")
        time.sleep(1.0)
        offset_file.write_text(f"{offset}\n")  # the child's wall clock jumps...
        set_clock_to_itself()  # ...and the kernel says the clock was set
        jumped = _elapsed()
        assert jumped < ready.elapsed + 5, "the jump came too late to test anything"
    except BaseException:
        app.finish()
        raise
    return Jumped(app, alarm_at, ready, started, jumped)


def test_a_forward_jump_starts_a_passed_alarm_at_once_and_keeps_the_budget(
    offset_file: Path,
) -> None:
    require_root("clock_settime")
    run = _jump(offset_file, "+10")
    try:
        alarm = run.app.wait_for("alarm did_start")
        # the alarm's instant had passed on the wall clock: it started at once, not at 6 s
        assert alarm.elapsed - run.jumped < 1.0
        assert alarm.wall - run.alarm_at > 3.5
        ended = run.app.wait_for("mindful did_invalidate")
        assert ended.detail == "EXPIRED"
        # the mindfulness budget is 4 s of elapsed time, the jump notwithstanding (had the jump
        # counted, it would have expired at once); see BUDGET_SEEN
        assert BUDGET_SEEN[0] <= ended.elapsed - run.started.elapsed < BUDGET_SEEN[1]
        run.app.wait_for("done")
    finally:
        run.app.finish()
    log = run.app.log
    assert any("set forward by 0:00:" in line for line in log), log
    assert any("started 0:00:0" in line and "late" in line for line in log), log


def test_a_backward_jump_leaves_the_alarm_on_its_instant_and_the_budget_whole(
    offset_file: Path,
) -> None:
    require_root("clock_settime")
    run = _jump(offset_file, "-2")
    try:
        alarm = run.app.wait_for("alarm did_start")
        # the alarm starts when the wall clock shows its instant: 2 s later on the elapsed one
        # than the wall clock said before the jump (`ready` is read before the jump)
        assert abs(alarm.wall - run.alarm_at) < ON_TIME
        due = run.alarm_at - run.ready.wall + 2.0
        assert -ON_TIME < alarm.elapsed - run.ready.elapsed - due < 0.8
        ended = run.app.wait_for("mindful did_invalidate")
        # 4 s whole (had the jump counted, 6 s); see BUDGET_SEEN
        assert BUDGET_SEEN[0] <= ended.elapsed - run.started.elapsed < BUDGET_SEEN[1]
        run.app.wait_for("done")
    finally:
        run.app.finish()
    assert any("set back by 0:00:0" in line for line in run.app.log), run.app.log


def test_a_time_zone_change_moves_no_alarm(offset_file: Path) -> None:
    """The alarm was given in local time; the process's zone changes before it rings: it rings
    at the same instant, which is kept in UTC."""
    env = {**faked(offset_file), "TZ": "America/New_York"}
    app = App(["2", "--tz-at", "0.5", "Asia/Tokyo"], env)
    try:
        alarm_at = float(app.wait_for("alarm-at").detail)
        assert app.wait_for("tz").detail == "JST"
        alarm = app.wait_for("alarm did_start")
        assert abs(alarm.wall - alarm_at) < ON_TIME
        app.wait_for("done")
    finally:
        app.finish()


def test_a_process_stopped_past_its_alarm_starts_it_on_continue() -> None:
    app = App(["2"])
    try:
        alarm_at = float(app.wait_for("alarm-at").detail)
        app.wait_for("ready")
        app.process.send_signal(signal.SIGSTOP)
        time.sleep(3.5)
        continued = time.time()
        app.process.send_signal(signal.SIGCONT)
        alarm = app.wait_for("alarm did_start")
        assert alarm.wall - alarm_at > 1.4  # late: the instant passed while stopped
        assert alarm.wall - continued < 0.5  # and it started at once on SIGCONT
        app.wait_for("done")
    finally:
        app.finish()
    late = [line for line in app.log if "started 0:00:0" in line and "late" in line]
    assert late, app.log
