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

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .._core.enums import HapticType, InvalidationReason, SessionState, SessionType
from .._core.events import (
    AlertPlayed,
    Event,
    SessionInvalidated,
    SessionScheduled,
    SessionStarted,
)
from .._core.records import SCHEMA_VERSION, SessionRecord, fold
from ..abc import (
    AlertBackend,
    CpuSource,
    EventSink,
    KeepAwakeBackend,
    Probe,
    Store,
    WakeAlarmBackend,
)

__all__ = [
    "AlertContract",
    "CpuSourceContract",
    "EventSinkContract",
    "KeepAwakeContract",
    "StoreContract",
    "WakeAlarmContract",
]

_T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def _record(
    session_id: str,
    app_id: str = "org.example.a",
    minutes: int = 0,
    state: SessionState = SessionState.SCHEDULED,
) -> SessionRecord:
    at = _T0 + timedelta(minutes=minutes)
    return SessionRecord(session_id, app_id, SessionType.SMART_ALARM, state, at)


def _lifecycle(session_id: str = "s1") -> list[Event]:
    """An alarm's life: scheduled, started, one alert, stopped."""
    later = _T0 + timedelta(hours=1)
    ids: dict[str, Any] = {"app_id": "org.example.a", "session_id": session_id}
    alarm = SessionType.SMART_ALARM
    return [
        SessionScheduled(
            at=_T0, **ids, state=SessionState.SCHEDULED, session_type=alarm, start_date=later
        ),
        SessionStarted(
            at=later,
            **ids,
            state=SessionState.RUNNING,
            session_type=alarm,
            expiration_date=later + timedelta(minutes=30),
        ),
        AlertPlayed(
            at=later,
            **ids,
            state=SessionState.RUNNING,
            haptic=HapticType.NOTIFICATION,
            by_host=False,
            sequence=1,
        ),
        SessionInvalidated(
            at=later + timedelta(minutes=1),
            **ids,
            state=SessionState.INVALID,
            session_type=alarm,
            previous_state=SessionState.RUNNING,
            reason=InvalidationReason.NONE,
        ),
    ]


class StoreContract:
    """What every `Store` must do.

    A store that keeps records beyond the process also implements `reopen`, so the suite checks
    that what was flushed comes back, in the same order."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def reopen(self, store: Store) -> Store:
        """Close `store` and open its storage again. The default, for a store that keeps
        nothing beyond the process, goes on with the same store."""
        return store

    def _flushed_and_reopened(self, store: Store) -> Store:
        store.flush()
        return self.reopen(store)

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

    def test_records_are_read_before_and_after_a_flush(self) -> None:
        store = self.make_store()
        records = [_record(f"s{n}", minutes=n) for n in range(3)]
        for record in records:
            store.save(record)
        assert store.records() == records  # staged, not yet flushed
        store = self._flushed_and_reopened(store)
        assert store.records() == records
        assert [store.get(r.session_id) for r in records] == records

    def test_a_replaced_record_keeps_its_place_after_a_reopen(self) -> None:
        store = self.make_store()
        first, second = _record("s1"), _record("s2", "org.example.b")
        store.save(first)
        store.save(second)
        store.flush()
        newer = _record("s1", minutes=5, state=SessionState.RUNNING)
        store.save(newer)
        assert store.records() == [newer, second]
        store = self._flushed_and_reopened(store)
        assert store.records() == [newer, second]
        assert store.records("org.example.b") == [second]

    def test_flush_with_nothing_staged_returns(self) -> None:
        store = self.make_store()
        store.flush()
        store.save(_record("s1"))
        store.flush()
        store.flush()
        assert store.get("s1") == _record("s1")

    def test_live_lists_only_scheduled_and_running_sessions(self) -> None:
        store = self.make_store()
        states = list(SessionState)
        for n, state in enumerate(states):
            store.save(_record(f"s{n}", minutes=n, state=state))
        expected = [
            _record(f"s{n}", minutes=n, state=state)
            for n, state in enumerate(states)
            if state in (SessionState.SCHEDULED, SessionState.RUNNING)
        ]
        assert store.live() == expected
        assert self._flushed_and_reopened(store).live() == expected

    def test_a_record_of_a_newer_schema_is_refused(self) -> None:
        store = self.make_store()
        newer = replace(_record("s1"), schema=SCHEMA_VERSION + 1)
        try:
            store.save(newer)
        except ValueError as error:
            assert "newer than this version of extended-runtime" in str(error)
        else:
            raise AssertionError("a record of a newer schema was kept")
        assert store.get("s1") is None
        assert store.records() == []

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
        backend.hold("org.example.a", "contract test")
        assert self.is_held(backend)
        backend.release()
        assert not self.is_held(backend)

    def test_hold_and_release_are_idempotent(self) -> None:
        """The host may apply a level again (after a failure or a late return)."""
        backend = self.make_backend()
        backend.release()
        assert not self.is_held(backend)
        backend.hold("org.example.a", "contract test")
        backend.hold("org.example.a", "contract test, again")
        assert self.is_held(backend)
        backend.release()
        backend.release()
        assert not self.is_held(backend)

    def test_can_hold_again_after_release(self) -> None:
        backend = self.make_backend()
        for _ in range(2):
            backend.hold("org.example.a", "contract test")
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

    def test_arming_again_is_idempotent(self) -> None:
        backend = self.make_backend()
        at = _T0 + timedelta(hours=8)
        backend.arm(at)
        backend.arm(at)
        assert self.armed_at(backend) == at
        backend.arm(None)
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


class CpuSourceContract:
    """What every `CpuSource` must do: name a tree per app and read counters that only grow."""

    def make_source(self) -> CpuSource:
        raise NotImplementedError

    def app_ids(self) -> list[str]:
        """Apps whose trees this source can read."""
        return ["org.example.a"]

    def test_reads_a_growing_counter_per_tree(self) -> None:
        source = self.make_source()
        trees = {source.tree_of(app_id) for app_id in self.app_ids()}
        assert all(isinstance(tree, str) and tree for tree in trees)
        first = source.read(trees)
        again = source.read(trees)
        assert set(first) == trees
        for tree in trees:
            assert first[tree] >= 0.0
            assert again[tree] >= first[tree]

    def test_unknown_trees_are_left_out(self) -> None:
        source = self.make_source()
        assert source.read(["no-such-tree"]) == {}


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
