"""`xrs run`: a command inside a session on the embedded host.

The flow, in the main thread plus the host's threads and one thread that waits for the child:

1. refuse a command that cannot run (not found, not executable) before anything else, so a typo
   never starts a session; then catch SIGTERM, SIGHUP and SIGINT (`_Signals`), so a signal can
   never kill `xrs` and leave its command behind; the handlers are restored on the way out;
2. build an app (`--app-id`, else `xrs.run.<command name>`) of the chosen type on a host whose
   policy carries `--limit` (never longer than the type's own) and `--cpu-budget`, and make its
   state follow the controlling terminal, if there is one (`follow_terminal`): `xrs` started in
   the background cannot start a frontmost session, and Ctrl-Z ends one;
3. start the session and wait for `did_start` or `did_invalidate`; a refused session ends
   `xrs run` with `EXIT_SESSION_REFUSED` and one line saying why, and the command is never run;
4. if a signal came before the command started, do not start it: invalidate the session and
   exit 128 + N; otherwise run the command as a child and wait for whichever comes first: the
   child exits, or the session ends. Signals caught meanwhile are forwarded to the child, except
   a terminal's Ctrl-C once the child exists (the terminal sends it to our whole process group,
   the child included). A signal caught while `Popen` was under way is forwarded as soon as the
   child exists;
5. if the child exited, invalidate the session; if the session ended first, say why when the
   CPU budget ended it, then stop the child's whole process tree: SIGTERM to every member at
   once, SIGKILL to every survivor once `--grace` seconds have passed in total. One ending
   leaves the command alone: RESIGNED_FRONTMOST, the app leaving the terminal's foreground.
   That is Ctrl-Z (or another job taking the terminal): the user paused a job, and a shell
   user expects `fg` to resume it, not to find it killed. The terminal stops the command with
   its job, as it stops `xrs`; the session ends (and `xrs` says so) before `xrs` stops, and
   after `fg` the command goes on without a session, `xrs` waiting for it as before;
6. exit with the child's status, shell style (128 + N for signal N).

Everything that wakes the main thread is a note in one inbox (`_Inbox`): a session event, the
child's exit, a caught signal. The signal handler only puts a note there; the main thread alone
acts on notes, so a signal is forwarded exactly once, and a handler never interrupts anything
half done. The main thread sleeps in `select` on the inbox's pipe, which is also the
interpreter's signal wakeup fd, so a signal wakes it whichever thread the kernel delivers it to.
A refused start can be produced in tests through `run_in_session`'s one seam, `make_host`.

Events are printed to stderr as they arrive, so the command's own output stays clean; `-q`
silences them, never the errors (a refusal, a missing command, an exceeded CPU budget).
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import signal
import string
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from queue import Empty, SimpleQueue
from select import select
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from .._api.delegate import ExtendedRuntimeSessionDelegate
from .._api.session import ExtendedRuntimeSession
from .._backends.threads import start_thread
from .._core.clock import SystemClock
from .._core.conditions import Conditions
from .._core.enums import ErrorCode, InvalidationReason, SessionState, SessionType
from .._core.errors import ExtendedRuntimeSessionError
from .._core.policy import Policy
from .._hosts.embedded import EmbeddedHost
from .._hosts.terminal import follow_terminal

if TYPE_CHECKING:
    import psutil

    from .._core.engine import Engine

__all__ = [
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
    "EXIT_SESSION_REFUSED",
    "EXIT_USAGE",
    "HostFactory",
    "RunOptions",
    "run_in_session",
    "session_policy",
]

#: `xrs run` exits with this when the session cannot start (the command did not run).
EXIT_SESSION_REFUSED = 75
#: ... with this when it was asked for what cannot be (a backend that cannot work here).
EXIT_USAGE = 2
#: ... and with these when the command cannot be executed, as shells do.
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

#: Builds the host for one run from its policy; `EmbeddedHost` itself by default.
HostFactory = Callable[[Policy], EmbeddedHost]

_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
#: How long to wait for the tree to vanish after SIGKILL (which cannot be ignored).
_KILL_WAIT = 2.0
#: How often `_stop_tree` looks whether the tree is gone (seconds).
_POLL = 0.02


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What `xrs run` was asked to do."""

    session_type: SessionType
    command: tuple[str, ...]
    policy: Policy
    app_id: str | None = None
    grace: float = 5.0
    quiet: bool = False
    #: Backends chosen by name (`--backend CAPABILITY=NAME`), else the first that works.
    backends: tuple[tuple[str, str], ...] = ()


