"""The SQLite store on real files: what survives a reopen, what it refuses, the upgrade of a
version-1 file, where a commit's rows go, a full disk, many threads flushing at once, and the
audit log.

The contract every store keeps is in `extended_runtime.testing.contracts` (run on this store by
`test_contracts.py`); these tests pin what only a durable store does.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extended_runtime._backends import sqlite as sqlite_store
from extended_runtime._backends.sqlite import EVENT_DELAY, SCHEMA, SqliteStore, StoreError
from extended_runtime._core.enums import (
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime._core.events import AlertPlayed, EffectFailed, SessionScheduled
from extended_runtime._core.records import SCHEMA_VERSION, SessionRecord
from extended_runtime.testing import MockClock

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def _record(
    session_id: str,
    app_id: str = "org.example.a",
    state: SessionState = SessionState.SCHEDULED,
    minutes: int = 0,
) -> SessionRecord:
    at = T0 + timedelta(minutes=minutes)
    return SessionRecord(
        session_id, app_id, SessionType.SMART_ALARM, state, at, start_date=at + timedelta(hours=8)
    )


def _scheduled(
    session_id: str, app_id: str = "org.example.a", minutes: int = 0
) -> SessionScheduled:
    return SessionScheduled(
        at=T0 + timedelta(minutes=minutes),
        app_id=app_id,
        session_id=session_id,
        state=SessionState.SCHEDULED,
        session_type=SessionType.SMART_ALARM,
        start_date=T0 + timedelta(hours=8),
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(path)
    yield opened
    opened.close()


def _reader(path: Path) -> sqlite3.Connection:
    """A second connection, as another process would read the file: it sees commits only."""
    return sqlite3.connect(path, check_same_thread=False)


def _count(path: Path, table: str) -> int:
    with closing(_reader(path)) as reader:
        return int(reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# ---------------------------------------------------------------------- the file


def test_reopening_keeps_records_events_and_apps(path: Path) -> None:
    store = SqliteStore(path)
    records = [_record("s1"), _record("s2", "org.example.b", SessionState.RUNNING, minutes=1)]
    for record in records:
        store.save(record)
    store.record(_scheduled("s1"))
    store.put_app("org.example.a", {"manifest": {"mode": "alarm"}, "allowed": True}, T0)
    store.close()
    again = SqliteStore(path)
    try:
        assert again.records() == records
        assert [(e.kind, e.session_id, e.event()) for e in again.events()] == [
            ("SessionScheduled", "s1", _scheduled("s1"))
        ]
        assert again.apps() == {"org.example.a": {"manifest": {"mode": "alarm"}, "allowed": True}}
    finally:
        again.close()


def test_the_journal_is_wal_and_every_commit_is_synced(store: SqliteStore, path: Path) -> None:
    with closing(_reader(path)) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_newer_schema_version_is_refused_and_left_alone(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA + 1}")
    with pytest.raises(StoreError) as refused:
        SqliteStore(path)
    assert str(refused.value) == (
        f"{path} was written by a newer version of extended-runtime (store schema {SCHEMA + 1}; "
        f"this version knows up to {SCHEMA}): upgrade extended-runtime to open it"
    )
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA + 1


def test_a_file_that_is_not_a_database_is_refused_clearly(path: Path) -> None:
    path.write_bytes(b"these are not the pages of a SQLite database\n" * 200)
    with pytest.raises(StoreError) as refused:
        SqliteStore(path)
    message = str(refused.value)
    assert message.startswith(f"{path} is not a SQLite database, or it is damaged (")
    assert "move it aside" in message
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_a_database_of_another_program_is_refused(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE photos (name TEXT)")
    with pytest.raises(StoreError, match="SQLite database of another program"):
        SqliteStore(path)


def test_a_record_of_a_newer_schema_in_the_file_is_refused(path: Path) -> None:
    store = SqliteStore(path)
    store.save(_record("s1"))
    store.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE sessions SET schema = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=r"session 's1' has schema 2, newer .* upgrade"):
        SqliteStore(path)


def test_a_migration_is_applied_whole_or_not_at_all(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SqliteStore(path).close()  # the current version

    def add_notes(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE notes (text TEXT)")
        raise sqlite3.OperationalError("disk I/O error")  # halfway through

    monkeypatch.setattr(sqlite_store, "MIGRATIONS", (*sqlite_store.MIGRATIONS, add_notes))
    monkeypatch.setattr(sqlite_store, "SCHEMA", SCHEMA + 1)
    with pytest.raises(StoreError, match="disk I/O error"):
        SqliteStore(path)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'notes'").fetchone() is None
    monkeypatch.setattr(
        sqlite_store, "MIGRATIONS", (*sqlite_store.MIGRATIONS[:-1], "CREATE TABLE notes (t);")
    )
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA + 1


def _version_1_file(path: Path, records: list[SessionRecord]) -> None:
    """A file as version 1 of the store wrote it: rows keyed by session id, instants as ISO
    text, the records in rowid order, one audit row and one app."""
    version_1 = sqlite_store.MIGRATIONS[0]
    assert isinstance(version_1, str)
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(version_1)
        for rowid, record in reversed(list(enumerate(records, 1))):  # the last first
            values = record.to_dict()  # version 1's columns and their text
            columns, marks = ", ".join(values), ", ".join("?" * len(values))
            db.execute(
                f"INSERT INTO sessions (rowid, {columns}) VALUES (?, {marks})",
                (rowid, *values.values()),
            )
        db.execute(
            "INSERT INTO events (at, kind, app_id, session_id, body) VALUES (?, ?, ?, ?, ?)",
            ("2026-01-05T06:00:00.000000+00:00", "SessionScheduled", "org.example.a", "s1", "{}"),
        )
        db.execute(
            "INSERT INTO apps (app_id, body, updated_at) VALUES (?, ?, ?)",
            ("org.example.a", '{"mode":"alarm"}', "2026-01-05T06:00:00.000000+00:00"),
        )
        db.execute("PRAGMA user_version = 1")


def test_a_version_1_file_is_migrated_with_its_records_intact(path: Path) -> None:
    ended = SessionRecord(
        "ended",
        "org.example.b",
        SessionType.MINDFULNESS,
        SessionState.INVALID,
        T0 + timedelta(minutes=40),
        start_date=None,
        started_at=T0 + timedelta(minutes=10),
        expiration_date=T0 + timedelta(minutes=70, microseconds=123_456),
        reason=InvalidationReason.ERROR,
        error_code=ErrorCode.EXCEEDED_RESOURCE_LIMITS,
        alerts=3,
    )
    records = [_record("s1"), ended, _record("s2", state=SessionState.RUNNING, minutes=1)]
    _version_1_file(path, records)
    store = SqliteStore(path)
    try:
        assert store.records() == records
        assert [e.session_id for e in store.events()] == ["s1"]
        assert store.apps() == {"org.example.a": {"mode": "alarm"}}
        store.save(_record("s3", minutes=2))  # after the migrated ones
    finally:
        store.close()
    with closing(_reader(path)) as reader:
        assert reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA
        places = reader.execute("SELECT place, session_id FROM sessions ORDER BY place")
        assert places.fetchall() == [(1, "s1"), (2, "ended"), (3, "s2"), (4, "s3")]
        indexes = reader.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'sessions'")
        assert indexes.fetchall() == [("sessions",)]  # no index on session ids: none is read
    again = SqliteStore(path)
    try:
        assert again.records() == [*records, _record("s3", minutes=2)]
    finally:
        again.close()


def test_a_version_1_file_with_an_unreadable_instant_is_refused_and_left_alone(
    path: Path,
) -> None:
    _version_1_file(path, [_record("s1"), _record("s2")])
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE sessions SET start_date = '2026-01-05T14:00:00' WHERE session_id = 's2'")
    with pytest.raises(StoreError) as refused:
        SqliteStore(path)
    assert str(refused.value).startswith(f"{path} cannot be upgraded from store schema 1 (")
    assert "the file is damaged; move it aside" in str(refused.value)
    with closing(_reader(path)) as reader:
        assert reader.execute("PRAGMA user_version").fetchone()[0] == 1
        assert reader.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2


def test_instants_come_back_exact_and_in_utc(path: Path) -> None:
    plus_two = timezone(timedelta(hours=2))
    record = SessionRecord(
        "s1",
        "org.example.a",
        SessionType.SMART_ALARM,
        SessionState.RUNNING,
        datetime.min.replace(tzinfo=UTC),
        start_date=datetime.max.replace(tzinfo=UTC),
        started_at=datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        expiration_date=datetime(2026, 1, 5, 8, 0, 0, 1, tzinfo=plus_two),
    )
    store = SqliteStore(path)
    store.save(record)
    store.close()
    again = SqliteStore(path)
    try:
        back = again.get("s1")
        assert back == record
        assert back is not None and back.expiration_date is not None
        assert back.expiration_date.tzinfo is UTC
        assert back.expiration_date.isoformat() == "2026-01-05T06:00:00.000001+00:00"
        naive = SessionRecord("s2", "org.example.a", None, SessionState.NOT_STARTED, T0)
        with pytest.raises(TypeError, match="offset-naive"):
            again.save(replace(naive, updated_at=T0.replace(tzinfo=None)))
        assert again.get("s2") is None
    finally:
        again.close()


def test_a_commit_of_new_sessions_appends_to_the_end_of_the_file(path: Path) -> None:
    ids = random.Random(5)  # random 128-bit ids, as clients make them
    store = SqliteStore(path)
    try:
        for _ in range(20_000):
            store.save(_record(f"{ids.getrandbits(128):032x}"))
        store.flush()
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # an empty journal from here
        store._db.execute("PRAGMA wal_autocheckpoint = 0")
        commits = 10
        for _ in range(commits):
            for _ in range(64):
                store.save(_record(f"{ids.getrandbits(128):032x}"))
            store.flush()
        journal = path.with_name(path.name + "-wal").stat().st_size
        page = store._db.execute("PRAGMA page_size").fetchone()[0]
        pages = (journal - 32) / (24 + page)  # its header, then a header and a page per frame
        assert pages / commits < 8  # keyed by session id: about 75 pages a commit
    finally:
        store.close()


def test_a_store_refuses_to_write_after_another_program_wrote_to_its_file(path: Path) -> None:
    store = SqliteStore(path)
    store.save(_record("s1"))
    store.flush()
    with closing(_reader(path)) as other, other:
        other.execute("INSERT INTO apps (app_id, body, updated_at) VALUES ('x', '{}', '')")
    store.save(_record("s2"))
    with pytest.raises(StoreError) as refused:
        store.flush()
    assert str(refused.value) == (
        f"another program has written to the store {path} since it was opened, and a store "
        "file has one writer: stop the other program (run one daemon per user) and restart "
        "this one"
    )
    assert _count(path, "sessions") == 1
    assert store.get("s2") == _record("s2")  # staged still
    with pytest.raises(StoreError, match="another program has written"):
        store.close()
    assert _count(path, "sessions") == 1


def test_probe_says_whether_the_folder_is_writable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    try:
        assert store.probe().available
        store._path = tmp_path / "gone" / "store.db"
        probe = store.probe()
        assert not probe.available
        assert probe.detail == f"the folder {tmp_path / 'gone'} does not exist"
    finally:
        store.close()
    memory = SqliteStore(":memory:")
    assert memory.probe().detail == "in memory: nothing outlives the process"
    memory.close()


# ---------------------------------------------------------------------- closing


def test_close_is_idempotent_and_later_calls_say_the_store_is_closed(path: Path) -> None:
    store = SqliteStore(path)
    store.save(_record("s1"))
    store.close()
    store.close()
    assert _count(path, "sessions") == 1  # close wrote what was staged
    calls: list[Callable[[], object]] = [
        lambda: store.save(_record("s2")),
        lambda: store.get("s1"),
        store.records,
        store.live,
        store.flush,
        lambda: store.record(_scheduled("s1")),
        store.events,
        lambda: store.get_app("org.example.a"),
    ]
    for call in calls:
        with pytest.raises(StoreError, match=r"^the store is closed$"):
            call()


# ---------------------------------------------------------------------- a full disk


def test_a_full_disk_fails_the_flush_and_loses_nothing(store: SqliteStore, path: Path) -> None:
    store.save(_record("before"))
    store.flush()
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here
    records = [_record(f"s{n:04d}", minutes=n) for n in range(500)]
    for record in records:
        store.save(record)
    store.record(_scheduled("s0000"))
    with pytest.raises(StoreError) as failed:
        store.flush()
    assert str(failed.value) == (
        f"could not write to the store {path} (database or disk is full): free some space on "
        "the disk that holds it; nothing is lost: what was staged stays staged and the next "
        "flush writes it again"
    )
    assert store.get("s0499") == records[-1]  # still read from the cache
    newer = _record("s0000", state=SessionState.RUNNING, minutes=9)
    store.save(newer)  # staged while the failed rows wait: the newer row wins
    with pytest.raises(StoreError):
        store.flush()
    assert _count(path, "sessions") == 1
    store._db.execute("PRAGMA max_page_count = 1000000")  # space again
    store.flush()
    store.close()
    again = SqliteStore(path)
    try:
        assert again.records() == [_record("before"), newer, *records[1:]]
        assert [e.session_id for e in again.events()] == ["s0000"]
    finally:
        again.close()


def test_a_record_on_a_full_disk_logs_and_keeps_its_rows(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = MockClock()
    store = SqliteStore(path, clock=clock)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    for n in range(200):
        store.record(_scheduled(f"s{n}"))
    clock.jump(EVENT_DELAY)
    with caplog.at_level(logging.WARNING, logger="extended_runtime.store"):
        store.record(_scheduled("late"))  # due: tries to commit, cannot, and says so
    assert "database or disk is full" in caplog.text
    store._db.execute("PRAGMA max_page_count = 1000000")
    store.flush()
    assert _count(path, "events") == 201
    store.close()


# ---------------------------------------------------------------------- group commit


def test_sixteen_threads_saving_and_flushing_share_commits(store: SqliteStore, path: Path) -> None:
    threads, each = 16, 200
    missing: list[str] = []
    start = threading.Barrier(threads)

    def client(n: int) -> None:
        with closing(_reader(path)) as reader:
            start.wait()
            for i in range(each):
                session_id = f"t{n:02d}-{i:03d}"
                store.save(_record(session_id, f"org.example.t{n}"))
                store.flush()
                # durable once flush returns: another connection already sees it
                seen = reader.execute(
                    "SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                if seen is None:
                    missing.append(session_id)

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert missing == []
    assert len(store.records()) == threads * each
    assert _count(path, "sessions") == threads * each
    assert store.commits < threads * each  # flushes shared commits
    for n in range(threads):
        mine = [r.session_id for r in store.records(f"org.example.t{n}")]
        assert mine == [f"t{n:02d}-{i:03d}" for i in range(each)]


def test_a_close_among_flushing_threads_keeps_every_acknowledged_record(path: Path) -> None:
    store = SqliteStore(path)
    acknowledged: list[str] = []
    start = threading.Barrier(9)

    def client(n: int) -> None:
        start.wait()
        for i in range(100):
            session_id = f"t{n}-{i}"
            try:
                store.save(_record(session_id))
                store.flush()
            except StoreError as error:
                assert str(error) == "the store is closed"
                return
            acknowledged.append(session_id)

    workers = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    start.wait()
    store.close()
    for worker in workers:
        worker.join()
    again = SqliteStore(path)
    try:
        kept = {r.session_id for r in again.records()}
        assert set(acknowledged) <= kept
    finally:
        again.close()


# ---------------------------------------------------------------------- the audit log


def test_events_are_queried_by_app_and_since_oldest_first(store: SqliteStore) -> None:
    store.record(_scheduled("s1", "org.example.a", minutes=0))
    store.record(_scheduled("s2", "org.example.b", minutes=1))
    store.record(
        AlertPlayed(
            at=T0 + timedelta(minutes=2, microseconds=500),
            app_id="org.example.a",
            session_id="s1",
            state=SessionState.RUNNING,
            haptic=HapticType.NOTIFICATION,
            by_host=False,
            sequence=1,
        )
    )
    store.record(
        EffectFailed(at=T0 + timedelta(minutes=3), effect="alert", backend="x", message="gone")
    )
    everything = store.events()
    assert [e.seq for e in everything] == sorted(e.seq for e in everything)
    assert [e.kind for e in everything] == [
        "SessionScheduled",
        "SessionScheduled",
        "AlertPlayed",
        "EffectFailed",
    ]
    assert everything[3].app_id is None and everything[3].session_id is None
    assert [e.session_id for e in store.events("org.example.a")] == ["s1", "s1"]
    since = T0 + timedelta(minutes=2)
    assert [e.kind for e in store.events(since=since)] == ["AlertPlayed", "EffectFailed"]
    assert [e.kind for e in store.events("org.example.a", since=since)] == ["AlertPlayed"]
    assert store.events(limit=2) == everything[2:]
    assert everything[2].at == T0 + timedelta(minutes=2, microseconds=500)
    assert everything[2].body["kind"] == "AlertPlayed"


def test_events_wait_at_most_the_delay_for_the_next_record(path: Path) -> None:
    clock = MockClock()
    store = SqliteStore(path, clock=clock)
    try:
        store.record(_scheduled("s1"))
        clock.jump(EVENT_DELAY / 2)
        store.record(_scheduled("s2"))
        assert _count(path, "events") == 0  # staged
        clock.jump(EVENT_DELAY / 2)
        store.record(_scheduled("s3"))  # the first has waited the delay: all three go
        assert _count(path, "events") == 3
        assert store.commits == 1
        store.record(_scheduled("s4"))
        store.flush()  # a flush takes the audit rows along
        assert _count(path, "events") == 4
    finally:
        store.close()


# ---------------------------------------------------------------------- live sessions and apps


def test_live_follows_each_session_to_its_end_across_a_reopen(path: Path) -> None:
    store = SqliteStore(path)
    store.save(_record("alarm", state=SessionState.SCHEDULED))
    store.save(_record("running", state=SessionState.RUNNING))
    store.save(_record("ended", state=SessionState.RUNNING))
    store.save(_record("never", state=SessionState.NOT_STARTED))
    ended = SessionRecord(
        "ended",
        "org.example.a",
        SessionType.SMART_ALARM,
        SessionState.INVALID,
        T0 + timedelta(minutes=5),
        reason=InvalidationReason.ERROR,
        error_code=ErrorCode.EXCEEDED_RESOURCE_LIMITS,
    )
    store.save(ended)
    store.close()
    again = SqliteStore(path)
    try:
        assert [r.session_id for r in again.live()] == ["alarm", "running"]
        assert again.get("ended") == ended
    finally:
        again.close()


def test_the_app_registry_keeps_puts_and_deletes(path: Path) -> None:
    store = SqliteStore(path)
    store.put_app("org.example.a", {"policy": "ask"}, T0)
    store.put_app("org.example.b", {"policy": "allow"}, T0)
    store.put_app("org.example.a", {"policy": "allow"}, T0 + timedelta(minutes=1))
    store.delete_app("org.example.b")
    store.delete_app("org.example.never")
    body = store.get_app("org.example.a")
    assert body == {"policy": "allow"}
    assert body is not None
    body["policy"] = "changed by the caller"
    assert store.get_app("org.example.a") == {"policy": "allow"}
    store.close()
    again = SqliteStore(path)
    try:
        assert again.apps() == {"org.example.a": {"policy": "allow"}}
        assert again.get_app("org.example.b") is None
    finally:
        again.close()


# ---------------------------------------------------------------------- any sequence of saves

_IDS = st.sampled_from([f"s{n}" for n in range(8)])
_INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds, adds the zone)
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
_RECORDS = st.builds(
    SessionRecord,
    session_id=_IDS,
    app_id=st.sampled_from(["org.example.a", "org.example.b"]),
    session_type=st.none() | st.sampled_from(SessionType),
    state=st.sampled_from(SessionState),
    updated_at=_INSTANTS,
    start_date=st.none() | _INSTANTS,
    started_at=st.none() | _INSTANTS,
    expiration_date=st.none() | _INSTANTS,
    reason=st.none() | st.sampled_from(InvalidationReason),
    error_code=st.none() | st.sampled_from(ErrorCode),
    alerts=st.integers(0, 10_000),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(saves=st.lists(st.tuples(_RECORDS, st.booleans()), max_size=30))
def test_any_saves_then_a_reopen_give_back_the_last_record_of_each_session(
    saves: list[tuple[SessionRecord, bool]],
) -> None:
    expected: dict[str, SessionRecord] = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.db"
        store = SqliteStore(path)
        for record, flush in saves:
            store.save(record)
            expected[record.session_id] = record
            if flush:
                store.flush()
        store.close()
        again = SqliteStore(path)
        try:
            assert again.records() == list(expected.values())
        finally:
            again.close()


# ---------------------------------------------------------------------- reading lazily


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("state", 99, "cannot be read (KeyError(99))"),
        ("session_type", "'juggling'", "cannot be read (KeyError('juggling'))"),
        ("start_date", "'tomorrow'", "cannot be read ("),
        ("start_date", str(10**19), "cannot be read ("),
        ("app_id", "x'41'", "a column holds a value of the wrong type"),
    ],
)
def test_a_damaged_row_is_refused_at_opening_not_when_first_read(
    path: Path, column: str, value: str, says: str
) -> None:
    store = SqliteStore(path)
    for n in range(3):
        store.save(_record(f"s{n}", minutes=n))
    store.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(f"UPDATE sessions SET {column} = {value} WHERE session_id = 's1'")
    with pytest.raises(StoreError) as refused:
        SqliteStore(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: the record of session 's1' ")
    assert says in message
    assert "the file is damaged; move it aside" in message


def test_recovery_reads_what_live_lists_without_building_the_waiting_records(
    path: Path,
) -> None:
    store = SqliteStore(path)
    saved = [
        _record("waits", minutes=0),
        _record("runs", app_id="org.example.b", state=SessionState.RUNNING, minutes=1),
        _record("ended", app_id="org.example.c", state=SessionState.INVALID, minutes=2),
        replace(_record("undated", app_id="org.example.d", minutes=3), start_date=None),
    ]
    for record in saved:
        store.save(record)
    store.close()
    again = SqliteStore(path)
    try:
        scheduled, others = again.recovery()
        assert scheduled == [("waits", "org.example.a", saved[0].start_date)]
        assert others == [saved[1], saved[3]]
        assert [r.session_id for r in again.live()] == ["waits", "runs", "undated"]
        assert again.get("ended") == saved[2]  # built when asked for, equal to what was saved
        assert again.records() == saved  # in the order of their first saves
        again.save(replace(saved[0], state=SessionState.RUNNING))  # a built record replaces a row
        assert again.recovery() == ([], [replace(saved[0], state=SessionState.RUNNING), *others])
    finally:
        again.close()
