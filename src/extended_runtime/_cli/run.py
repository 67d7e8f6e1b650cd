"""`xrs run`: a command inside a session on the embedded host.

The flow, in one thread plus the host's:

1. build an app (`--app-id`, else `xrs.run.<command name>`) of the chosen type, and a policy
   whose limit for that type is `--limit` when given (never longer than the type's own);
2. start the session and wait for `did_start` or `did_invalidate`; a refused session ends
   `xrs run` with `EXIT_SESSION_REFUSED`, and the command is never run;
3. run the command as a child, forwarding SIGTERM, SIGHUP and SIGINT to it (not a terminal's
   Ctrl-C, which reaches it anyway), and wait for whichever comes first: the child exits, or
   the session ends;
4. if the child exited, invalidate the session; if the session ended first, stop the child's
   whole process tree (SIGTERM, then SIGKILL after the grace period);
5. exit with the child's status, shell style (128 + N for signal N).

Events are printed to stderr as they arrive, so the command's own output stays clean.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._api.delegate import ExtendedRuntimeSessionDelegate
from .._api.session import ExtendedRuntimeSession
from .._core.enums import InvalidationReason, SessionState, SessionType
from .._core.errors import ExtendedRuntimeSessionError
from .._core.policy import Policy
from .._hosts.embedded import EmbeddedHost
from .main import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SESSION_REFUSED

if TYPE_CHECKING:
    import psutil

__all__ = ["RunOptions", "run_in_session"]

_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What `xrs run` was asked to do."""

    session_type: str
    app_id: str | None
    limit: float | None
    grace: float
    quiet: bool
    command: tuple[str, ...]


class _Watcher(ExtendedRuntimeSessionDelegate):
    """Prints session events and wakes the main thread when the session changes."""

    def __init__(self, host: EmbeddedHost, quiet: bool) -> None:
        self._host = host
        self._quiet = quiet
        self.changed = threading.Event()

    def say(self, message: str) -> None:
        if not self._quiet:
            stamp = self._host.now.strftime("%H:%M:%S")
            print(f"xrs [{stamp}] {message}", file=sys.stderr, flush=True)

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        expiry = _clock_time(session.expiration_date)
        self.say(
            f"session started: {session.session_type} for {session.app.app_id}, expires at {expiry}"
        )
        self.changed.set()

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self.say(f"session will expire at {_clock_time(session.expiration_date)}")

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        detail = f": {error}" if error is not None else ""
        self.say(f"session ended: {reason.name}{detail}")
        self.changed.set()


def run_in_session(options: RunOptions) -> int:
    """Run the command inside a session; return the exit status for `xrs run`."""
    session_type = SessionType(options.session_type)
    try:
        policy = _policy(session_type, options.limit)
    except ValueError as error:
        print(f"xrs run: {error}", file=sys.stderr)
        return 2
    host = EmbeddedHost(policy)
    try:
        return _run(host, session_type, options)
    finally:
        host.close()


def _run(host: EmbeddedHost, session_type: SessionType, options: RunOptions) -> int:
    app_id = options.app_id or _default_app_id(options.command[0])
    app = host.app(app_id, session_type)
    watcher = _Watcher(host, options.quiet)
    session = ExtendedRuntimeSession(app=app, delegate=watcher)
    session.start()
    watcher.changed.wait()
    if session.state is not SessionState.RUNNING:
        watcher.say("the command was not run")
        return EXIT_SESSION_REFUSED
    watcher.say(f"keep-awake: {host.backends.keep_awake.probe().detail}")
    return _supervise(session, watcher, options)


def _supervise(session: ExtendedRuntimeSession, watcher: _Watcher, options: RunOptions) -> int:
    try:
        child = subprocess.Popen(options.command)
    except FileNotFoundError:
        watcher.say(f"command not found: {options.command[0]}")
        session.invalidate()
        return EXIT_NOT_FOUND
    except PermissionError:
        watcher.say(f"command not executable: {options.command[0]}")
        session.invalidate()
        return EXIT_NOT_EXECUTABLE
    watcher.changed.clear()
    threading.Thread(target=_wait_child, args=(child, watcher), daemon=True).start()
    previous = _forward_signals(child)
    try:
        watcher.changed.wait()
        while child.poll() is None and session.state is not SessionState.INVALID:
            watcher.changed.clear()
            watcher.changed.wait()
        if child.poll() is None:
            watcher.say(f"stopping the command (SIGTERM, then SIGKILL after {options.grace:g} s)")
            _stop_tree(child, options.grace)
        else:
            session.invalidate()
    finally:
        _restore_signals(previous)
    return _status(child.wait())


def _wait_child(child: subprocess.Popen[bytes], watcher: _Watcher) -> None:
    child.wait()
    watcher.changed.set()


def _stop_tree(child: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child and its descendants, SIGKILL whatever is left after `grace`.

    The child itself is waited for through `Popen` (which reaps it and keeps its status);
    its descendants, not ours to reap, through psutil.
    """
    import psutil

    try:
        descendants = psutil.Process(child.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    child.send_signal(signal.SIGTERM)
    for process in descendants:
        _signal(process, signal.SIGTERM)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        child.kill()
    _, alive = psutil.wait_procs(descendants, timeout=grace)
    for process in alive:
        _signal(process, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace)


def _signal(process: psutil.Process, signum: int) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(signum)


#: What `signal.signal` returns and takes back.
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _forward_signals(child: subprocess.Popen[bytes]) -> dict[int, _Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    from_terminal = _in_terminal_foreground()

    def forward(signum: int, frame: FrameType | None) -> None:
        # a terminal's Ctrl-C already reached the command, which is in our process group
        if signum == signal.SIGINT and from_terminal:
            return
        if child.poll() is None:
            os.kill(child.pid, signum)

    return {signum: signal.signal(signum, forward) for signum in _FORWARDED}


def _in_terminal_foreground() -> bool:
    """Whether this process group is the foreground group of the controlling terminal."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _policy(session_type: SessionType, limit: float | None) -> Policy:
    policy = Policy()
    if limit is None:
        return policy
    longest = policy.limit(session_type)
    if longest is not None and timedelta(seconds=limit) > longest:
        raise ValueError(
            f"--limit {limit:g} is longer than the {session_type.value} limit of "
            f"{longest.total_seconds():g} s"
        )
    limits = dict(policy.limits)
    limits[session_type] = timedelta(seconds=limit)
    return replace(policy, limits=limits)


def _default_app_id(program: str) -> str:
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in Path(program).name)
    return f"xrs.run.{name.strip('.-_') or 'command'}"


def _clock_time(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%H:%M:%S UTC")