def session_policy(
    session_type: SessionType, limit: float | None = None, cpu_budget: float | None = None
) -> Policy:
    """The policy of one run: the defaults, with `--limit` and `--cpu-budget` applied.

    `cpu_budget` is in cores (`math.inf`: no budget; `None`: the type's own). Raises
    `ValueError` when `limit` is longer than the type's limit.
    """
    policy = Policy()
    if cpu_budget is not None:
        policy = replace(policy, cpu_budget_frontmost=cpu_budget, cpu_budget_background=cpu_budget)
    if limit is None:
        return policy
    longest = policy.limit(session_type)
    if longest is not None and timedelta(seconds=limit) > longest:
        raise ValueError(
            f"{limit:g} s is longer than the {session_type.value} limit of "
            f"{longest.total_seconds():g} s"
        )
    limits = dict(policy.limits)
    limits[session_type] = timedelta(seconds=limit)
    return replace(policy, limits=limits)


def run_in_session(options: RunOptions, make_host: HostFactory | None = None) -> int:
    """Run the command inside a session; return the exit status for `xrs run`.

    `make_host` builds the host from `options.policy` (default: `EmbeddedHost`). It is the one
    seam for tests, which pass a host whose system conditions refuse sessions, or whose policy
    samples the CPU more often.
    """
    from .._backends.select import BackendUnavailable

    missing = _unrunnable(options.command[0])
    if missing is not None:  # say so before a session starts, not after
        _error(missing[1])
        return missing[0]
    try:
        make = make_host or _host_maker(options)
    except BackendUnavailable as error:  # a backend asked for by name cannot work here
        _error(f"{error}; the command was not run")
        return EXIT_USAGE
    with _Inbox() as inbox, _Signals(inbox) as signals:
        host = make(options.policy)
        try:
            return _Runner(host, options, signals, inbox).run()
        finally:
            host.close()


def _host_maker(options: RunOptions) -> HostFactory:
    """An embedded host with the backends asked for by name, the first that work for the rest.

    Only keep-awake is chosen unless asked for: a session of `xrs run` is never scheduled and
    never alerts, so the wake-alarm and alert backends are neither probed nor imported."""
    from .._backends.select import survey

    chosen = survey(prefer=dict(options.backends), needs=("keep-awake",)).backends
    return lambda policy: EmbeddedHost(policy, backends=chosen)


# ---------------------------------------------------------------------- notes and signals


class _Woke(enum.Enum):
    """Why the main thread was woken, besides a signal."""

    SESSION = "a session event"
    CHILD = "the child exited"


class _Caught(NamedTuple):
    """A signal `xrs` caught, and whether the child existed at that moment."""

    signum: int
    child_existed: bool


_Note = _Woke | _Caught


class _Inbox:
    """Notes for the main thread, put from any thread or from a signal handler.

    A note goes into a `SimpleQueue` (whose `put` is reentrant, so safe in a signal handler),
    then a byte into a pipe. The main thread sleeps in `select` on that pipe, which is also the
    interpreter's signal wakeup fd: a signal the kernel hands to another thread still wakes the
    main thread, which then runs the Python handler, which puts its note. (A plain blocking
    `get` would sleep on through a signal delivered to another thread.)
    """

    def __init__(self) -> None:
        self._notes: SimpleQueue[_Note] = SimpleQueue()
        self.wakeup_fd: int = -1
        self._read_fd: int = -1

    def __enter__(self) -> _Inbox:
        self._read_fd, self.wakeup_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._read_fd)
        os.close(self.wakeup_fd)

    def put(self, note: _Note) -> None:
        self._notes.put(note)
        with contextlib.suppress(BlockingIOError):  # full: the reader is awake anyway
            os.write(self.wakeup_fd, b"\0")

    def get(self) -> _Note:
        """The next note, sleeping until there is one."""
        while (note := self.get_nowait()) is None:
            select([self._read_fd], [], [])
            with contextlib.suppress(BlockingIOError):
                os.read(self._read_fd, 4096)
        return note

    def get_nowait(self) -> _Note | None:
        try:
            return self._notes.get_nowait()
        except Empty:
            return None


