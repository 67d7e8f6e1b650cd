"""The daemon's durable store: session records, the audit log and the app registry in one SQLite
file.

Theory
------
Reads never touch the disk. Every session record (a daemon keeps up to about 100,000 scheduled
ones) is read into a dict when the file is opened, and `save` puts the new record there at once,
so `get`, `records` and `live` cost what a dict costs and see every record saved, on disk yet or
not. The app registry is cached the same way, as JSON text (so a caller can never change the
cache through a dict it was handed). Opening is a restarted daemon's first wait, so reading a
row is kept to what it must cost: each row is checked (its schema, and every enum value and
instant it holds, so a damaged or newer file is refused at once, with a message) and kept as
the tuple SQLite returned; the record is built from it when first asked for (`get`, `records`,
`live`). Building a hundred thousand frozen records is half of an opening, and a restarted
daemon needs none for the sessions that wait for their date: `recovery` reads those straight
from the rows. Enums are found by value in prebuilt dicts (an enum call costs twenty times more)
and the app bodies are parsed as one JSON array.

Writes are *staged*, then committed in groups. `save` turns the record into a row tuple (outside
any lock), gives it the session's place (see "The file") and puts it in the cache and among the
staged rows, keyed by session id (a session saved twice between commits is written once);
`record` stages an audit row; `put_app` and `delete_app` stage a change to the registry. Each
staged write takes the next number of a counter. `flush` notes the counter when it is called,
its *target*, and returns once a commit has covered it:

* when nothing past `durable` (the number the last commit covered) is staged, at once;
* when no other thread is using the connection, it takes the connection (the committer's turn),
  takes *everything* staged so far, writes it in one transaction (`executemany` of the
  precomputed tuples), moves `durable` on and wakes every waiting flush;
* else it waits for that wake-up and looks again: its target is covered (it returns without
  touching the disk), or the connection is free and it takes the next turn.

So when 16 client threads each save and flush, one commit is on its way to the disk (an fsync:
`synchronous = FULL`) while the others stage and wait, and the next turn commits the rows of all
of them at once: the number of commits follows what the disk can do, not the number of requests.
A waiting flush learns that its rows are durable from the wake-up itself; it does not have to
take a turn of its own, one thread after another, to find out. One lock guards the cache, the
staged rows, the counters and whose turn it is, and is held only for dict and list operations;
the connection is used only by the thread whose turn it is, and no lock is held while it waits
on the disk (waiting for a turn releases the lock: `threading.Condition`).

A commit that fails (a full disk, an I/O error) is rolled back and its rows are put back among
the staged ones, under any newer row of the same session, so nothing is lost and the next flush
writes them again; `flush` raises `StoreError` saying what went wrong and what to do.

Audit rows need not be durable before a request is answered, but they should not wait long:
they are committed with the next `flush`, and a `record` that finds the oldest staged audit row
older than `EVENT_DELAY` (on the injected clock) commits at once, unless a commit is already
under way (it never waits for another thread: a host may call it under its own lock). The store
has no thread of its own for this: a timer thread would wake an idle daemon and have to be
stopped, while the host calls `record` for every event and the daemon `flush` for every request,
so the only rows that wait longer are the last few before a quiet spell, and `close` writes
those. A `record` that cannot commit logs a warning and keeps its rows for the next attempt (a
full disk must not fail the host's audit channel; the next `flush` reports it).

The file
--------
A WAL journal (a commit is one append and one fsync, and readers never block it) and
`synchronous = FULL` (an acknowledged alarm survives a power cut).

A session's row is keyed by its *place*, not by its id: places are 1, 2, 3, ... in the order of
the sessions' first saves, and the cache keeps each session's place. Session ids are random
128-bit numbers, so a table (or an index) keyed by them puts the 64 sessions of one commit on 64
pages all over the file, and the commit writes them all to the journal (about 90 pages of 4 KB
for 64 new sessions); keyed by places, the same commit appends to the last page or two of the
table (four or five pages), and SQLite's default checkpoint (every 1,000 journal pages) has few
distinct pages to copy back. Nothing looks a row up by its id: reads are served from the cache,
so the file holds no index on session ids at all. A replaced record is written over its row
(`INSERT OR REPLACE` by place), so it keeps its place, and reading the table in place order
gives `records()` its order. Instants are integer microseconds since 1970 UTC: exact, and three
times cheaper to write than ISO text; reading them back costs a little more than parsing text,
but every scheduled alarm waits for a save, and only a start-up for the reading.

The places, like the cache, are right only while this store is the file's one writer (the
daemon's single-instance lock makes it so): another writer's new sessions would take the same
places. Each commit checks `PRAGMA data_version`, which moves only when another connection
commits, and a store that finds it moved refuses to write, keeping what was staged.

The schema version is `PRAGMA user_version`: `MIGRATIONS[v]` takes a file from version v to
v + 1, and every one a file lacks is applied in one transaction at open, so a crash mid-upgrade
leaves the old version whole. A file of a newer version, a SQLite database of something else, a
file that is not a SQLite database and a damaged one are refused with a `StoreError` that names
the file and what to do, never with a bare `sqlite3` traceback. Version 2 keyed sessions by
place; its migration copies the rows of version 1 in their order (the pages they leave are
reused by later rows). The audit log and the app registry keep instants as ISO 8601 UTC text
(readable with any SQLite shell); those of the audit log always carry microseconds, so their
text order is their time order and `since` is an index range.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

import msgspec

from .._core.clock import Clock, SystemClock, as_utc
from .._core.codec import decode_event, encode_event
from .._core.enums import ErrorCode, InvalidationReason, SessionState, SessionType
from .._core.events import Event
from .._core.records import SCHEMA_VERSION, SessionRecord
from ..abc import EventSink, Probe, Store
from .memory import refuse_newer

__all__ = [
    "EVENT_DELAY",
    "MIGRATIONS",
    "SCHEMA",
    "AuditEntry",
    "SqliteStore",
    "StoreError",
    "read_events",
]

log = logging.getLogger("extended_runtime.store")

#: Audit bodies as compact JSON (ten times faster than `json.dumps`; every event writes one).
_JSON = msgspec.json.Encoder()
#: Seconds an audit row may stay staged before the next `record` commits it.
EVENT_DELAY = 0.5
#: Seconds to wait for another connection's write to the same file before failing.
_BUSY_TIMEOUT = 5.0

#: Instants of session records are kept as integer microseconds since this one.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: The instants a row may hold, as integer microseconds since `_EPOCH` (`datetime`'s range).
_INSTANTS = (
    (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND,
    (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND,
)
_SCHEDULED = int(SessionState.SCHEDULED)
_LIVE = (SessionState.SCHEDULED, SessionState.RUNNING)
_LIVE_STATES = tuple(int(state) for state in _LIVE)
#: Column values back to enums, by dict lookup (an enum call costs twenty times more).
_TYPES: dict[str | None, SessionType | None] = {None: None} | {t.value: t for t in SessionType}
_STATES: dict[int, SessionState] = {int(state): state for state in SessionState}
_REASONS: dict[int | None, InvalidationReason | None] = {None: None} | {
    int(reason): reason for reason in InvalidationReason
}
_CODES: dict[int | None, ErrorCode | None] = {None: None} | {int(code): code for code in ErrorCode}


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""


# ---------------------------------------------------------------------- the schema

_V1 = """
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    session_type TEXT,
    state INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    start_date TEXT,
    started_at TEXT,
    expiration_date TEXT,
    reason INTEGER,
    error_code INTEGER,
    alerts INTEGER NOT NULL,
    schema INTEGER NOT NULL
);
CREATE INDEX sessions_by_app ON sessions (app_id);
CREATE INDEX sessions_by_state ON sessions (state);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    app_id TEXT,
    session_id TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_by_at ON events (at);
