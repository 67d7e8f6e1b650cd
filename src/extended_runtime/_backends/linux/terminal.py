"""The app's state from its controlling terminal: foreground means ACTIVE, else BACKGROUND.

Theory
------
A terminal app is in front of the user exactly when its process group is the terminal's
foreground group (`tcgetpgrp` on `/dev/tty`), or when a group its own process started has taken
the terminal (an interactive shell or an editor run as its command): the app is still what the
user looks at. A stopped process and one in a background group are BACKGROUND. A terminal cannot
tell INACTIVE (the user looking at another window) from ACTIVE, so this source never reports it.
`foreground_state` is that decision, with no I/O.

The foreground changes in two ways, and the source follows both:

* *Ctrl-Z*: the terminal sends SIGTSTP to the foreground group. The default action would stop
  the process at once, with its frontmost session still RUNNING. The source handles SIGTSTP so
  the app first reports BACKGROUND (a frontmost session ends with RESIGNED_FRONTMOST and its
  `did_invalidate` is delivered), then stops for real: SIGTSTP back to SIG_DFL, raised again,
  and once SIGCONT lets the process go on, the handler is put back and the foreground looked at
  again at once.
* `fg`, `bg` and any other `tcsetpgrp` send no signal to a running group, so a daemon thread
  looks at the foreground every `interval` seconds (50 ms) while anything is watched.

A Python signal handler runs in the main thread between two bytecodes, possibly in the middle of
a host call holding the host's lock, or inside `threading`'s own locks. The handler therefore
takes no lock and calls nothing: it only moves a three-state flag (IDLE, REQUESTED, READY). The
poll thread sees REQUESTED, queues BACKGROUND for every watcher and waits, at most
`stop_timeout` (1 s), until the report thread has run those callbacks; it then sets READY and
sends SIGTSTP to the main thread again, whose handler stops the process. A callback that hangs,
or a main thread that holds the host's lock meanwhile, delays the stop by `stop_timeout` at
most and can never prevent it; and since the first handler returns at once, the main thread
goes on meanwhile (an asyncio loop there delivers its `did_invalidate`). Callbacks run on the
report thread, in order, never inside a signal handler.

The kernel may hand the terminal's SIGTSTP to any thread of the process. Python then runs the
handler only when the main thread next runs bytecode, which a main thread blocked in `read` or
`epoll` never does (measured: about one Ctrl-Z in twenty was lost so). The source therefore
also points the interpreter's wakeup fd at a pipe the poll thread watches (`_CtrlZ`), passing
every byte on to the wakeup fd that was there before, so a SIGTSTP reaches the poll thread
whichever thread caught it; and the stopping SIGTSTP goes to the main thread itself
(`pthread_kill`), which interrupts any system call it sleeps in.

The handler is installed only from the main thread (Python allows no other) and only where
SIGTSTP was not ignored; elsewhere Ctrl-Z stops the process at once and the state is noticed by
polling after SIGCONT. Without a controlling terminal the source is not usable, and its probe
says why.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import SimpleQueue
from select import select
from types import FrameType
from typing import Any

from ..._core.enums import ApplicationState
from ...abc import AppStateSource, Probe
from ..threads import start_thread

__all__ = ["TerminalForeground", "descends_from", "foreground_state"]

log = logging.getLogger("extended_runtime.backends")

#: How many parents `descends_from` climbs at most (a process tree is rarely deeper).
_MAX_DEPTH = 64

_Callback = Callable[[ApplicationState], None]


def foreground_state(
    foreground: int | None,
    group: int,
    *,
    stopping: bool = False,
    ours: Callable[[int], bool] = lambda group: False,
) -> ApplicationState:
    """The app's state from its terminal.

    `foreground`: the terminal's foreground group (`None`: the terminal is gone); `group`: this
    process's group; `stopping`: a stop is under way (Ctrl-Z); `ours`: whether another group
    belongs to this process (a group its descendant leads), asked only when it matters.
    """
    if stopping or foreground is None:
        return ApplicationState.BACKGROUND
    if foreground == group or ours(foreground):
        return ApplicationState.ACTIVE
    return ApplicationState.BACKGROUND


def descends_from(pid: int, ancestor: int, proc: str = "/proc") -> bool:
    """Whether process `pid` is `ancestor` or one of its descendants (read from `/proc`)."""
    for _ in range(_MAX_DEPTH):
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
        try:
            stat = Path(proc, str(pid), "stat").read_text(encoding="utf-8", errors="replace")
            # pid (comm) state ppid ...: comm may hold spaces and parentheses
            pid = int(stat.rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


class _Stop(enum.Enum):
    """Where a Ctrl-Z stands."""

    IDLE = "no stop under way"
    REQUESTED = "SIGTSTP came: the watchers are being told BACKGROUND"
    READY = "the watchers were told: the SIGTSTP sent to the main thread stops the process"


class _CtrlZ:
    """SIGTSTP, taken over from the main thread for one spell of watching.

    Python runs a signal's handler in the main thread only, but the kernel may hand a signal
    sent to the process group to any thread; while the main thread sleeps in a system call
    (reading the terminal, waiting on an event loop), a SIGTSTP caught by another thread would
    wait there unseen. So the interpreter's wakeup fd is pointed at a pipe the poll thread
    reads (each byte is a signal's number; every byte is passed on to the wakeup fd that was
    there before, so its owner misses nothing): SIGTSTP reaches the poll thread whichever
    thread caught it. The second SIGTSTP, which stops the process, is sent to the main thread
    itself (`pthread_kill`), so it interrupts whatever the main thread is doing.

    The handler takes no lock and calls nothing that could wait: it moves `state` and, once
    READY, stops the process. The byte of that second SIGTSTP is drained by the handler before
    the stop, and the poll thread decides on the state it saw *before* reading, so a byte of an
    old stop can never start a new one.
    """

    def __init__(self) -> None:
        self.state = _Stop.IDLE
        self.taken = False
        self._previous: Any = signal.SIG_DFL  # the SIGTSTP disposition before ours
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._passed_to = -1  # the wakeup fd before ours

    def take(self) -> bool:
        """Install the handler and the wakeup fd (main thread); False where SIGTSTP is ignored."""
        previous = signal.getsignal(signal.SIGTSTP)
        if previous is signal.SIG_IGN:
            return False  # whoever started us wants no stop: there is none to prepare
        self._previous = signal.SIG_DFL if previous is None else previous
        signal.signal(signal.SIGTSTP, self._on_sigtstp)
        self._passed_to = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self.taken = True
        return True

    def give_back(self) -> bool:
        """Put back the previous handler and wakeup fd (main thread only); whether it did."""
        if not self.taken or threading.current_thread() is not threading.main_thread():
            return not self.taken
        signal.signal(signal.SIGTSTP, self._previous)
        current = signal.set_wakeup_fd(self._passed_to)
        if current != self._write_fd:  # someone set theirs after us: it stays
            signal.set_wakeup_fd(current)
        self.taken = False
        return True

    def close(self) -> None:
        """Close the pipe, unless the interpreter may still write to it (not given back)."""
        if not self.taken:
            os.close(self._read_fd)
            os.close(self._write_fd)

    # ------------------------------------------------------------------ the poll thread

    def wait(self, timeout: float) -> None:
        """Sleep until a signal comes or `timeout` passes; a SIGTSTP requests a stop."""
        before = self.state  # seen before reading: a READY stop's own byte is no request
        numbers = self._drain() if select([self._read_fd], [], [], timeout)[0] else b""
        if signal.SIGTSTP in numbers and before is _Stop.IDLE and self.state is _Stop.IDLE:
            self.state = _Stop.REQUESTED

    def stop(self) -> None:
        """The watchers were told: stop the process, from the main thread."""
        self.state = _Stop.READY
        main = threading.main_thread()
        if main.is_alive() and main.ident is not None:
            signal.pthread_kill(main.ident, signal.SIGTSTP)

    def _drain(self) -> bytes:
        """Read the pending signal numbers and pass them on."""
        try:
            numbers = os.read(self._read_fd, 4096)
        except OSError:
            return b""
        if self._passed_to >= 0:
            with contextlib.suppress(OSError):
                os.write(self._passed_to, numbers)
        return numbers

    # ------------------------------------------------------------------ the main thread

    def _on_sigtstp(self, signum: int, frame: FrameType | None) -> None:
        """Ctrl-Z, in the main thread between two bytecodes."""
        if not self.taken:  # given back from another thread: behave as before us
            self.give_back()
            signal.raise_signal(signal.SIGTSTP)
        elif self.state is _Stop.READY:
            self._stop_now()
        elif self.state is _Stop.IDLE:
            self.state = _Stop.REQUESTED
        # REQUESTED: a second Ctrl-Z while the first is prepared changes nothing

    def _stop_now(self) -> None:
        """Stop as SIGTSTP's default action does; go on here after SIGCONT."""
        self._drain()  # this SIGTSTP's own byte: it must not request another stop
        signal.signal(signal.SIGTSTP, self._previous)
        try:
            signal.raise_signal(signal.SIGTSTP)  # stopped in here until SIGCONT
        finally:
            signal.signal(signal.SIGTSTP, self._on_sigtstp)
            self.state = _Stop.IDLE  # the poll thread looks at the foreground again