#: What `signal.signal` returns and takes back.
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _Signals:
    """Catches SIGTERM, SIGHUP and SIGINT while in use; restores the previous handlers after.

    Handlers can only be set from the main thread; elsewhere (an embedding program's worker
    thread) nothing is caught and signals keep their previous effect.
    """

    def __init__(self, inbox: _Inbox) -> None:
        self._inbox = inbox
        self._previous: dict[int, _Handler] = {}
        self._previous_wakeup_fd: int | None = None
        #: Set by the main thread once `Popen` has returned.
        self.child_exists = False
        #: Whether `xrs` is in its terminal's foreground process group (Ctrl-C reaches both).
        self.from_terminal = False

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            self.from_terminal = _in_terminal_foreground()
            self._previous_wakeup_fd = signal.set_wakeup_fd(
                self._inbox.wakeup_fd, warn_on_full_buffer=False
            )
            for signum in _FORWARDED:
                self._previous[signum] = signal.signal(signum, self._caught)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        self._inbox.put(_Caught(signum, self.child_exists))

    def should_forward(self, caught: _Caught) -> bool:
        """Forward all but a terminal's Ctrl-C that the existing child received itself."""
        from_terminal = caught.signum == signal.SIGINT and self.from_terminal
        return not (from_terminal and caught.child_existed)


