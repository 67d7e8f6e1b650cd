"""Contract test suites for the extension points of `extended_runtime.abc`.

Each suite is a plain class of `test_*` methods. Subclass it in a `Test...` class, implement
the factory (and, where asked, the observation hook), and pytest runs the whole contract
against your implementation::

    class TestMyStore(StoreContract):
        def make_store(self) -> Store:
            return MyStore(tmp_folder())

The suites import nothing from pytest, so they can be used from any runner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .._core.enums import HapticType, InvalidationReason, SessionState, SessionType
from .._core.events import (
    AlertPlayed,
    Event,
    SessionInvalidated,
    SessionScheduled,
    SessionStarted,
)
from .._core.records import SCHEMA_VERSION, SessionRecord, fold
from ..abc import AlertBackend, EventSink, KeepAwakeBackend, Probe, Store, WakeAlarmBackend

__all__ = [
    "AlertContract",
    "EventSinkContract",
    "KeepAwakeContract",
    "StoreContract",
    "WakeAlarmContract",
]

_T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def _record(session_id: str, app_id: str = "org.example.a", minutes: int = 0) -> SessionRecord:
    at = _T0 + timedelta(minutes=minutes)
    return SessionRecord(session_id, app_id, SessionType.SMART_ALARM, SessionState.SCHEDULED, at)


def _lifecycle(session_id: str = "s1") -> list[Event]:
    later = _T0 + timedelta(hours=1)
    return [
        SessionScheduled(_T0, "org.example.a", session_id, SessionType.SMART_ALARM, later),
        SessionStarted(
            later,
            "org.example.a",
            session_id,
            SessionType.SMART_ALARM,
            later + timedelta(minutes=30),
        ),
        AlertPlayed(later, "org.example.a", session_id, HapticType.NOTIFICATION, False, 1),
        SessionInvalidated(
            later + timedelta(minutes=1),
            "org.example.a",
            session_id,
            SessionType.SMART_ALARM,
            SessionState.RUNNING,
            InvalidationReason.NONE,
        ),
    ]


class StoreContract:
    """What every `Store` must do."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def test_probe_names_the_store(self) -> None:
        store = self.make_store()
        probe = store.probe()
        assert isinstance(probe, Probe)
        assert probe.name == store.name

    def test_saved_record_reads_back(self) -> None:
        store = self.make_store()
        record = _record("s1")
        store.save(record)
        assert store.get("s1") == record
        assert store.get("missing") is None

    def test_save_replaces_by_session_id(self) -> None:
        store = self.make_store()
        store.save(_record("s1"))
        newer = _record("s1", minutes=5)
        store.save(newer)
        assert store.get("s1") == newer
        assert store.records() == [newer]

    def test_records_filter_by_app_in_insertion_order(self) -> None:
        store = self.make_store()
        first, other, second = _record("s1"), _record("s2", "org.example.b"), _record("s3")
        for record in (first, other, second):
            store.save(record)
        assert store.records() == [first, other, second]
        assert store.records("org.example.a") == [first, second]

    def test_a_folded_lifecycle_is_kept(self) -> None:
        store = self.make_store()
        for event in _lifecycle():
            assert isinstance(
                event, SessionScheduled | SessionStarted | AlertPlayed | SessionInvalidated
            )
            record = fold(store.get(event.session_id), event)
            assert record is not None
            store.save(record)
        kept = store.get("s1")
        assert kept is not None
        assert kept.state is SessionState.INVALID
        assert kept.reason is InvalidationReason.NONE
        assert kept.alerts == 1
        assert kept.schema == SCHEMA_VERSION


class KeepAwakeContract:
    """What every `KeepAwakeBackend` must do."""

    def make_backend(self) -> KeepAwakeBackend:
        raise NotImplementedError

    def is_held(self, backend: KeepAwakeBackend) -> bool:
        """Observe, from outside the backend where possible, whether sleep is inhibited."""
        raise NotImplementedError

    def test_hold_then_release(self) -> None:
        backend = self.make_backend()
        assert not self.is_held(backend)
        backend.hold("contract test")
        assert self.is_held(backend)
        backend.release()
        assert not self.is_held(backend)

    def test_can_hold_again_after_release(self) -> None:
        backend = self.make_backend()
        for _ in range(2):
            backend.hold("contract test")
            assert self.is_held(backend)
            backend.release()
        assert not self.is_held(backend)


class WakeAlarmContract:
    """What every `WakeAlarmBackend` must do."""

    def make_backend(self) -> WakeAlarmBackend:
        raise NotImplementedError

    def armed_at(self, backend: WakeAlarmBackend) -> datetime | None:
        """Observe the instant the backend will wake the machine at."""
        raise NotImplementedError

    def test_arm_replace_and_disarm(self) -> None:
        backend = self.make_backend()
        first = _T0 + timedelta(hours=8)
        backend.arm(first)
        assert self.armed_at(backend) == first
        backend.arm(first - timedelta(hours=1))
        assert self.armed_at(backend) == first - timedelta(hours=1)
        backend.arm(None)
        assert self.armed_at(backend) is None


class AlertContract:
    """What every `AlertBackend` must do: play every haptic, dismiss without raising."""

    def make_backend(self) -> AlertBackend:
        raise NotImplementedError

    def test_plays_every_haptic_and_dismisses(self) -> None:
        backend = self.make_backend()
        for haptic in HapticType:
            backend.play("org.example.a", "s1", haptic, by_host=haptic is HapticType.STOP)
        backend.dismiss("org.example.a", "s1")
        backend.dismiss("org.example.a", "never-shown")


class EventSinkContract:
    """What every `EventSink` must do: accept every kind of event."""

    def make_sink(self) -> EventSink:
        raise NotImplementedError

    def recorded(self, sink: EventSink) -> list[Event]:
        """What the sink kept, in order."""
        raise NotImplementedError

    def test_records_events_in_order(self) -> None:
        sink = self.make_sink()
        events = _lifecycle()
        for event in events:
            sink.record(event)
        assert self.recorded(sink) == events