@dataclass(slots=True, eq=False)
class _Watch:
    """One watcher and the state it last heard."""

    app_id: str
    callback: _Callback
    last: ApplicationState


#: What the report thread runs: a callback with a state, or a marker to set once reached.
_Report = tuple[_Callback, ApplicationState] | threading.Event | None


@dataclass(slots=True, eq=False)
class _Spell:
    """One spell of watching, from the first watcher to the last: the terminal, open; SIGTSTP,
    when it could be taken; the report thread's queue. Its threads end when `over` is set."""

    fd: int
    ctrl_z: _CtrlZ | None
    reports: SimpleQueue[_Report] = field(default_factory=SimpleQueue)
    over: threading.Event = field(default_factory=threading.Event)

    @property
    def stopping(self) -> bool:
        return self.ctrl_z is not None and self.ctrl_z.state is not _Stop.IDLE


class TerminalForeground(AppStateSource):
    """ACTIVE while this process owns the controlling terminal's foreground, else BACKGROUND.

    `watch` calls the callback with the current state at once, then with each change; `unwatch`
    removes one watcher, and the last one gone gives SIGTSTP back and ends the threads. One
    instance per process: SIGTSTP has one handler.
    """

    name = "terminal"

    def __init__(
        self, tty: str = "/dev/tty", *, interval: float = 0.05, stop_timeout: float = 1.0
    ) -> None:
        self._tty = tty
        self._interval = interval
        self._stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self._watches: list[_Watch] = []
        self._spell: _Spell | None = None

    def probe(self) -> Probe:
        try:
            fd = _open(self._tty)
        except OSError as error:
            return Probe(self.name, False, _no_terminal(self._tty, error))
        try:
            os.tcgetpgrp(fd)
        except OSError as error:
            return Probe(self.name, False, _no_terminal(self._tty, error))
        finally:
            os.close(fd)
        return Probe(self.name, True, "follows the foreground of the controlling terminal")

    @property
    def handles_ctrl_z(self) -> bool:
        """Whether Ctrl-Z ends frontmost sessions before the stop (SIGTSTP is taken over)."""
        spell = self._spell
        return spell is not None and spell.ctrl_z is not None

    # ------------------------------------------------------------------ watching

    def watch(self, app_id: str, callback: Callable[[ApplicationState], None]) -> None:
        """Report the current state now (in this thread), then each change (report thread).

        Raises `OSError` when there is no controlling terminal (`probe()` says so first)."""
        with self._lock:  # held through the first call: no change overtakes it
            if self._spell is None:
                self._spell = self._begin()
            state = self._state(self._spell)
            self._watches.append(_Watch(app_id, callback, state))
            callback(state)

    def unwatch(self, callback: Callable[[ApplicationState], None]) -> None:
        """Stop reporting to `callback`; with no watcher left, stop following the terminal
        (from the main thread, SIGTSTP is given back at once; elsewhere at the next one)."""
        with self._lock:
            self._watches = [w for w in self._watches if w.callback != callback]
            spell = self._spell
            if self._watches or spell is None:
                return
            self._spell = None
        if spell.ctrl_z is not None:
            spell.ctrl_z.give_back()
        spell.over.set()
        spell.reports.put(None)

    def _begin(self) -> _Spell:
        """Open the terminal, take SIGTSTP (main thread only), start the threads."""
        spell = _Spell(_open(self._tty), _take_ctrl_z())
        for target, name in ((self._poll, "xrs-terminal"), (self._report, "xrs-terminal-report")):
            start_thread(target, name=name, args=(spell,))
        return spell

    # ------------------------------------------------------------------ the foreground

    def _state(self, spell: _Spell) -> ApplicationState:
        try:
            foreground: int | None = os.tcgetpgrp(spell.fd)
        except OSError:  # hung up: nobody sees the app
            foreground = None
        return foreground_state(
            foreground,
            os.getpgrp(),
            stopping=spell.stopping,
            ours=lambda group: descends_from(group, os.getpid()),
        )

    def _poll(self, spell: _Spell) -> None:
        """Every `interval` seconds, or at once on SIGTSTP: prepare a requested stop, or
        report what changed."""
        ctrl_z = spell.ctrl_z
        try:
            while not spell.over.is_set():
                if ctrl_z is None:
                    spell.over.wait(self._interval)
                else:
                    ctrl_z.wait(self._interval)
                if ctrl_z is not None and ctrl_z.state is _Stop.REQUESTED:
                    self._prepare_stop(spell, ctrl_z)
                else:
                    self._report_changes(spell)
        finally:
            os.close(spell.fd)
            if ctrl_z is not None:
                ctrl_z.close()

    def _report_changes(self, spell: _Spell) -> None:
        with self._lock:
            if spell.over.is_set():
                return
            state = self._state(spell)
            for watch in self._watches:
                if watch.last is not state:
                    watch.last = state
                    spell.reports.put((watch.callback, state))

    def _prepare_stop(self, spell: _Spell, ctrl_z: _CtrlZ) -> None:
        """Ctrl-Z: tell every watcher BACKGROUND, wait for them (bounded), then stop."""
        told = threading.Event()
        with self._lock:
            for watch in self._watches:
                watch.last = ApplicationState.BACKGROUND
                spell.reports.put((watch.callback, ApplicationState.BACKGROUND))
        spell.reports.put(told)
        if not told.wait(self._stop_timeout):
            log.warning(
                "the app took over %g s to hear it is being stopped: it stops anyway",
                self._stop_timeout,
            )
        ctrl_z.stop()

    def _report(self, spell: _Spell) -> None:
        """Run the callbacks, in order, until the spell is over."""
        while (item := spell.reports.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            callback, state = item
            try:
                callback(state)
            except Exception:
                log.exception("an app-state callback failed; the terminal is still followed")


def _take_ctrl_z() -> _CtrlZ | None:
    """SIGTSTP taken over, where it can be: from the main thread, and not ignored."""
    if threading.current_thread() is not threading.main_thread():
        log.warning(
            "the terminal is followed from a thread other than the main one: Ctrl-Z stops "
            "the process before its frontmost session ends (noticed after SIGCONT)"
        )
        return None
    ctrl_z = _CtrlZ()
    if not ctrl_z.take():
        ctrl_z.close()
        return None
    return ctrl_z


def _open(tty: str) -> int:
    return os.open(tty, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)


def _no_terminal(tty: str, error: OSError) -> str:
    reason = error.strerror or str(error)
    return f"no controlling terminal ({tty}: {reason}): the app's state follows no terminal"
