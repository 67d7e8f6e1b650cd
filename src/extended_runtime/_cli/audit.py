"""`xrs log`: the daemon's audit log, read from its database.

The daemon keeps every event it announces in its SQLite store (`_backends/sqlite.py`). This
command reads that file read-only, so it works whether the daemon runs or not, and never writes
to it; SQLite's WAL lets it read while the daemon writes. Each event is one line: when, what,
which app and session, and the few fields that say what happened (a reason and error, a start
date, a lateness, a failed effect's message).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from .._core.clock import SystemClock, as_utc

__all__ = ["describe", "parse_since", "show"]

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """An instant from `--since`: ISO 8601 with its offset, or a span back from `now`."""
    span = _SPAN.match(text.strip().lower())
    if span is not None:
        return now - timedelta(seconds=float(span.group(1)) * _UNIT[span.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 instant (2026-12-06T07:00+01:00) nor a span "
            "(90s, 30m, 2h, 1d)"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset: add one, e.g. {text}+00:00")
    return as_utc(when, "--since")


def show(app_id: str | None, since: str | None, limit: int) -> tuple[str, int]:
    """The text of `xrs log` and its exit status."""
    from .._daemon.paths import database_path

    start = None if since is None else parse_since(since, SystemClock().now())
    path = database_path()
    if not path.is_file():
        return f"no audit log at {path}: the daemon has not run as this user yet", 1
    from .._backends.sqlite import StoreError, read_events

    try:
        entries = read_events(path, app_id=app_id, since=start, limit=limit)
    except StoreError as error:
        return str(error), 1
    if not entries:
        return "no event matches", 0
    return "\n".join(describe(entry.at, entry.kind, entry.body) for entry in entries), 0


def describe(at: datetime, kind: str, body: dict[str, Any]) -> str:
    """One event as one line."""
    who = " ".join(str(body[key]) for key in ("app_id", "session_id") if body.get(key))
    return f"{at.isoformat(timespec='milliseconds')}  {kind:<20} {who}{_detail(body)}".rstrip()


def _detail(body: dict[str, Any]) -> str:
    parts = []
    if body.get("reason") is not None and body.get("kind") == "SessionInvalidated":
        parts.append(f"reason={_reason(body['reason'])}")
    if body.get("error_code") is not None:
        parts.append(f"error={_error(body['error_code'])}")
    for key in ("start_date", "expiration_date", "lateness", "effect", "count"):
        if body.get(key) not in (None, "PT0S"):
            parts.append(f"{key}={body[key]}")
    if body.get("message"):
        parts.append(f"({body['message']})")
    return "  " + " ".join(parts) if parts else ""


def _reason(value: object) -> str:
    from .._core.enums import InvalidationReason

    names = {int(reason): reason.name for reason in InvalidationReason}
    return names.get(value, str(value)) if isinstance(value, int) else str(value)


def _error(value: object) -> str:
    from .._core.enums import ErrorCode

    names = {int(code): code.name for code in ErrorCode}
    return names.get(value, str(value)) if isinstance(value, int) else str(value)