CREATE INDEX events_by_app ON events (app_id);
CREATE TABLE apps (
    app_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

#: One step of the schema: SQL statements, or a function given the connection.
Migration: TypeAlias = str | Callable[[sqlite3.Connection], None]
#: A row as `executemany` takes it.
_Row: TypeAlias = tuple[Any, ...]
#: The session records of a file, by id in the order of their places, and the place of each.
_Loaded: TypeAlias = tuple[dict[str, "SessionRecord | _Row"], dict[str, int]]

_V2_SESSIONS = """
CREATE TABLE sessions_v2 (
    place INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    session_type TEXT,
    state INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    start_date INTEGER,
    started_at INTEGER,
    expiration_date INTEGER,
    reason INTEGER,
    error_code INTEGER,
    alerts INTEGER NOT NULL,
    schema INTEGER NOT NULL
)
"""

_SESSION_COLUMNS = (
    "session_id",
    "app_id",
    "session_type",
    "state",
    "updated_at",
    "start_date",
    "started_at",
    "expiration_date",
    "reason",
    "error_code",
    "alerts",
    "schema",
)
_INSTANT_COLUMNS = (4, 5, 6, 7)  # the positions of the instants among `_SESSION_COLUMNS`
_NULLABLE = {"session_type", "start_date", "started_at", "expiration_date", "reason", "error_code"}
#: What a session row binds for NULL. `sqlite3` binds `None` through its adapter lookup, which
#: costs as much as binding the rest of the row when four columns are NULL; the empty string
#: binds at once, and the statement turns it back into NULL (`NULLIF(?, '')`). No nullable
#: column holds an empty string: they hold enum values and integers.
_NULL = ""
_PLACED_COLUMNS = ", ".join(("place", *_SESSION_COLUMNS))
_MARKS = ", ".join("?" for _ in range(len(_SESSION_COLUMNS) + 1))
_SELECT_SESSIONS = f"SELECT {_PLACED_COLUMNS} FROM sessions ORDER BY place"
# by place alone: there is no other key to conflict on, and a replaced row keeps its place
_PUT_SESSION = (
    f"INSERT OR REPLACE INTO sessions ({_PLACED_COLUMNS}) VALUES (?, "
    + ", ".join("NULLIF(?, '')" if name in _NULLABLE else "?" for name in _SESSION_COLUMNS)
    + ")"
)


def _sessions_by_place(db: sqlite3.Connection) -> None:
    """Version 2: each session's row is keyed by its *place* (1, 2, ... in the order of first
    saves), not by its id, and its instants are integer microseconds (see the module's theory).
    The rows of version 1 are copied in their order, their ISO text instants converted; a text
    this store did not write raises `ValueError`, and the whole migration is undone."""
    db.execute(_V2_SESSIONS)
    old = db.execute(f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions ORDER BY rowid")
    rows = [(place, *_micros_of_text(row)) for place, row in enumerate(old.fetchall(), 1)]
    db.executemany(f"INSERT INTO sessions_v2 ({_PLACED_COLUMNS}) VALUES ({_MARKS})", rows)
    db.execute("DROP TABLE sessions")  # and its indexes, which nothing reads
    db.execute("ALTER TABLE sessions_v2 RENAME TO sessions")


def _micros_of_text(row: _Row) -> _Row:
    """A version-1 row with its instants (ISO 8601 text) as integer microseconds."""
    values = list(row)
    for column in _INSTANT_COLUMNS:
        text = values[column]
        values[column] = None if text is None else _micros(_utc(text))
    return tuple(values)


#: `MIGRATIONS[v]` takes a file from schema version v to v + 1 (a new file is version 0).
MIGRATIONS: tuple[Migration, ...] = (_V1, _sessions_by_place)
#: The schema version this code writes: every migration applied.
SCHEMA = len(MIGRATIONS)

_INSERT_EVENT = "INSERT INTO events (at, kind, app_id, session_id, body) VALUES (?, ?, ?, ?, ?)"
_UPSERT_APP = (
    "INSERT INTO apps (app_id, body, updated_at) VALUES (?, ?, ?) ON CONFLICT (app_id) "
    "DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
)
_DELETE_APP = "DELETE FROM apps WHERE app_id = ?"


# ---------------------------------------------------------------------- what the log returns


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log.

    `seq` numbers rows in the order they were recorded; `kind` is the event's class name; `body`
    is the event as `_core.codec.encode_event` wrote it (JSON-ready builtins)."""

    seq: int
    at: datetime
    kind: str
    app_id: str | None
    session_id: str | None
    body: dict[str, Any]

    def event(self) -> Event:
        """The event itself; `ValueError` if this version does not know its kind."""
        return decode_event(self.body)


@dataclass(slots=True)
class _Staged:
    """Writes not yet committed: the latest row of each session, audit rows in order, and the
    latest change of each app (`None`: deleted)."""

    records: dict[str, _Row] = field(default_factory=dict)
    events: list[_Row] = field(default_factory=list)
    apps: dict[str, tuple[str, str] | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.records or self.events or self.apps)

    def followed_by(self, newer: _Staged) -> _Staged:
        """These writes (whose commit failed), then those staged since: a newer row of the same
        session or app wins, in the older one's place (`dict |` keeps the first order)."""
        return _Staged(
            self.records | newer.records, self.events + newer.events, self.apps | newer.apps
        )


# ---------------------------------------------------------------------- the store


class SqliteStore(Store, EventSink):
    """Session records, the audit log and the app registry in a SQLite file (`":memory:"` for
    a store that ends with the process). Every method may be called from any thread."""

    name = "sqlite-store"

    def __init__(
        self, path: Path | str, clock: Clock | None = None, *, audit_commits: bool = True
    ) -> None:
        """`audit_commits=False`: `record` only stages, never writes; the owner flushes (the
        daemon stages under its lock and commits on a channel of its own)."""
        self._audit_commits = audit_commits
        self._label = str(path)
        self._path = Path(path)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._db, (self._cache, self._places), self._apps = _open(self._label)
        #: The place the next session saved for the first time takes (see "The file").
        self._next_place = max(self._places.values(), default=0) + 1
        #: Changes when another connection commits to the file (see "The file").
        self._data_version = _data_version(self._db)
        self._lock = threading.Lock()  # everything below, and the connection's turn
        self._turn_over = threading.Condition(self._lock)  # a turn ended: `durable` may have moved
        self._writing = False  # a thread has the connection (the committer's turn)
        self._staged = _Staged()
        self._staged_seq = 0  # the number of the last staged write
        self._durable_seq = 0  # the number of the last write a commit covered
        self._events_since: float | None = None  # when the oldest staged audit row was staged
        self._closed = False
        #: Transactions committed since the store was opened.
        self.commits = 0

    def probe(self) -> Probe:
        """Whether the file's folder is writable (SQLite writes its journal beside the file)."""
        if self._label == ":memory:":
            return Probe(self.name, True, "in memory: nothing outlives the process")
        folder = self._path.parent
        if not folder.is_dir():
            return Probe(self.name, False, f"the folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            return Probe(self.name, False, f"the folder {folder} is not writable")
        return Probe(self.name, True, f"{self._path} (its folder is writable)")

    # ------------------------------------------------------------------ session records

    def save(self, record: SessionRecord) -> None:
        if record.schema > SCHEMA_VERSION:
            refuse_newer(record)
        values = _session_values(record)
        session_id = record.session_id
        with self._lock:
            self._check_open()
            place = self._places.get(session_id)
            if place is None:
                place = self._places[session_id] = self._next_place
                self._next_place += 1
            self._cache[session_id] = record
            self._staged.records[session_id] = (place, *values)
            self._staged_seq += 1

    def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            self._check_open()
            kept = self._cache.get(session_id)
            if isinstance(kept, tuple):
                kept = self._cache[session_id] = _session_record(kept, self._label)
            return kept

    def records(self, app_id: str | None = None) -> list[SessionRecord]:
        with self._lock:
            self._check_open()
            kept = list(self._built().values())
        return kept if app_id is None else [r for r in kept if r.app_id == app_id]

    def recovery(self) -> tuple[list[tuple[str, str, datetime]], list[SessionRecord]]:
        """What a restarted daemon takes up again, oldest first: each scheduled session as
        (session id, app id, start date), read from its row without building its record, and
        the records of the other live ones (running, or scheduled without a date)."""
        with self._lock:
            self._check_open()
            kept = list(self._cache.values())
        scheduled: list[tuple[str, str, datetime]] = []
        running: list[SessionRecord] = []
        for value in kept:
            if isinstance(value, tuple):
                state, start = value[4], value[6]
                if state == _SCHEDULED and start is not None:
                    scheduled.append((value[1], value[2], _EPOCH + _MICROSECOND * start))
                elif state in _LIVE_STATES:
                    running.append(_session_record(value, self._label))
            elif value.state is SessionState.SCHEDULED and value.start_date is not None:
                scheduled.append((value.session_id, value.app_id, value.start_date))
            elif value.state in _LIVE:
                running.append(value)
        return scheduled, running

    def _built(self) -> dict[str, SessionRecord]:
        """The cache with every record built (the lock held)."""
        cache = self._cache
        for session_id, value in cache.items():
            if isinstance(value, tuple):
                cache[session_id] = _session_record(value, self._label)
        return cache  # type: ignore[return-value]

    def flush(self) -> None:
        """Return once every write staged before the call is committed; `StoreError` if the
        file cannot be written (what was staged stays staged for the next flush)."""
        with self._lock:
            self._check_open()
            target = self._staged_seq
            if self._durable_seq >= target:
                return
        self._commit(target)

    # ------------------------------------------------------------------ the audit log

    def record(self, event: Event) -> None:
        """Stage one audit row; commit what is staged if the oldest row has waited long enough."""
        row = _event_row(event)
        now = self._clock.monotonic()
        with self._lock:
            self._check_open()
            self._staged.events.append(row)
            self._staged_seq += 1
            target = self._staged_seq
            if self._events_since is None:
                self._events_since = now
            due = self._audit_commits and now - self._events_since >= EVENT_DELAY
        if due:
            try:
                self._commit(target, wait=False)
            except StoreError as error:
                log.warning("audit rows kept for the next attempt: %s", error)

    def events(
        self, app_id: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit rows (of one app, at or after `since`), oldest first; with `limit`, the latest
        `limit` of them. What is staged is committed first, so every event recorded is seen."""
        sql, parameters = _events_query(app_id, since, limit)
        self.flush()
        with self._lock:
            self._wait_turn(None)
        try:
            with _reading(self._label):
                rows = self._db.execute(sql, parameters).fetchall()
        finally:
            with self._lock:
                self._end_turn()
        return [_entry(row) for row in rows]

    # ------------------------------------------------------------------ the app registry

    def put_app(self, app_id: str, body: dict[str, object], now: datetime) -> None:
        """Keep what the daemon knows of an app (its manifest, policy answers), replacing what
        was kept; durable at the next `flush`, like a saved record."""
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        at = _instant(as_utc(now, "now"))
        with self._lock:
            self._check_open()
            self._apps[app_id] = text
            self._staged.apps[app_id] = (text, at)
            self._staged_seq += 1

    def get_app(self, app_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._check_open()
            text = self._apps.get(app_id)
        return None if text is None else _body(text)

    def apps(self) -> dict[str, dict[str, Any]]:
        """Every app kept, by id, in the order they were first put. Apps kept with the same
        body share one dict (a restart reads each body once): change none of them."""
        with self._lock:
            self._check_open()
            app_ids, texts = list(self._apps), list(self._apps.values())
        # each distinct body once, all as one JSON array: for the 100,000 apps of a restart,
        # four times faster than one `json.loads` each
        distinct = list(dict.fromkeys(texts))
        parsed: list[dict[str, Any]] = json.loads(f"[{','.join(distinct)}]")
        bodies = dict(zip(distinct, parsed, strict=True))
        return {app_id: bodies[text] for app_id, text in zip(app_ids, texts, strict=True)}

    def delete_app(self, app_id: str) -> None:
        """Forget an app (if kept); durable at the next `flush`."""
        with self._lock:
            self._check_open()
            if self._apps.pop(app_id, None) is not None:  # else neither in the file nor staged
                self._staged.apps[app_id] = None
                self._staged_seq += 1

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Commit what is staged and close the file; later calls raise `StoreError` (a second
        `close` does nothing). The file is closed even when the last commit fails."""
        with self._lock:
            while self._writing:
                self._turn_over.wait()
            if self._closed:
                return
            self._closed = self._writing = True
            staged, upto = self._staged, self._staged_seq
            self._staged = _Staged()
        durable = self._durable_seq  # only the thread whose turn it is changes it
        try:
            if staged:
                _commit_rows(self._db, staged, self._data_version, self._label)
                self.commits += 1
            durable = upto
        except sqlite3.Error as error:
            lost = _count(staged)
            raise StoreError(
                f"{_write_failure(self._label, error)}; closed without {lost}"
            ) from None
        finally:
            self._db.close()
            with self._lock:
                self._durable_seq = durable  # a flush waiting for these returns, others raise
                self._end_turn()

    # ------------------------------------------------------------------ committing

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _wait_turn(self, target: int | None, wait: bool = True) -> bool:
        """Wait (the lock held) until no other thread uses the connection, and take it; or,
        given write number `target`, return False as soon as a commit has covered it (or, not
        to `wait`, at once if another thread has the connection)."""
        while True:
            if target is not None and self._durable_seq >= target:
                return False
            if not self._writing:
                break
            if not wait:
                return False
            self._turn_over.wait()
        self._check_open()
        self._writing = True
        return True

    def _end_turn(self) -> None:
        """Give the connection back (the lock held) and wake every thread waiting for it: each
        finds its writes committed, or one of them takes the next turn."""
        self._writing = False
        self._turn_over.notify_all()

    def _commit(self, target: int, wait: bool = True) -> None:
        """Commit everything staged, unless a commit covers write `target` first (or, not to
        `wait`, unless another thread is using the connection)."""
        with self._lock:
            if not self._wait_turn(target, wait):
                return
            staged, upto = self._staged, self._staged_seq
            self._staged, self._events_since = _Staged(), None
        try:
            if staged:
                _commit_rows(self._db, staged, self._data_version, self._label)
        except BaseException as error:
            self._restage(staged)
            if isinstance(error, sqlite3.Error):
                raise StoreError(
                    f"{_write_failure(self._label, error)}; nothing is lost: what was staged "
                    "stays staged and the next flush writes it again"
                ) from None
            raise
        with self._lock:
            self._durable_seq = upto
            if staged:
                self.commits += 1
            self._end_turn()

    def _restage(self, failed: _Staged) -> None:
        """Put back the writes of a failed commit, before those staged since, and end the turn."""
        now = self._clock.monotonic()
        with self._lock:
            self._staged = failed.followed_by(self._staged)
            if self._staged.events:
                self._events_since = now  # the next attempt from `record` waits a full delay
            self._end_turn()


# ---------------------------------------------------------------------- opening the file


def _open(label: str) -> tuple[sqlite3.Connection, _Loaded, dict[str, str]]:
    """Connect, set the journal up, migrate, and read the records and apps."""
    try:
        db = sqlite3.connect(
            label, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT
        )
    except sqlite3.Error as error:
        raise _open_failure(label, error) from None
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        _migrate(db, label)
        return db, _load_records(db, label), _load_apps(db)
    except sqlite3.Error as error:
        db.close()
        raise _open_failure(label, error) from None
    except BaseException:
        db.close()
        raise


def _migrate(db: sqlite3.Connection, label: str) -> None:
    """Bring the file to `SCHEMA` in one transaction; refuse a newer or a foreign one."""
    with _transaction(db):
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
        if found == SCHEMA:
            return  # nothing to write: the commit of an empty transaction is not synced
        if found > SCHEMA:
            raise StoreError(
                f"{label} was written by a newer version of extended-runtime (store schema "
                f"{found}; this version knows up to {SCHEMA}): upgrade extended-runtime to open it"
            )
        if found == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(
                f"{label} is a SQLite database of another program (it has tables but no "
                "extended-runtime schema version): choose another file, or move it aside"
            )
        for version, migration in enumerate(MIGRATIONS[found:], found):
            _apply(db, migration, label, version)
        db.execute(f"PRAGMA user_version = {SCHEMA:d}")


def _apply(db: sqlite3.Connection, migration: Migration, label: str, version: int) -> None:
    if callable(migration):
        try:
            migration(db)
        except ValueError as error:
            raise StoreError(
                f"{label} cannot be upgraded from store schema {version} ({error}): the file is "
                "damaged; move it aside (a new store will be created) or restore it from a backup"
            ) from None
        return
    for statement in _statements(migration):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    """The statements of a script, one by one (`executescript` would commit the transaction)."""
    found: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    if current.strip():
        found.append(current.strip())  # incomplete: `execute` says what is wrong with it
    return found


def _load_records(db: sqlite3.Connection, label: str) -> _Loaded:
    """The rows by session id, in the order of their places (each checked, its record built
    when first asked for), and the place of each."""
    rows = db.execute(_SELECT_SESSIONS).fetchall()
    if not all(map(_readable, rows)):
        _refuse_unreadable(rows, label)
    # a session id twice only in a file written otherwise: the last row wins
    records: dict[str, SessionRecord | _Row] = {row[1]: row for row in rows}
    places = {row[1]: row[0] for row in rows}
    return records, places


def _refuse_unreadable(rows: list[_Row], label: str) -> NoReturn:
    """`StoreError` for the first row `_readable` refuses, saying what is wrong with it."""
    row = next(row for row in rows if not _readable(row))
    _session_record(row, label)  # raises for a newer schema, an unknown value, a bad instant
    raise StoreError(
        f"{label}: the record of session {row[1]!r} cannot be read (a column holds a value of "
        "the wrong type): the file is damaged; move it aside (a new store will be created) or "
        "restore it from a backup"
    )


def _readable(row: _Row) -> bool:
    """Whether `_session_record` can build the row's record: a schema this version reads, known
    enum values, instants in `datetime`'s range (the checks, without the building)."""
    _, _, app_id, kind, state, updated, start, started, expires, reason, code, alerts = row[:12]
    return (
        row[12] <= SCHEMA_VERSION
        and kind in _TYPES
        and state in _STATES
        and reason in _REASONS
        and code in _CODES
        and type(app_id) is str
        and type(alerts) is int
        and _in_range(updated)
        and (start is None or _in_range(start))
        and (started is None or _in_range(started))
        and (expires is None or _in_range(expires))
    )


def _in_range(value: object) -> bool:
    """Whether a column holds an instant `_session_record` can read (integer microseconds)."""
    return type(value) is int and _INSTANTS[0] <= value <= _INSTANTS[1]


def _load_apps(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT app_id, body FROM apps ORDER BY rowid").fetchall())


def _data_version(db: sqlite3.Connection) -> int:
    """A number that changes when another connection commits (this one's commits leave it)."""
    return int(db.execute("PRAGMA data_version").fetchone()[0])


# ---------------------------------------------------------------------- writing


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, rolled back if anything in it fails."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # none to roll back, or the disk is gone
            db.execute("ROLLBACK")
        raise


def _commit_rows(db: sqlite3.Connection, staged: _Staged, data_version: int, label: str) -> None:
    with _transaction(db):
        if _data_version(db) != data_version:
            raise StoreError(
                f"another program has written to the store {label} since it was opened, and a "
                "store file has one writer: stop the other program (run one daemon per user) "
                "and restart this one"
            )
        if staged.records:
            db.executemany(_PUT_SESSION, staged.records.values())
        if staged.events:
            db.executemany(_INSERT_EVENT, staged.events)
        if staged.apps:
            kept = staged.apps.items()
            db.executemany(_UPSERT_APP, [(a, *change) for a, change in kept if change])
            db.executemany(_DELETE_APP, [(a,) for a, change in kept if change is None])


# ---------------------------------------------------------------------- rows


def _session_values(record: SessionRecord) -> _Row:
    """The record's columns but its place, as `_PUT_SESSION` binds them: `SessionRecord.to_dict`'s
    values, built without the dict, instants as integer microseconds and `_NULL` for NULL (this
    is every save's cost, so `_micros` is written out). Enums are turned into plain `int` and
    `str` here: `sqlite3` would bind them too, but through its adapter lookup."""
    kind, reason, code = record.session_type, record.reason, record.error_code
    start, started, expires = record.start_date, record.started_at, record.expiration_date
    return (
        record.session_id,
        record.app_id,
        _NULL if kind is None else str(kind),
        int(record.state),
        (record.updated_at - _EPOCH) // _MICROSECOND,
        _NULL if start is None else (start - _EPOCH) // _MICROSECOND,
        _NULL if started is None else (started - _EPOCH) // _MICROSECOND,
        _NULL if expires is None else (expires - _EPOCH) // _MICROSECOND,
        _NULL if reason is None else int(reason),
        _NULL if code is None else int(code),
        record.alerts,
        record.schema,
    )


def _session_record(row: _Row, label: str) -> SessionRecord:
    """The record a row holds (`SessionRecord.from_dict`'s reading, through lookup tables: the
    enum calls and `from_dict` cost more than the rest of a restart's reading); `StoreError` if
    the row is newer than this version or cannot be read."""
    _, session_id, app_id, kind, state, updated, start, started, expires = row[:9]
    reason, code, alerts, schema = row[9:]
    if schema > SCHEMA_VERSION:
        raise StoreError(
            f"{label}: the record of session {session_id!r} has schema {schema}, newer than this "
            f"version of extended-runtime understands ({SCHEMA_VERSION}): upgrade extended-runtime"
        )
    try:
        return SessionRecord(
            session_id,
            app_id,
            _TYPES[kind],
            _STATES[state],
            _EPOCH + _MICROSECOND * updated,
            None if start is None else _EPOCH + _MICROSECOND * start,
            None if started is None else _EPOCH + _MICROSECOND * started,
            None if expires is None else _EPOCH + _MICROSECOND * expires,
            _REASONS[reason],
            _CODES[code],
            alerts,
        )
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise StoreError(
            f"{label}: the record of session {session_id!r} cannot be read ({error!r}): the "
            "file is damaged; move it aside (a new store will be created) or restore it from a "
            "backup"
        ) from None


def _event_row(event: Event) -> _Row:
    body = encode_event(event)
    return (
        _instant(event.at),
        body["kind"],
        getattr(event, "app_id", None),
        getattr(event, "session_id", None),
        _JSON.encode(body).decode(),
    )


def read_events(
    path: Path | str,
    *,
    app_id: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """The audit rows of the store at `path`, read without opening it as a store: read-only,
    no migration, no lock taken from the daemon that writes it (WAL lets both work at once).
    What `SqliteStore.events` returns, less the rows the writer has not committed yet."""
    label = str(path)
    try:
        db = sqlite3.connect(f"file:{label}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT)
    except sqlite3.Error as error:
        raise _open_failure(label, error) from None
    try:
        with _reading(label):
            found = int(db.execute("PRAGMA user_version").fetchone()[0])
            if found > SCHEMA:
                raise StoreError(
                    f"{label} was written by a newer version of extended-runtime (store schema "
                    f"{found}; this version knows up to {SCHEMA}): upgrade extended-runtime"
                )
            if found == 0:
                return []  # nothing was ever written by a daemon
            sql, parameters = _events_query(app_id, since, limit)
            rows = db.execute(sql, parameters).fetchall()
    finally:
        db.close()
    return [_entry(row) for row in rows]


def _events_query(
    app_id: str | None, since: datetime | None, limit: int | None
) -> tuple[str, list[object]]:
    """The SQL and parameters of `SqliteStore.events`."""
    where: list[str] = []
    parameters: list[object] = []
    if app_id is not None:
        where.append("app_id = ?")
        parameters.append(app_id)
    if since is not None:
        where.append("at >= ?")
        parameters.append(_instant(as_utc(since, "since")))
    sql = "SELECT seq, at, kind, app_id, session_id, body FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if limit is None:
        return f"{sql} ORDER BY seq", parameters
    return f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT ?) ORDER BY seq", [*parameters, limit]


def _entry(row: _Row) -> AuditEntry:
    seq, at, kind, app_id, session_id, body = row
    return AuditEntry(seq, _utc(at), kind, app_id, session_id, _body(body))


def _body(text: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(text)
    return body


def _instant(at: datetime) -> str:
    """An instant as fixed-width ISO 8601 UTC text (microseconds always written)."""
    return (at if at.tzinfo is UTC else at.astimezone(UTC)).isoformat(timespec="microseconds")


def _micros(at: datetime) -> int:
    """An instant as integer microseconds since 1970-01-01 UTC (`TypeError` if it is naive)."""
    return (at - _EPOCH) // _MICROSECOND


def _utc(text: str) -> datetime:
    """An instant read back; `as_utc` only for text this store did not write (it raises for
    text without an offset)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is UTC else as_utc(value)


# ---------------------------------------------------------------------- errors

#: What to do about each kind of SQLite failure (by the prefix of its error name).
_ADVICE = (
    ("SQLITE_FULL", "free some space on the disk that holds it"),
    ("SQLITE_IOERR", "the disk reported an error: check it (dmesg, smartctl)"),
    ("SQLITE_READONLY", "make the file and its folder writable"),
    ("SQLITE_CANTOPEN", "check that its folder exists and is writable"),
    ("SQLITE_PERM", "make the file and its folder writable"),
    ("SQLITE_BUSY", "another process is writing to it: run one daemon per user"),
    ("SQLITE_LOCKED", "another process is writing to it: run one daemon per user"),
    ("SQLITE_CORRUPT", "the file is damaged: stop the daemon and move the file aside"),
    ("SQLITE_NOTADB", "the file is damaged: stop the daemon and move the file aside"),
)


def _advice(error: sqlite3.Error) -> str:
    name = getattr(error, "sqlite_errorname", "") or ""
    for prefix, advice in _ADVICE:
        if name.startswith(prefix):
            return advice
    return "check the file, its folder and the disk"


def _open_failure(label: str, error: sqlite3.Error) -> StoreError:
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return StoreError(
            f"{label} is not a SQLite database, or it is damaged ({error}): move it aside (a new "
            "store will be created) or restore it from a backup"
        )
    return StoreError(f"cannot open the store {label} ({error}): {_advice(error)}")


def _write_failure(label: str, error: sqlite3.Error) -> str:
    return f"could not write to the store {label} ({error}): {_advice(error)}"


def _count(staged: _Staged) -> str:
    """What a set of staged writes holds, in words."""
    return (
        f"writing {len(staged.records)} session records, {len(staged.events)} audit rows "
        f"and {len(staged.apps)} app changes"
    )


@contextlib.contextmanager
def _reading(label: str) -> Iterator[None]:
    """A query whose SQLite failure becomes a `StoreError`."""
    try:
        yield
    except sqlite3.Error as error:
        raise StoreError(f"could not read the store {label} ({error}): {_advice(error)}") from None
