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
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._core.clock import SystemClock
from .._core.enums import SessionState

__all__ = ["EXIT_NO_DAEMON", "connect", "install", "pause", "run_daemon", "status", "stop"]

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


def run_daemon(verbose: bool) -> int:
    """`xrs daemon`: serve in the foreground until SIGTERM or Ctrl-C."""
    from .._daemon.main import serve

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    from .._backends.sqlite import StoreError

    try:
        return serve()
    except (RuntimeError, StoreError, OSError) as error:
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


def status(env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """`xrs status`: what runs and what is scheduled, with the time left, as a table."""
    try:
        client = connect(env)
    except NoDaemon as error:
        return str(error), EXIT_NO_DAEMON
    try:
        answer = client.status()
    finally:
        client.close()
    return render_status(answer, SystemClock().now()), 0


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
    for row in sessions:
        rows.append(_row(row, now))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)
    if total > len(sessions):
        lines.append(f"... and {total - len(sessions)} more")
    return "\n".join(line.rstrip() for line in lines)


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


def stop(session_id: str, env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """`xrs stop ID`: the session ends with NONE, as if the user pressed Stop."""
    try:
        client = connect(env)
    except NoDaemon as error:
        return str(error), EXIT_NO_DAEMON
    try:
        if not client.stop(session_id):
            return (
                f"no running or scheduled session has the id {session_id!r}: "
                "`xrs status` lists them",
                1,
            )
    finally:
        client.close()
    return f"stopped {session_id}", 0


def pause(paused: bool, env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """`xrs pause` / `xrs resume`."""
    try:
        client = connect(env)
    except NoDaemon as error:
        return str(error), EXIT_NO_DAEMON
    try:
        client.pause(paused)
    finally:
        client.close()
    if paused:
        return "paused: running sessions ended, new ones are refused until `xrs resume`", 0
    return "resumed: sessions may run again", 0
