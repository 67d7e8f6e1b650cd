"""The published contract suites, run against the reference and logging backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from extended_runtime._backends.memory import MemoryEventSink, MemoryStore
from extended_runtime._backends.null import (
    LogEventSink,
    LoggingAlerts,
    LoggingKeepAwake,
    LoggingWakeAlarm,
)
from extended_runtime._backends.process_cpu import ProcessTreeCpu
from extended_runtime._backends.sqlite import SqliteStore
from extended_runtime._core.records import SCHEMA_VERSION, SessionRecord
from extended_runtime.abc import (
    AlertBackend,
    CpuSource,
    EventSink,
    KeepAwakeBackend,
    Store,
    WakeAlarmBackend,
)
from extended_runtime.testing.contracts import (
    AlertContract,
    CpuSourceContract,
    EventSinkContract,
    KeepAwakeContract,
    StoreContract,
    WakeAlarmContract,
)


class TestMemoryStore(StoreContract):
    def make_store(self) -> Store:
        return MemoryStore()


class _SqliteFiles:
    """Each test's stores in a file of its own folder, all closed when the test ends."""

    folder: Path
    opened: list[SqliteStore]

    @pytest.fixture(autouse=True)
    def _files(self, tmp_path: Path) -> Iterator[None]:
        self.folder, self.opened = tmp_path, []
        yield
        for store in self.opened:
            store.close()

    def _open(self) -> SqliteStore:
        store = SqliteStore(self.folder / "store.db")
        self.opened.append(store)
        return store


class TestSqliteStore(_SqliteFiles, StoreContract):
    def make_store(self) -> Store:
        return self._open()

    def reopen(self, store: Store) -> Store:
        store.close()
        return self._open()


class TestSqliteEventSink(_SqliteFiles, EventSinkContract):
    """The audit log gives back the events it was given, decoded."""

    def make_sink(self) -> EventSink:
        return self._open()

    def recorded(self, sink: EventSink) -> list[object]:  # type: ignore[override]
        assert isinstance(sink, SqliteStore)
        return [entry.event() for entry in sink.events()]


class TestLoggingKeepAwake(KeepAwakeContract):
    """The logging stand-in: it records its own state (no machine is kept awake)."""

    def make_backend(self) -> KeepAwakeBackend:
        return LoggingKeepAwake()

    def is_held(self, backend: KeepAwakeBackend) -> bool:
        assert isinstance(backend, LoggingKeepAwake)
        return backend.held


class TestLoggingWakeAlarm(WakeAlarmContract):
    def make_backend(self) -> WakeAlarmBackend:
        return LoggingWakeAlarm()

    def armed_at(self, backend: WakeAlarmBackend) -> datetime | None:
        assert isinstance(backend, LoggingWakeAlarm)
        return backend.armed_at


class TestLoggingAlerts(AlertContract):
    def make_backend(self) -> AlertBackend:
        return LoggingAlerts()


class TestProcessTreeCpu(CpuSourceContract):
    """psutil reads this very process tree: every app of the process shares it."""

    def make_source(self) -> CpuSource:
        return ProcessTreeCpu()

    def app_ids(self) -> list[str]:
        return ["org.example.a", "org.example.b"]


class TestMemoryEventSink(EventSinkContract):
    def make_sink(self) -> EventSink:
        return MemoryEventSink()

    def recorded(self, sink: EventSink) -> list[object]:  # type: ignore[override]
        assert isinstance(sink, MemoryEventSink)
        return list(sink.events)


def test_log_event_sink_writes_debug_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="extended_runtime.events")
    sink = LogEventSink()
    from extended_runtime.testing.contracts import _lifecycle

    for event in _lifecycle():
        sink.record(event)
    assert [r.getMessage().split("(")[0] for r in caplog.records] == [
        "SessionScheduled",
        "SessionStarted",
        "AlertPlayed",
        "SessionInvalidated",
    ]


def test_null_backends_say_they_do_not_act() -> None:
    for backend in (LoggingKeepAwake(), LoggingWakeAlarm(), LoggingAlerts()):
        assert "logs only" in backend.probe().detail


def test_record_round_trips_through_a_dict() -> None:
    from extended_runtime.testing.contracts import _record

    record = _record("s1")
    assert SessionRecord.from_dict(record.to_dict()) == record


def test_a_newer_record_schema_is_refused() -> None:
    from extended_runtime.testing.contracts import _record

    data = _record("s1").to_dict() | {"schema": SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="newer than this version of extended-runtime"):
        SessionRecord.from_dict(data)
