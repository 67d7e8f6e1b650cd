"""Reference implementations: the in-memory store and event sink."""

from __future__ import annotations

from .._core.events import Event
from .._core.records import SessionRecord
from ..abc import EventSink, Store

__all__ = ["MemoryEventSink", "MemoryStore"]


class MemoryStore(Store):
    """Session records in a dict, in insertion order."""

    name = "memory-store"

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}

    def save(self, record: SessionRecord) -> None:
        self._records[record.session_id] = record

    def get(self, session_id: str) -> SessionRecord | None:
        return self._records.get(session_id)

    def records(self, app_id: str | None = None) -> list[SessionRecord]:
        return [r for r in self._records.values() if app_id is None or r.app_id == app_id]


class MemoryEventSink(EventSink):
    """Every event in a list, for tests and `VirtualHost.events`."""

    name = "memory-events"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)
