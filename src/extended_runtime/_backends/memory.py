"""Reference implementations: the in-memory store and event sink.

`MemoryStore` is the store every other one is measured against (the contract suite in
`extended_runtime.testing.contracts` runs on it first): a dict keyed by session id, whose
insertion order is the order of `records()`, since replacing a key keeps its place. Nothing
outlives the process, so every record is as durable as it will ever be when `save` returns and
`flush` has nothing to do. `refuse_newer` is the schema check every store makes before keeping a
record.
"""

from __future__ import annotations

from .._core.events import Event
from .._core.records import SessionRecord, check_schema
from ..abc import EventSink, Store

__all__ = ["MemoryEventSink", "MemoryStore", "refuse_newer"]


def refuse_newer(record: SessionRecord) -> None:
    """Raise `ValueError` if `record` has a schema newer than this version understands."""
    check_schema(record.schema, record.session_id)


class MemoryStore(Store):
    """Session records in a dict, in insertion order."""

    name = "memory-store"

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}

    def save(self, record: SessionRecord) -> None:
        refuse_newer(record)
        self._records[record.session_id] = record

    def get(self, session_id: str) -> SessionRecord | None:
        return self._records.get(session_id)

    def records(self, app_id: str | None = None) -> list[SessionRecord]:
        # copied in one step first, so a save from another thread cannot change it mid-loop
        kept = list(self._records.values())
        return [r for r in kept if app_id is None or r.app_id == app_id]


class MemoryEventSink(EventSink):
    """Every event in a list, for tests and `VirtualHost.events`."""

    name = "memory-events"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)
