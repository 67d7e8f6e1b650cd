"""Session records: what a store keeps of each session, folded from its events.

A record is the latest known state of one session, rebuilt from the engine's events by
`fold(record, event)`, so the store needs no second source of truth. Serialised records carry
`schema`; `SessionRecord.from_dict` refuses a schema newer than `SCHEMA_VERSION`, with a
message saying to upgrade, instead of misreading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import as_utc
from .enums import ErrorCode, InvalidationReason, SessionState, SessionType
from .events import (
    AlertPlayed,
    SessionEvent,
    SessionInvalidated,
    SessionScheduled,
    SessionStarted,
)

__all__ = ["FOLDED", "SCHEMA_VERSION", "SessionRecord", "check_schema", "fold"]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """The latest known state of one session."""

    session_id: str
    app_id: str
    session_type: SessionType | None
    state: SessionState
    updated_at: datetime
    start_date: datetime | None = None
    started_at: datetime | None = None
    expiration_date: datetime | None = None
    reason: InvalidationReason | None = None
    error_code: ErrorCode | None = None
    alerts: int = 0
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, instants as ISO 8601 UTC strings."""
        return {
            "schema": self.schema,
            "session_id": self.session_id,
            "app_id": self.app_id,
            "session_type": None if self.session_type is None else self.session_type.value,
            "state": int(self.state),
            "updated_at": self.updated_at.isoformat(),
            "start_date": _iso(self.start_date),
            "started_at": _iso(self.started_at),
            "expiration_date": _iso(self.expiration_date),
            "reason": None if self.reason is None else int(self.reason),
            "error_code": None if self.error_code is None else int(self.error_code),
            "alerts": self.alerts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        """Read a dict written by `to_dict`; refuses a newer schema."""
        check_schema(int(data.get("schema", 0)), data.get("session_id"))
        kind = data["session_type"]
        return cls(
            session_id=str(data["session_id"]),
            app_id=str(data["app_id"]),
            session_type=None if kind is None else SessionType(kind),
            state=SessionState(data["state"]),
            updated_at=as_utc(datetime.fromisoformat(data["updated_at"]), "updated_at"),
            start_date=_from_iso(data.get("start_date")),
            started_at=_from_iso(data.get("started_at")),
            expiration_date=_from_iso(data.get("expiration_date")),
            reason=None if data.get("reason") is None else InvalidationReason(data["reason"]),
            error_code=None if data.get("error_code") is None else ErrorCode(data["error_code"]),
            alerts=int(data.get("alerts", 0)),
        )


def check_schema(schema: int, session_id: object) -> None:
    """Raise `ValueError` if a record's `schema` is newer than this version understands."""
    if schema > SCHEMA_VERSION:
        raise ValueError(
            f"session record {session_id!r} has schema {schema}, newer than this version of "
            f"extended-runtime understands ({SCHEMA_VERSION}): upgrade it"
        )


#: The events that change a session's record; the others leave it as it is.
FOLDED = (SessionScheduled, SessionStarted, SessionInvalidated, AlertPlayed)


def fold(record: SessionRecord | None, event: SessionEvent) -> SessionRecord | None:
    """The record after `event`; `None` if the event says nothing a record keeps.

    Records are built field by field rather than with `dataclasses.replace`: a store folds every
    event of every session, and this is its hot path.
    """
    if isinstance(event, AlertPlayed):
        return None if record is None else _alerted(record, event.at)
    if not isinstance(event, SessionScheduled | SessionStarted | SessionInvalidated):
        return None
    old = record if record is not None else _blank(event)
    start_date = event.start_date if isinstance(event, SessionScheduled) else old.start_date
    started_at, expiration_date = old.started_at, old.expiration_date
    if isinstance(event, SessionStarted):
        started_at, expiration_date = event.at, event.expiration_date
    reason, error_code = old.reason, old.error_code
    if isinstance(event, SessionInvalidated):
        reason, error_code = event.reason, event.error_code
    return SessionRecord(
        event.session_id,
        event.app_id,
        event.session_type,
        event.state,
        event.at,
        start_date,
        started_at,
        expiration_date,
        reason,
        error_code,
        old.alerts,
    )


def _blank(event: SessionEvent) -> SessionRecord:
    return SessionRecord(event.session_id, event.app_id, None, event.state, event.at)


def _alerted(old: SessionRecord, at: datetime) -> SessionRecord:
    return SessionRecord(
        old.session_id,
        old.app_id,
        old.session_type,
        old.state,
        at,
        old.start_date,
        old.started_at,
        old.expiration_date,
        old.reason,
        old.error_code,
        old.alerts + 1,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: object) -> datetime | None:
    if value is None:
        return None
    return as_utc(datetime.fromisoformat(str(value)))