def _in_terminal_foreground() -> bool:
    """Whether this process group is the foreground group of the controlling terminal."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


def _first_caught(inbox: _Inbox) -> _Caught | None:
    """The first signal among the notes already queued (the others are dropped)."""
    while (note := inbox.get_nowait()) is not None:
        if isinstance(note, _Caught):
            return note
    return None


# ---------------------------------------------------------------------- the run


class _Watcher(ExtendedRuntimeSessionDelegate):
    """Prints session events, keeps how the session went, and wakes the main thread."""

    def __init__(self, host: EmbeddedHost, quiet: bool, inbox: _Inbox) -> None:
        self._host = host
        self._quiet = quiet
        self._inbox = inbox
        self.started = False
        self.ended: tuple[InvalidationReason, ExtendedRuntimeSessionError | None] | None = None

    def say(self, message: str) -> None:
        if not self._quiet:
            stamp = self._host.now.strftime("%H:%M:%S")
            print(f"xrs [{stamp}] {message}", file=sys.stderr, flush=True)

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        expiry = _clock_time(session.expiration_date)
        self.say(
            f"session started: {session.session_type} for {session.app.app_id}, expires at {expiry}"
        )
        self.started = True  # after the line: the main thread's next lines come after it
        self._inbox.put(_Woke.SESSION)

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self.say(f"session will expire at {_clock_time(session.expiration_date)}")

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self.ended = (reason, error)
        if self.started:  # a refusal is reported once, by `_refusal`
            detail = f": {error}" if error is not None else ""
            self.say(f"session ended: {reason.name}{detail}")
        if self.started and reason is InvalidationReason.RESIGNED_FRONTMOST:
            self.say("the command stays with its job and goes on without a session after fg")
        self._inbox.put(_Woke.SESSION)

    def command_must_stop(self) -> bool:
        """Whether the session ended in a way that stops the command: any but the app leaving
        the foreground, after which the command stays with its terminal job."""
        return self.ended is not None and self.ended[0] is not InvalidationReason.RESIGNED_FRONTMOST


class _Runner:
    """One `xrs run`, from the session's start to the command's exit status."""

    def __init__(
        self,
        host: EmbeddedHost,
        options: RunOptions,
        signals: _Signals,
        inbox: _Inbox,
    ) -> None:
        self.host = host
        self.options = options
        self.signals = signals
        self.inbox = inbox
        self.watcher = _Watcher(host, options.quiet, inbox)
        app = host.app(options.app_id or _default_app_id(options.command[0]), options.session_type)
        self.session = ExtendedRuntimeSession(app=app, delegate=self.watcher)

    def run(self) -> int:
        follower = follow_terminal(self.session.app)
        try:
            return self._run()
        finally:
            follower.stop()

    def _run(self) -> int:
        refused = self._start()
        if refused is not None:
            return refused
        keep_awake = self.host.backends.keep_awake
        detail = "none" if keep_awake is None else keep_awake.probe().detail
        self.watcher.say(f"keep-awake: {detail}")
        caught = _first_caught(self.inbox)
        if caught is not None:
            return self._abandon(caught)
        return self._supervise()

    def _start(self) -> int | None:
        """Start the session; the exit status if the command must not run, else `None`."""
        self.session.start()
        while not self.watcher.started and self.watcher.ended is None:
            note = self.inbox.get()
            if isinstance(note, _Caught):
                return self._abandon(note)
        if self.session.state is not SessionState.RUNNING:
            reason, error = self.watcher.ended or (InvalidationReason.ERROR, None)
            app_id = self.session.app.app_id
            _error(_refusal(reason, error, self.host.engine, app_id))
            return EXIT_SESSION_REFUSED
        return None

    def _abandon(self, caught: _Caught) -> int:
        """A signal came before the command started: do not start it."""
        self.watcher.say(f"{signal.Signals(caught.signum).name} received: the command was not run")
        self.session.invalidate()
        return 128 + caught.signum

    def _supervise(self) -> int:
        child = _spawn(self.options.command)
        if isinstance(child, int):
            self.session.invalidate()
            return child
        self.signals.child_exists = True
        start_thread(_wait_child, name="xrs-child", args=(child, self.inbox))
        while child.poll() is None and not self.watcher.command_must_stop():
            note = self.inbox.get()
            if isinstance(note, _Caught) and self.signals.should_forward(note):
                child.send_signal(note.signum)
        if child.poll() is None:
            self._explain_end()
            grace = self.options.grace
            self.watcher.say(f"stopping the command (SIGTERM, then SIGKILL after {grace:g} s)")
            _stop_tree(child, grace)
        else:
            self.session.invalidate()
        return _status(child.wait())

    def _explain_end(self) -> None:
        """Say so when the CPU budget ended the session: nothing else would tell why."""
        _, error = self.watcher.ended or (InvalidationReason.NONE, None)
        if error is None or error.code is not ErrorCode.EXCEEDED_RESOURCE_LIMITS:
            return
        policy = self.host.engine.policy  # what the engine enforces
        budget = policy.cpu_budget(self.options.session_type)
        window = policy.cpu_window.total_seconds()
        _error(
            f"the command's process tree used more than {budget:g} core of CPU on average over "
            f"{window:g} s, so the session ended (EXCEEDED_RESOURCE_LIMITS) and the command is "
            f"being stopped; for CPU-heavy work run with --cpu-budget none, or a higher budget "
            f"such as --cpu-budget {budget * 4:g}"
        )


def _unrunnable(program: str) -> tuple[int, str] | None:
    """Why `program` cannot run, as an exit status and a message; `None` when it looks runnable.

    Checked before the session starts, so a typo never holds the machine awake even for a
    moment; `_spawn` still handles the program vanishing in between.
    """
    if os.sep in program:
        path = Path(program)
        if not path.exists():
            return EXIT_NOT_FOUND, f"command not found: {program}"
        if path.is_dir() or not os.access(path, os.X_OK):
            return EXIT_NOT_EXECUTABLE, f"command not executable: {program}"
        return None
    if shutil.which(program) is None:
        return EXIT_NOT_FOUND, f"command not found: {program}"
    return None


def _spawn(command: tuple[str, ...]) -> subprocess.Popen[bytes] | int:
    """Start the command; on failure say why and return the shell's exit status."""
    try:
        return subprocess.Popen(command)
    except FileNotFoundError:
        _error(f"command not found: {command[0]}")
        return EXIT_NOT_FOUND
    except PermissionError:
        _error(f"command not executable: {command[0]}")
        return EXIT_NOT_EXECUTABLE
    except OSError as error:
        _error(f"cannot execute {command[0]}: {error.strerror}")
        return EXIT_NOT_EXECUTABLE


