"""`xrs run`: a command inside a session on the embedded host.

The flow, in the main thread plus the host's threads and one thread that waits for the child:

1. refuse a command that cannot run (not found, not executable) before anything else, so a typo
   never starts a session; then catch SIGTERM, SIGHUP and SIGINT (`child.Signals`), so a signal can
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

Everything that wakes the main thread is a note in one inbox (`child.Inbox`): a session event,
the child's exit, a caught signal; `child` explains it. A refused start can be produced in tests
through `run_in_session`'s one seam, `make_host`.

The quick path (`quick`) may have started the command already, before this module was even
imported: `continue_in_session` takes it over (`Adopted`). Then step 3 starts the session on a
running command, a signal meanwhile is forwarded to it, and a session that cannot start stops
it as an expired one would (exit `EXIT_SESSION_REFUSED`); steps 5 and 6 are the same.

Events are printed to stderr as they arrive, so the command's own output stays clean; `-q`
silences them, never the errors (a refusal, a missing command, an exceeded CPU budget).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .._api.delegate import ExtendedRuntimeSessionDelegate
from .._api.session import ExtendedRuntimeSession
from .._core.clock import SystemClock
from .._core.conditions import Conditions
from .._core.enums import ErrorCode, InvalidationReason, SessionState, SessionType
from .._core.errors import ExtendedRuntimeSessionError
from .._core.policy import Policy
from .._hosts.embedded import EmbeddedHost
from .._hosts.terminal import follow_terminal
from .child import (
    EXIT_NOT_EXECUTABLE,
    EXIT_NOT_FOUND,
    Caught,
    Inbox,
    Signals,
    Woke,
    default_app_id,
    error,
    first_caught,
    shell_status,
    spawn,
    unrunnable,
    watch_child,
)

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
    "continue_in_session",
    "run_in_session",
    "session_policy",
]

#: `xrs run` exits with this when the session cannot start (the command did not run).
EXIT_SESSION_REFUSED = 75
#: ... with this when it was asked for what cannot be (a backend that cannot work here).
EXIT_USAGE = 2

#: Builds the host for one run from its policy; `EmbeddedHost` itself by default.
HostFactory = Callable[[Policy], EmbeddedHost]

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

    missing = unrunnable(options.command[0])
    if missing is not None:  # say so before a session starts, not after
        error(missing[1])
        return missing[0]
    try:
        make = make_host or _host_maker(options)
    except BackendUnavailable as unavailable:  # a backend asked for by name cannot work here
        error(f"{unavailable}; the command was not run")
        return EXIT_USAGE
    with Inbox() as inbox, Signals(inbox) as signals:
        host = make(options.policy)
        try:
            return _Runner(host, options, signals, inbox).run()
        finally:
            host.close()


@dataclass(frozen=True, slots=True)
class Adopted:
    """A command the quick path started before the session (see `quick`), handed over.

    `release` lets go of the quick path's own keep-awake; it is called once the session's
    keep-awake is held, or when the run ends, so the machine never sleeps in between."""

    child: subprocess.Popen[bytes]
    inbox: Inbox
    signals: Signals
    release: Callable[[], None]


def continue_in_session(
    options: RunOptions, adopted: Adopted, make_host: HostFactory | None = None
) -> int:
    """Take over a command the quick path started: the session starts now and supervises it.

    `options.policy` already allows for the time the command has run (the quick path shortens
    the limit by it). A session that cannot start stops the command, as an expired one would.
    `make_host` is the tests' seam, as for `run_in_session`.
    """
    try:
        host = (make_host or _host_maker(options))(options.policy)
    except Exception:
        adopted.release()
        raise
    try:
        return _Runner(host, options, adopted.signals, adopted.inbox, adopted).run()
    finally:
        adopted.release()
        host.close()


def _host_maker(options: RunOptions) -> HostFactory:
    """An embedded host with the backends asked for by name, the first that work for the rest.

    Only keep-awake is chosen unless asked for: a session of `xrs run` is never scheduled and
    never alerts, so the wake-alarm and alert backends are neither probed nor imported."""
    from .._backends.select import survey

    chosen = survey(prefer=dict(options.backends), needs=("keep-awake",)).backends
    return lambda policy: EmbeddedHost(policy, backends=chosen)


# ---------------------------------------------------------------------- the run


class _Watcher(ExtendedRuntimeSessionDelegate):
    """Prints session events, keeps how the session went, and wakes the main thread."""

    def __init__(self, host: EmbeddedHost, quiet: bool, inbox: Inbox) -> None:
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
        self._inbox.put(Woke.SESSION)

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
        self._inbox.put(Woke.SESSION)

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
        signals: Signals,
        inbox: Inbox,
        adopted: Adopted | None = None,
    ) -> None:
        self.host = host
        self.options = options
        self.signals = signals
        self.inbox = inbox
        self.adopted = adopted
        self.watcher = _Watcher(host, options.quiet, inbox)
        app = host.app(options.app_id or default_app_id(options.command[0]), options.session_type)
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
        if self.adopted is not None:
            return self._supervise(self._take_over(self.adopted))
        caught = first_caught(self.inbox)
        if caught is not None:
            return self._abandon(caught)
        child = spawn(self.options.command)
        if isinstance(child, int):
            self.session.invalidate()
            return child
        self.signals.child_exists = True
        watch_child(child, self.inbox)
        return self._supervise(child)

    def _start(self) -> int | None:
        """Start the session; the exit status if the command must not run, else `None`."""
        self.session.start()
        while not self.watcher.started and self.watcher.ended is None:
            note = self.inbox.get()
            if isinstance(note, Caught):
                if self.adopted is None:
                    return self._abandon(note)
                self.signals.forward(note, self.adopted.child)
        if self.session.state is SessionState.RUNNING:
            return None
        reason, ended = self.watcher.ended or (InvalidationReason.ERROR, None)
        why = _refusal(reason, ended, self.host.engine, self.session.app.app_id)
        if self.adopted is None:
            error(f"{why}; the command was not run")
            return EXIT_SESSION_REFUSED
        child = self.adopted.child
        if child.poll() is None:
            error(f"{why}; the command is being stopped")
            _stop_tree(child, self.options.grace)
        child.wait()
        return EXIT_SESSION_REFUSED

    def _take_over(self, adopted: Adopted) -> subprocess.Popen[bytes]:
        """The quick path's child, now the session's: its lock goes once the session's is held
        (kept, should the session's keep-awake not be held within a second)."""
        if self.host.settle(1.0):
            adopted.release()
        return adopted.child

    def _abandon(self, caught: Caught) -> int:
        """A signal came before the command started: do not start it."""
        self.watcher.say(f"{signal.Signals(caught.signum).name} received: the command was not run")
        self.session.invalidate()
        return 128 + caught.signum

    def _supervise(self, child: subprocess.Popen[bytes]) -> int:
        while child.poll() is None and not self.watcher.command_must_stop():
            self.signals.forward(self.inbox.get(), child)
        if child.poll() is None:
            self._explain_end()
            grace = self.options.grace
            self.watcher.say(f"stopping the command (SIGTERM, then SIGKILL after {grace:g} s)")
            _stop_tree(child, grace)
        else:
            self.session.invalidate()
        return shell_status(child.wait())

    def _explain_end(self) -> None:
        """Say so when the CPU budget ended the session: nothing else would tell why."""
        _, ended = self.watcher.ended or (InvalidationReason.NONE, None)
        if ended is None or ended.code is not ErrorCode.EXCEEDED_RESOURCE_LIMITS:
            return
        policy = self.host.engine.policy  # what the engine enforces
        budget = policy.cpu_budget(self.options.session_type)
        window = policy.cpu_window.total_seconds()
        error(
            f"the command's process tree used more than {budget:g} core of CPU on average over "
            f"{window:g} s, so the session ended (EXCEEDED_RESOURCE_LIMITS) and the command is "
            f"being stopped; for CPU-heavy work run with --cpu-budget none, or a higher budget "
            f"such as --cpu-budget {budget * 4:g}"
        )


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
    return f"the session could not start: {name} ({why})"


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


def _clock_time(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%H:%M:%S UTC")
