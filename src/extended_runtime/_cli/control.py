"""`xrs daemon`, `xrs status`, `xrs stop`, `xrs pause`, `xrs resume`: the user's hand on the
daemon.

Each command is a function of its options returning the text to show and an exit status, so it
is tested without a terminal; `main.py` wires them to click. They reach the daemon through the
same client as apps do (`DaemonClient`), as the same user, and say plainly when there is no
daemon to talk to (exit 3) and what to run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .._core.clock import SystemClock
from .._core.enums import SessionState

__all__ = [
    "EXIT_NO_DAEMON",
    "app_policy",
    "apps",
    "connect",
    "forget",
    "install",
    "pause",
    "register",
    "run_daemon",
    "status",
    "stop",
]

#: Exit status when no daemon is reachable.
EXIT_NO_DAEMON = 3


class NoDaemon(Exception):
    """No daemon can be reached; the message says why and what to run."""


def connect(env: Mapping[str, str] | None = None) -> Any:
    """A client of the running daemon, or `NoDaemon`."""
    from .._daemon.client import DaemonClient, DaemonUnavailable
    from .._daemon.status import find_daemon

    found, why = find_daemon(env)
    if found is None:
        raise NoDaemon(f"no daemon to talk to: {why}. Start one with `xrs daemon`")
    try:
        return DaemonClient(found.socket)
    except DaemonUnavailable as error:
        raise NoDaemon(f"{error.message}. Start the daemon with `xrs daemon`") from None


def run_daemon(verbose: bool, backends: tuple[tuple[str, str], ...] = ()) -> int:
    """`xrs daemon`: serve in the foreground until SIGTERM or Ctrl-C."""
    from .._daemon.main import serve

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    from .._backends.select import BackendUnavailable
    from .._backends.sqlite import StoreError
    from .._daemon.config import ConfigError

    try:
        return serve(prefer=dict(backends))
    except (RuntimeError, StoreError, ConfigError, BackendUnavailable, OSError) as error:
        # another daemon holds the lock; the store is newer or not a database; a folder is
        # not ours or not a folder: each message says what to do
        print(f"xrs daemon: {error}", file=sys.stderr)
        return 1


def install(uninstall: bool) -> tuple[str, int]:
    """`xrs daemon --install` / `--uninstall`: the systemd user unit."""
    from .._daemon import unit

    if uninstall:
        result = unit.uninstall_unit()
    else:
        result = unit.install_unit([sys.executable, "-m", "extended_runtime", "daemon"])
    return result.message, 0


Result = tuple[str, int]


def with_daemon(work: Callable[[Any], Result], env: Mapping[str, str] | None = None) -> Result:
    """Run `work` with a client of the running daemon (closed after); without a daemon,
    what to run and `EXIT_NO_DAEMON`; a request the daemon refuses, its message and 1."""
    from .._daemon.client import DaemonUnavailable

    try:
        client = connect(env)
    except NoDaemon as error:
        return str(error), EXIT_NO_DAEMON
    try:
        return work(client)
    except DaemonUnavailable as error:
        return error.message, 1
    finally:
        client.close()


def _saying(text: str, call: Callable[[Any], object]) -> Callable[[Any], Result]:
    """Work that makes one call and then says `text`."""

    def work(client: Any) -> Result:
        call(client)
        return text, 0

    return work


def status(env: Mapping[str, str] | None = None) -> Result:
    """`xrs status`: what runs and what is scheduled, with the time left, as a table."""
    return with_daemon(lambda client: (render_status(client.status(), SystemClock().now()), 0), env)


def render_status(answer: dict[str, Any], now: datetime) -> str:
    """The status reply as text: a header line, then one row per session."""
    paused = " (paused: every session is suppressed)" if answer.get("paused") else ""
    awake = "held" if answer.get("keep_awake") else "not held"
    lines = [f"daemon pid {answer.get('pid')}{paused}; keep-awake {awake}"]
    sessions = answer.get("sessions") or []
    if not sessions:
        lines.append("no session runs or is scheduled")
        return "\n".join(lines)
    total = int(answer.get("running", 0)) + int(answer.get("scheduled", 0))
    lines[0] += f"; {answer.get('running', 0)} running, {answer.get('scheduled', 0)} scheduled"
    rows = [("session", "app", "type", "state", "when", "left")]
    rows += [_row(row, now) for row in sessions]
    lines.append(_table(rows))
    if total > len(sessions):
        lines.append(f"... and {total - len(sessions)} more")
    return "\n".join(lines)


def _row(row: dict[str, Any], now: datetime) -> tuple[str, str, str, str, str, str]:
    state = SessionState(row["state"])
    start, expires = row.get("start_date"), row.get("expiration_date")
    if state is SessionState.SCHEDULED and isinstance(start, datetime):
        when, left = start.isoformat(timespec="seconds"), _span(start - now) + " to start"
    elif isinstance(expires, datetime):
        when, left = expires.isoformat(timespec="seconds"), _span(expires - now)
    else:
        when, left = "-", "no limit"
    kind = row.get("session_type") or "-"
    return (row["session_id"], row["app_id"], kind, state.name.lower(), when, left)


def _span(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def stop(session_id: str, env: Mapping[str, str] | None = None) -> Result:
    """`xrs stop ID`: the session ends with NONE, as if the user pressed Stop."""

    def work(client: Any) -> Result:
        if client.stop(session_id):
            return f"stopped {session_id}", 0
        return (
            f"no running or scheduled session has the id {session_id!r}: `xrs status` lists them",
            1,
        )

    return with_daemon(work, env)


def pause(paused: bool, env: Mapping[str, str] | None = None) -> Result:
    """`xrs pause` / `xrs resume`."""
    text = (
        "paused: running sessions ended, new ones are refused until `xrs resume`"
        if paused
        else "resumed: sessions may run again"
    )
    return with_daemon(_saying(text, lambda client: client.pause(paused)), env)


def register(
    app_id: str,
    mode: str | None,
    launch: list[str] | None,
    cwd: str | None,
    env: Mapping[str, str] | None = None,
) -> Result:
    """`xrs apps register APP --mode MODE [--cwd DIR] [-- COMMAND...]`."""
    what = f"launched as {' '.join(launch)}" if launch else "never launched by the daemon"
    text = f"{app_id}: {mode or 'no background mode'}, {what}"
    return with_daemon(_saying(text, lambda client: client.declare(app_id, mode, launch, cwd)), env)


def forget(app_id: str, env: Mapping[str, str] | None = None) -> Result:
    """`xrs apps remove APP`."""

    def work(client: Any) -> Result:
        if client.forget(app_id):
            return f"{app_id}: registration removed", 0
        return f"{app_id} was not registered: `xrs apps list` shows the apps", 1

    return with_daemon(work, env)


#: What each policy command does, as `xrs apps` says it.
POLICY_TEXT = {
    "allow": "its sessions and alarms are allowed",
    "deny": "its sessions are refused (NOT_APPROVED_TO_START_SESSION) until `xrs apps allow`",
    "disable-alarms": "its alarms are refused (BAR_DISABLED) until `xrs apps allow`",
    "allow-launch": "the daemon may start it when its alarm is due and it is not running",
    "deny-launch": "the daemon will not start it; its alarms ring without it",
    "reset": "its answers are forgotten: allowed, and auto-launch will be asked again",
}


def app_policy(app_id: str, action: str, env: Mapping[str, str] | None = None) -> Result:
    """`xrs apps allow|deny|disable-alarms|reset APP`."""
    text = f"{app_id}: {POLICY_TEXT[action]}"
    return with_daemon(_saying(text, lambda client: client.app_policy(app_id, action)), env)


def apps(env: Mapping[str, str] | None = None) -> Result:
    """`xrs apps list`: every app the daemon knows, with the user's answers."""

    def work(client: Any) -> Result:
        known = client.apps()
        if not known:
            return "no app is known to the daemon", 0
        header = ("app", "mode", "running", "allowed", "alarms", "auto-launch", "launch")
        return _table([header, *(_app_row(app) for app in known)]), 0

    return with_daemon(work, env)


_AUTO = {0: "not asked", 1: "declined", 2: "allowed"}


def _app_row(app: dict[str, Any]) -> tuple[str, ...]:
    launch = app.get("launch")
    return (
        str(app["app_id"]),
        str(app.get("mode") or "-"),
        "yes" if app.get("running") else "no",
        "yes" if app.get("approved", True) else "denied",
        "disabled" if app.get("alarms_disabled") else "on",
        _AUTO.get(int(app.get("auto_launch", 0)), "?"),
        " ".join(launch) if isinstance(launch, list) else "-",
    )