def _wait_child(child: subprocess.Popen[bytes], inbox: _Inbox) -> None:
    child.wait()
    inbox.put(_Woke.CHILD)


# ---------------------------------------------------------------------- stopping the tree


def _stop_tree(child: subprocess.Popen[bytes], grace: float) -> None:
    """Stop the child and its descendants within one grace period, then reap the child.

    SIGTERM goes to every member at once; whoever is still there when `grace` seconds have
    passed in total (descendants forked meanwhile included) gets SIGKILL. The child is signalled
    and reaped through `Popen`, which keeps its status; its descendants, not ours to reap,
    through psutil (a zombie counts as gone: it no longer runs).
    """
    clock = SystemClock()
    descendants = _descendants(child.pid)
    child.send_signal(signal.SIGTERM)
    for process in descendants.values():
        _signal(process, signal.SIGTERM)
    _wait_gone(child, descendants, clock.monotonic() + grace, clock)
    survivors = {**descendants, **_descendants(child.pid)}
    if child.poll() is None:
        child.kill()
    for process in survivors.values():
        _signal(process, signal.SIGKILL)
    child.wait()
    _wait_gone(child, survivors, clock.monotonic() + _KILL_WAIT, clock)


def _wait_gone(
    child: subprocess.Popen[bytes],
    descendants: dict[int, psutil.Process],
    deadline: float,
    clock: SystemClock,
) -> None:
    """Wait until the child has exited and no descendant runs, or until `deadline`."""
    while clock.monotonic() < deadline:
        if child.poll() is not None and not any(map(_running, descendants.values())):
            return
        clock.sleep(min(_POLL, deadline - clock.monotonic()))


def _descendants(pid: int) -> dict[int, psutil.Process]:
    import psutil

    try:
        return {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return {}


def _running(process: psutil.Process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(process: psutil.Process, signum: int) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(signum)


# ---------------------------------------------------------------------- messages


def _refusal(
    reason: InvalidationReason,
    error: ExtendedRuntimeSessionError | None,
    engine: Engine,
    app_id: str,
) -> str:
    """One line: why the session could not start, and what to do about it."""
    if reason is InvalidationReason.SUPPRESSED_BY_SYSTEM:
        name, why = reason.name, _suppression(engine.conditions, engine.policy)
    elif reason is InvalidationReason.SESSION_IN_PROGRESS:
        name = reason.name
        why = f"{app_id} already has a session; wait for it to end, or pass another --app-id"
    else:
        code = error.code if error is not None else ErrorCode.UNKNOWN
        message = error.message if error is not None else "the reason is unknown"
        hint = _ERROR_HINTS.get(code)
        name, why = code.name, message.rstrip(".")
        if hint is not None:
            why = f"{why}; {hint}"
    return f"the session could not start: {name} ({why}); the command was not run"


#: What the user can do about each error that can refuse an `xrs run` session.
_ERROR_HINTS = {
    ErrorCode.UNSUPPORTED_SESSION_TYPE: "choose another --type",
    ErrorCode.NOT_APPROVED_TO_START_SESSION: "allow this app's sessions, or pass another --app-id",
    ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE: "run xrs from the foreground",
}


def _suppression(conditions: Conditions, policy: Policy) -> str:
    """What suppresses sessions now, from the host's conditions."""
    if conditions.paused:
        return "all sessions are paused; resume them, then run the command again"
    if conditions.shutting_down:
        return "the system is shutting down"
    if conditions.power_saver:
        return "power-saver mode is on; turn it off to run sessions"
    if conditions.battery_low(policy.battery_low_percent):
        return f"the battery is at {conditions.battery_percent:g}% and not charging; plug it in"
    return "sessions are paused or the system is shutting down or saving power"


def _error(message: str) -> None:
    print(f"xrs run: {message}", file=sys.stderr, flush=True)


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


_APP_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._-")


def _default_app_id(program: str) -> str:
    name = "".join(c if c in _APP_ID_CHARACTERS else "-" for c in Path(program).name)
    return f"xrs.run.{name.strip('.-_') or 'command'}"[:255]


def _clock_time(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%H:%M:%S UTC")
