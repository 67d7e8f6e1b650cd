"""Wake alarms on Linux: an alarm-clock timerfd, or the RTC's `wakealarm` file in sysfs.

Theory
------
The host arms one instant, the earliest scheduled start, so that a suspended machine wakes in
time for it. The kernel offers two ways:

* `TimerfdWakeAlarm`: a timerfd on `CLOCK_REALTIME_ALARM`. When the machine suspends, the
  kernel's alarm timers program the RTC for the earliest alarm timer of any process, so several
  programs share the RTC without clobbering each other. The instant is absolute on the wall
  clock, so setting the clock does not move it. The alarm lives in the descriptor: if the process
  dies, the alarm goes with it, and a crash never wakes the machine for nobody. It needs
  `CAP_WAKE_ALARM`; without it the kernel answers `EPERM` and the probe says so. Without an RTC
  (virtual machines, containers) the kernel still creates the timer, but has nothing to wake the
  machine with: the probe says that too.
* `RtcWakeAlarm`: the RTC's own alarm, through `/sys/class/rtc/rtc0/wakealarm` (epoch seconds).
  The kernel refuses a new instant while one is armed (`EBUSY`), so each arming first clears
  the alarm (writes 0) and then writes the new instant. The RTC counts whole seconds: the instant
  is rounded down, so the machine wakes up to a second early, never late, and the host's own
  timer then fires on time. The alarm stays in the RTC if the process dies: the machine may then
  wake once for nothing (and go back to sleep on its idle timer); the host disarms it at close.
  Writing the file needs root (or a udev rule granting it).

Both remember what they armed in `armed_at`; the RTC's is read back from the file itself.
"""

from __future__ import annotations

import errno
import math
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from ...abc import Probe, WakeAlarmBackend
from .timerfd import ClockId, Setting, Timer

__all__ = ["RtcWakeAlarm", "TimerfdWakeAlarm"]

#: Where the kernel lists the machine's RTCs.
RTC_CLASS = Path("/sys/class/rtc")


class TimerfdWakeAlarm(WakeAlarmBackend):
    """A `CLOCK_REALTIME_ALARM` timerfd armed at the instant (needs `CAP_WAKE_ALARM`).

    `rtc_class` is where the probe looks for an RTC (the kernel's list by default)."""

    name = "timerfd-alarm"

    def __init__(self, rtc_class: Path = RTC_CLASS) -> None:
        self._rtc_class = rtc_class
        self._lock = threading.Lock()
        self._timer: Timer | None = None
        #: The instant armed (aware UTC), or `None`.
        self.armed_at: datetime | None = None

    def probe(self) -> Probe:
        try:
            Timer(ClockId.REALTIME_ALARM).close()
        except OSError as error:
            if error.errno == errno.EPERM:
                return Probe(
                    self.name,
                    False,
                    "the kernel refuses alarm timers to this process (EPERM): it lacks "
                    "CAP_WAKE_ALARM",
                )
            return Probe(self.name, False, f"this kernel has no alarm timers: {error}")
        if not _has_rtc(self._rtc_class):
            return Probe(
                self.name,
                True,
                f"a CLOCK_REALTIME_ALARM timer (CAP_WAKE_ALARM), but this machine has no RTC "
                f"({self._rtc_class} lists none): the timer fires while the machine runs, "
                "nothing can wake it from suspend",
            )
        return Probe(
            self.name, True, "a CLOCK_REALTIME_ALARM timer wakes the machine through its RTC"
        )

    def arm(self, at: datetime | None) -> None:
        with self._lock:
            if at == self.armed_at:
                return
            if at is None:  # closed rather than disarmed: see `timerfd` on alarm timers
                timer, self._timer = self._timer, None
                if timer is not None:
                    timer.close()
            else:
                if self._timer is None:
                    self._timer = Timer(ClockId.REALTIME_ALARM)
                self._timer.set(at.timestamp(), absolute=True)
            self.armed_at = at

    def setting(self) -> Setting:
        """What the kernel says of the timer: seconds left until it fires (0.0: disarmed, or
        no timer open)."""
        with self._lock:
            timer = self._timer
            return Setting(0.0, 0.0) if timer is None else timer.get()

    def close(self) -> None:
        with self._lock:
            timer, self._timer, self.armed_at = self._timer, None, None
        if timer is not None:
            timer.close()


class RtcWakeAlarm(WakeAlarmBackend):
    """The RTC's wake alarm in sysfs (`root`: the RTC's folder, `/sys/class/rtc/rtc0` by
    default; a folder laid out the same way works too)."""

    name = "rtc-wakealarm"

    def __init__(self, root: Path = RTC_CLASS / "rtc0") -> None:
        self.root = root
        self._file = root / "wakealarm"
        self._lock = threading.Lock()
        self._written: datetime | None = None
        self._known = False  # whether `_written` is what the file holds

    def probe(self) -> Probe:
        if not self._file.is_file():
            return Probe(self.name, False, f"no RTC wake alarm here ({self._file} is missing)")
        if not os.access(self._file, os.W_OK):
            return Probe(self.name, False, f"{self._file} is not writable by this process")
        return Probe(self.name, True, f"the RTC's wake alarm ({self._file}), to the second")

    @property
    def armed_at(self) -> datetime | None:
        """The instant the RTC will wake the machine at, read back from the file."""
        text = self._file.read_text(encoding="ascii").strip()
        if not text or text == "0":
            return None
        return datetime.fromtimestamp(int(text), UTC)

    def arm(self, at: datetime | None) -> None:
        with self._lock:
            if self._known and at == self._written:
                return
            self._known = False
            self._write("0")  # the kernel refuses a new instant while one is armed
            if at is not None:
                self._write(str(math.floor(at.timestamp())))  # early rather than late
            self._written, self._known = at, True

    def _write(self, text: str) -> None:
        with self._file.open("w", encoding="ascii") as file:
            file.write(text + "\n")


def _has_rtc(rtc_class: Path) -> bool:
    try:
        return any(entry.name.startswith("rtc") for entry in rtc_class.iterdir())
    except OSError:
        return False
