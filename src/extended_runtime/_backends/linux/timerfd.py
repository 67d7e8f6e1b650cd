"""Linux timer file descriptors (`timerfd_create(2)`) through ctypes.

Theory
------
A timerfd is a timer the kernel keeps as a file descriptor: armed with `timerfd_settime`, read
back with `timerfd_gettime`, and readable (8 bytes: the number of expirations since the last
read) once it fires, so it joins any `select`/`epoll` loop. Python 3.11 has no `os.timerfd_*`,
hence this small module over libc.

Which clock decides what the timer follows:

* `REALTIME`: the wall clock. An *absolute* expiry is a Unix time, and it stays right when the
  clock is set, because the kernel re-evaluates it. With `cancel_on_set` the kernel also tells
  the owner: the next `read` fails with `ECANCELED` (`ClockWasSet`) once anyone sets the clock,
  even to the time it already shows (`clock_settime(CLOCK_REALTIME, now)` moves nothing and is
  the way to test it). That is said once per setting of the clock; the timer stays armed and
  still fires at its absolute time;
* `BOOTTIME`: seconds since boot, counting suspended time, for durations that include sleep;
* `MONOTONIC`: like `BOOTTIME` but stopped during suspend;
* `REALTIME_ALARM`, `BOOTTIME_ALARM`: the same clocks, and the timer also wakes the machine from
  suspend (through the RTC) when it comes due. Creating one needs `CAP_WAKE_ALARM`; without it
  the kernel answers `EPERM`. On a machine without an RTC they are created all the same and fire
  as ordinary timers while the machine runs; nothing can wake it. One quirk, measured: once an
  `_ALARM` timer is disarmed, `get` goes on reporting the time left to its old instant (the
  kernel keeps the cancelled alarm's expiry), though it no longer fires. Close the timer when
  an observer must see it gone.

Times are seconds as floats on the timer's clock (a Unix time for the `REALTIME` clocks with
`absolute=True`): at today's Unix times a float keeps about a quarter of a microsecond. This
module reads no clock; callers pass instants they already have.

Errors are `OSError`s carrying the kernel's errno (`EPERM`, `EINVAL`, `EBADF`, ...), as `os`
functions raise them; `read` of a non-blocking timer that has not fired raises
`BlockingIOError`. Nothing is loaded until the first timer is made.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

__all__ = ["ClockId", "ClockWasSet", "Setting", "Timer"]


class ClockId(IntEnum):
    """The clocks a timerfd can follow (values of `<linux/time.h>`)."""

    REALTIME = 0
    MONOTONIC = 1
    BOOTTIME = 7
    REALTIME_ALARM = 8
    BOOTTIME_ALARM = 9


#: `timerfd_create` flags (the same values as `O_CLOEXEC` / `O_NONBLOCK`).
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_NONBLOCK = os.O_NONBLOCK
#: `timerfd_settime` flags.
_TFD_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2

_NS = 1_000_000_000


class ClockWasSet(OSError):
    """The wall clock was set while a `cancel_on_set` timer waited (`ECANCELED`)."""


class Setting(NamedTuple):
    """A timer's setting as `timerfd_gettime` reports it: seconds left until it fires (0.0:
    disarmed) and the repeat interval (0.0: fires once)."""

    left: float
    interval: float


class _Timespec(ctypes.Structure):
    # time_t and long are the C long on 64-bit Linux; on 32-bit, this is the 32-bit time ABI
    # of the plain `timerfd_*` symbols (instants up to 2038)
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


_Function = Callable[..., int]


class _Libc:
    """The three libc functions, bound once, on first use."""

    _functions: tuple[_Function, _Function, _Function] | None = None

    @classmethod
    def functions(cls) -> tuple[_Function, _Function, _Function]:
        if cls._functions is None:
            libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc, no search
            create, settime = libc.timerfd_create, libc.timerfd_settime
            gettime = libc.timerfd_gettime
            create.argtypes = (ctypes.c_int, ctypes.c_int)
            spec = ctypes.POINTER(_Itimerspec)
            settime.argtypes = (ctypes.c_int, ctypes.c_int, spec, spec)
            gettime.argtypes = (ctypes.c_int, spec)
            for function in (create, settime, gettime):
                function.restype = ctypes.c_int
            cls._functions = (create, settime, gettime)
        return cls._functions


def _check(result: int, what: str) -> int:
    """Raise the `OSError` of errno when a libc call answered -1."""
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def _timespec(seconds: float) -> _Timespec:
    if seconds < 0:
        raise ValueError(f"a timer cannot be set to a negative time ({seconds!r} s)")
    sec, nsec = divmod(round(seconds * _NS), _NS)
    return _Timespec(sec, nsec)


def _seconds(spec: _Timespec) -> float:
    sec: int = spec.tv_sec
    nsec: int = spec.tv_nsec
    return sec + nsec / _NS


class Timer:
    """One timerfd on `clock`; close it (or use it as a context manager) when done.

    Raises `OSError` if the kernel refuses: `EPERM` for an `_ALARM` clock without
    `CAP_WAKE_ALARM`, `EINVAL` for a clock this kernel cannot use for timers.
    """

    def __init__(self, clock: ClockId, *, nonblocking: bool = False) -> None:
        self._fd = -1
        create = _Libc.functions()[0]
        flags = _TFD_CLOEXEC | (_TFD_NONBLOCK if nonblocking else 0)
        self.clock = ClockId(clock)
        self._fd = _check(create(int(clock), flags), f"timerfd_create({self.clock.name})")

    def fileno(self) -> int:
        """The descriptor, readable once the timer fires (for `select`/`epoll`)."""
        if self._fd < 0:
            raise ValueError("the timer is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def set(
        self,
        value: float,
        interval: float = 0.0,
        *,
        absolute: bool = False,
        cancel_on_set: bool = False,
    ) -> Setting:
        """Arm the timer to fire after `value` seconds (`absolute`: at `value` on its clock),
        then every `interval` seconds if that is not 0; `value` 0 disarms it (a relative one;
        an absolute time in the past fires at once). `cancel_on_set` (an absolute `REALTIME`
        timer only) makes `read` raise `ClockWasSet` when the wall clock is set.

        Returns the previous setting."""
        if cancel_on_set and not absolute:
            raise ValueError("cancel_on_set applies to absolute timers only")
        flags = (_TFD_TIMER_ABSTIME if absolute else 0) | (
            _TFD_TIMER_CANCEL_ON_SET if cancel_on_set else 0
        )
        if absolute and value == 0:
            value = 1e-9  # absolute 0 would disarm; the epoch's first nanosecond fires at once
        new = _Itimerspec(_timespec(interval), _timespec(value))
        old = _Itimerspec()
        settime = _Libc.functions()[1]
        fd = self.fileno()
        _check(settime(fd, flags, ctypes.byref(new), ctypes.byref(old)), "timerfd_settime")
        return Setting(_seconds(old.it_value), _seconds(old.it_interval))

    def disarm(self) -> Setting:
        """Stop the timer; returns the previous setting."""
        return self.set(0.0)

    def get(self) -> Setting:
        """Seconds left until it fires (0.0 when disarmed or fired) and its interval."""
        current = _Itimerspec()
        gettime = _Libc.functions()[2]
        _check(gettime(self.fileno(), ctypes.byref(current)), "timerfd_gettime")
        return Setting(_seconds(current.it_value), _seconds(current.it_interval))

    def read(self) -> int:
        """Wait until the timer fires (unless non-blocking), then return how many times it
        fired since the last read. Raises `ClockWasSet` if the wall clock was set under a
        `cancel_on_set` timer, `BlockingIOError` if a non-blocking timer has not fired."""
        try:
            data = os.read(self.fileno(), 8)
        except OSError as error:
            if error.errno == errno.ECANCELED:
                raise ClockWasSet(error.errno, "the wall clock was set") from error
            raise
        return int.from_bytes(data, sys.byteorder)

    def close(self) -> None:
        """Close the descriptor (a timer of an `_ALARM` clock no longer wakes the machine)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Timer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd {self._fd}"
        return f"<Timer {self.clock.name} {state}>"
