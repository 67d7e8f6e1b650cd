"""The daemon under load: 64 apps doing random things at once, then the books must balance.

A real daemon process (`python -m extended_runtime daemon`, on the machine's real services, as
in `test_daemon.py`) serves 64 clients for `LOAD_SECONDS`. Each client is a thread of this
process with its own `DaemonClient` (its own connection) and its own app, of a type chosen per
client: self care, mindfulness, physical therapy or smart alarm. Each does random operations as
fast as the daemon answers: `start()`, `start_at()` (1 to 5 s ahead, or hours ahead),
`invalidate()`, `notify_user()` with a repeat handler, app state changes, and closing its client
and coming back on a new one (the app exits and is launched again). A control client, the user's
tools, pauses and resumes all sessions now and then, allows the alarm apps again (three silent
alarms in a row disable them) and checks every status it reads: never two running or two
scheduled sessions of one app.

Afterwards the clients stop, the user pauses (running sessions end) and stops what is due in the
next minute, and the test checks the foundation's invariants from outside:

* at most one running and one scheduled session per app, keep-awake released once nothing runs;
* the audit log (the `events` table of the daemon's SQLite store) names exactly the sessions the
  clients sent, each ended once unless it is still scheduled, none started or scheduled twice;
* per session object of a client still connected: its delegate heard `did_start`,
  `will_expire`, `did_invalidate` in that order, each at most once, and one `did_invalidate` if
  and only if it is INVALID, with the reason the audit log gives; a session of a closed client may
  have heard less (DESIGN.md: no calls once the app has exited);
* the daemon is still alive, answers, and its log holds no traceback.

Two faults it found are pinned by their own tests below: an `invalidate()` that crosses the
daemon's ending of the session (a pause) must have no effect, and an app that comes back must be
handed the ending it missed.

`XRS_LOAD_SECONDS` shortens the run for local use; CI runs the full length.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from extended_runtime import (
    App,
    ApplicationState,
    Backends,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    Policy,
    SessionState,
    SessionType,
)
from extended_runtime._daemon.client import DaemonClient, DaemonUnavailable
from extended_runtime._daemon.host import DaemonHost
from extended_runtime._daemon.server import Server

from .daemons import Daemon
from .helpers import eventually

#: How long the clients run (seconds).
LOAD_SECONDS = float(os.environ.get("XRS_LOAD_SECONDS", "30"))
CLIENTS = 64
MODES = (
    SessionType.SELF_CARE,
    SessionType.MINDFULNESS,
    SessionType.PHYSICAL_THERAPY,
    SessionType.SMART_ALARM,
)
#: The operations of a client, with their weights for a frontmost or therapy app and for an
#: alarm app (which mostly schedules; its `start()` is refused as unsupported, and the others'
#: `start_at()` and `notify_user()` are refused or ignored).
OPERATIONS: dict[str, tuple[int, int]] = {
    "start": (30, 2),
    "start_at": (3, 15),
    "invalidate": (30, 20),
    "invalidate_unstarted": (3, 3),
    "notify": (2, 25),
    "app_state": (12, 12),
    "reconnect": (2, 2),
}
ORDER = ("did_start", "will_expire", "did_invalidate")
#: What the repeat handlers answer, in turn: seconds, (seconds, next haptic), or stop.
REPEATS: tuple[float | tuple[float, HapticType] | None, ...] = (
    1.0,
    (1.5, HapticType.CLICK),
    2.0,
    None,
)

#: A delegate call as recorded: its name, and for `did_invalidate` the reason and error code.
Call = tuple[str, InvalidationReason | None, ErrorCode | None]


class Heard(ExtendedRuntimeSessionDelegate):
    """Records each delegate call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.calls.append(("did_start", None, None))

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self.calls.append(("will_expire", None, None))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self.calls.append(("did_invalidate", reason, None if error is None else error.code))


@dataclass
class Tracked:
    """A session object a client holds, the client it came through, and what it heard."""

    session: ExtendedRuntimeSession
    heard: Heard
    client: DaemonClient


class Worker:
    """One app on its own connection, doing random operations until told to stop."""

    def __init__(self, index: int, socket: str, seed: int) -> None:
        self.socket = socket
        self.app_id = f"org.example.load{index}"
        self.mode = MODES[index % len(MODES)]
        self.rng = random.Random(seed * 1000 + index)
        column = 1 if self.mode is SessionType.SMART_ALARM else 0
        self.operations = list(OPERATIONS)
        self.weights = [OPERATIONS[name][column] for name in self.operations]
        self.tracked: list[Tracked] = []
        #: Every session id sent to the daemon; those it must have heard of (`created`).
        self.sent: set[str] = set()
        self.created: set[str] = set()
        self.done: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.errors: list[str] = []
        self.handed = 0
        self._lock = threading.Lock()
        self._repeats = itertools.cycle(REPEATS)
        self.client, self.app = self._connect()

    def _connect(self) -> tuple[DaemonClient, App]:
        """A new connection and the app registered on it, with its relaunch handler (sessions
        the daemon hands over as the app registers wait for it)."""
        client = DaemonClient(self.socket)
        app = App(self.app_id, self.mode, host=client)
        app.on_session(partial(self._adopt, client))
        return client, app

    def _adopt(self, client: DaemonClient, session: ExtendedRuntimeSession) -> None:
        heard = Heard()
        session.delegate = heard
        with self._lock:
            self.handed += 1
            self.tracked.append(Tracked(session, heard, client))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            name = self.rng.choices(self.operations, self.weights)[0]
            try:
                name = getattr(self, "_" + name)()
            except DaemonUnavailable as error:
                self.errors.append(f"{self.app_id} {name}: {error}")
            except ExtendedRuntimeSessionError as error:
                self.refused[f"{name}: {error.code.name}"] += 1
            except Exception as error:  # anything else fails the test, which reports it
                self.errors.append(f"{self.app_id} {name}: {type(error).__name__}: {error}")
            self.done[name] += 1

    # ------------------------------------------------------------------ the operations

    def _new(self) -> ExtendedRuntimeSession:
        heard = Heard()
        session = ExtendedRuntimeSession(self.app, heard)
        with self._lock:
            self.tracked.append(Tracked(session, heard, self.client))
        self.sent.add(session.session_id)
        return session

    # Each returns the name of what it did: one with nothing to act on begins a session.

    def _begin(self) -> str:
        return self._start_at() if self.mode is SessionType.SMART_ALARM else self._start()

    def _start(self) -> str:
        session = self._new()
        session.start()
        self.created.add(session.session_id)
        return "start"

    def _start_at(self) -> str:
        session = self._new()
        if self.rng.random() < 0.8:
            ahead = timedelta(seconds=self.rng.uniform(1.0, 5.0))
        else:
            ahead = timedelta(hours=self.rng.uniform(1.0, 30.0))
        session.start_at(datetime.now(UTC) + ahead)
        self.created.add(session.session_id)
        return "start_at"

    def _current(self, *states: SessionState) -> list[ExtendedRuntimeSession]:
        with self._lock:
            return [
                t.session
                for t in self.tracked
                if t.client is self.client and t.session.state in states
            ]

    def _invalidate(self) -> str:
        live = self._current(SessionState.SCHEDULED, SessionState.RUNNING)
        if not live:
            return self._begin()
        # refused (MUST_BE_ACTIVE_TO_START_OR_SCHEDULE) for an alarm while not ACTIVE
        self.rng.choice(live).invalidate()
        return "invalidate"

    def _invalidate_unstarted(self) -> str:
        session = self._new()  # ERROR, NOT_YET_STARTED
        session.invalidate()
        self.created.add(session.session_id)
        return "invalidate_unstarted"

    def _notify(self) -> str:
        running = self._current(SessionState.RUNNING)
        if not running:
            return self._begin()
        haptic = self.rng.choice(list(HapticType))
        self.rng.choice(running).notify_user(haptic, self._repeat)
        return "notify"

    def _repeat(self, played: HapticType) -> float | tuple[float, HapticType] | None:
        return next(self._repeats)

    def _app_state(self) -> str:
        weighted = [ApplicationState.ACTIVE, ApplicationState.ACTIVE, *ApplicationState]
        self.app.state = self.rng.choice(weighted)
        return "app_state"

    def _reconnect(self) -> str:
        """The app exits (its connection closes) and a new process of it comes back."""
        self.client.close()
        self.client, self.app = self._connect()
        return "reconnect"


@dataclass
class Control:
    """The user's tools during the run: pause and resume, allow alarms, read and check status."""

    client: DaemonClient
    alarm_apps: list[str]
    violations: list[str] = field(default_factory=list)
    statuses: int = 0
    pauses: int = 0

    def run(self, stop: threading.Event) -> None:
        rng = random.Random(7)
        next_pause = time.monotonic() + rng.uniform(2.0, 5.0)
        while not stop.wait(0.2):
            try:
                self.check(self.client.status())
                if time.monotonic() >= next_pause:
                    self.client.pause(True)
                    self.pauses += 1
                    stop.wait(rng.uniform(0.2, 0.6))
                    self.client.pause(False)
                    for app_id in self.alarm_apps:
                        self.client.allow_alarms(app_id)
                    next_pause = time.monotonic() + rng.uniform(2.0, 5.0)
            except Exception as error:  # reported by the test
                self.violations.append(f"control: {type(error).__name__}: {error}")

    def check(self, status: dict[str, Any]) -> None:
        """Never two running, nor two scheduled sessions of one app."""
        self.statuses += 1
        counted = Counter((row["app_id"], row["state"]) for row in status["sessions"])
        for (app_id, state), count in counted.items():
            if count > 1:
                self.violations.append(f"{count} {SessionState(state).name} sessions of {app_id}")


# ---------------------------------------------------------------------- settling and reading


def settle(control: DaemonClient) -> set[str]:
    """Pause (running sessions end), stop what is due within the minute, and wait until nothing
    runs and nothing is due; returns the ids of the sessions still scheduled."""
    control.pause(True)
    soon = datetime.now(UTC) + timedelta(minutes=1)
    rows: list[dict[str, Any]] = []

    def quiet() -> bool:
        rows[:] = control.status()["sessions"]
        due = [r for r in rows if r["state"] != SessionState.SCHEDULED or r["start_date"] <= soon]
        for row in due:
            control.stop(row["session_id"])
        return not due

    assert eventually(quiet, 15.0), rows
    return {row["session_id"] for row in rows}


@dataclass
class Audit:
    """The audit log, per session: how many events of each kind, and its endings' bodies."""

    totals: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, Counter[str]] = field(default_factory=dict)
    endings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def read(cls, database: Path) -> Audit:
        audit = cls()
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT kind, session_id, body FROM events ORDER BY seq")
            for kind, session_id, body in rows:
                audit.totals[kind] += 1
                if session_id is None:
                    continue
                audit.kinds.setdefault(session_id, Counter())[kind] += 1
                if kind == "SessionInvalidated":
                    audit.endings.setdefault(session_id, []).append(json.loads(body))
        return audit

    def ends(self, session_id: str) -> list[dict[str, Any]]:
        """The session's endings (one at most)."""
        return self.endings.get(session_id, [])

    def problems(self, created: set[str], sent: set[str], live: set[str]) -> list[str]:
        """Every session the clients created is in the log, ended unless still scheduled;
        none scheduled, started or ended twice; none that nobody sent."""
        found = [f"unknown session {sid} in the log" for sid in self.kinds.keys() - sent]
        for session_id in created:
            if session_id not in self.endings and session_id not in live:
                found.append(f"session {session_id} is neither ended nor still scheduled")
        for session_id, logged in self.kinds.items():
            counted = logged.copy()
            counted["SessionInvalidated"] = len(self.ends(session_id))
            for kind in ("SessionScheduled", "SessionStarted", "SessionInvalidated"):
                if counted[kind] > 1:
                    found.append(f"session {session_id} has {counted[kind]} {kind} events")
            if counted["SessionInvalidated"] and session_id in live:
                found.append(f"session {session_id} ended but still scheduled")
        return found


def check_objects(worker: Worker, live: set[str], audit: Audit) -> list[str]:
    """The delegate calls of each of the worker's session objects (module docstring)."""
    problems: list[str] = []
    for tracked in worker.tracked:
        session, calls = tracked.session, tracked.heard.calls
        names = [call[0] for call in calls]
        where = f"{worker.app_id} session {session.session_id} ({session.state.name}): {calls}"
        positions = [ORDER.index(name) for name in names]
        if positions != sorted(set(positions)):
            problems.append(f"calls out of order or repeated: {where}")
        if tracked.client is not worker.client:
            continue  # its app exited: it may have heard less
        heard = [call[1] for call in calls if call[0] == "did_invalidate"]
        logged = [InvalidationReason(body["reason"]) for body in audit.ends(session.session_id)]
        if session.state is SessionState.INVALID and (not heard or heard != logged):
            problems.append(f"heard {heard}, the log says {logged}: {where}")
        elif session.state is not SessionState.INVALID and (heard or logged):
            problems.append(f"an ending heard or logged for a live session: {where}")
        if (session.state is SessionState.SCHEDULED) != (session.session_id in live):
            problems.append(f"the daemon's status disagrees: {where}")
    return problems


# ---------------------------------------------------------------------- the load


@pytest.mark.slow
def test_sixty_four_clients_for_thirty_seconds_leave_the_books_balanced(daemon: Daemon) -> None:
    daemon.start()
    seed = random.randrange(1 << 30)
    workers = [Worker(index, daemon.socket, seed) for index in range(CLIENTS)]
    alarm_apps = [w.app_id for w in workers if w.mode is SessionType.SMART_ALARM]
    control = Control(DaemonClient(daemon.socket), alarm_apps)
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), name=w.app_id) for w in workers]
    threads.append(threading.Thread(target=control.run, args=(stop,), name="control"))
    began = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - began
        assert not [t.name for t in threads if t.is_alive()], "a client did not stop"

        live = settle(control.client)
        for worker in workers:
            assert worker.client.settle(10), f"{worker.app_id}: delegate calls still queued"
        final = control.client.status()
        control.check(final)
        assert final["keep_awake"] is False

        created = set().union(*(w.created for w in workers))
        sent = set().union(*(w.sent for w in workers))

        def balanced() -> bool:  # audit rows are committed 0.2 s apart: the last ones are late
            return not Audit.read(daemon.database).problems(created, sent, live)

        eventually(balanced, 5.0, step=0.2)
        audit = Audit.read(daemon.database)
        operations = sum(sum(w.done.values()) for w in workers)
        report = {
            "seed": seed,
            "seconds": round(elapsed, 1),
            "operations": operations,
            "per_second": round(operations / elapsed),
            "sessions": len(created),
            "still_scheduled": len(live),
            "handed_over": sum(w.handed for w in workers),
            "events": audit.totals,
            "statuses_checked": control.statuses,
            "pauses": control.pauses,
            "done": sum((w.done for w in workers), Counter()),
            "refused": sum((w.refused for w in workers), Counter()),
        }
        print(report)
        errors = [error for w in workers for error in w.errors]
        assert errors == [], (report, errors[:20])
        assert control.violations == [], control.violations[:20]
        assert live <= created
        problems = audit.problems(created, sent, live)
        assert problems == [], problems[:20]
        objects = [problem for w in workers for problem in check_objects(w, live, audit)]
        assert objects == [], objects[:20]
        assert len(created) > 10 * CLIENTS, report  # the clients did make sessions, many
        assert daemon.process is not None and daemon.process.poll() is None
        assert "Traceback" not in daemon.log.read_text()
    finally:
        stop.set()
        for worker in workers:
            worker.client.close()
        control.client.close()


# ---------------------------------------------------------------------- the faults it found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[DaemonHost, str]]:
    """A daemon's host and server in this process, on the logging stand-in backends."""
    host = DaemonHost(Policy(), backends=Backends(cpu=None))
    server = Server(host, str(tmp_path / "daemon.sock"))
    server.listen()
    try:
        yield host, server.path
    finally:
        server.close()
        host.close()


def test_an_invalidate_that_crosses_the_daemon_s_ending_has_no_effect(
    served: tuple[DaemonHost, str],
) -> None:
    """The daemon ends a session (the user pauses) while its app, whose object still reads
    RUNNING, sends `invalidate()`: DESIGN.md's "invalidate() on an INVALID session: no
    effect" must hold there too. The port call is what `invalidate()` sends in that instant;
    it is made once the client has read the ending, so that whatever the daemon answers is
    delivered rather than dropped with the session's link."""
    _, path = served
    app_client, user = DaemonClient(path), DaemonClient(path)
    try:
        heard = Heard()
        app = App("org.example.crossing", SessionType.SELF_CARE, host=app_client)
        session = ExtendedRuntimeSession(app, heard)
        session.start()
        user.pause(True)
        assert eventually(lambda: session.state is SessionState.INVALID, 5.0)
        app_client.invalidate(session._link)
        assert app_client.settle()
        suppressed = InvalidationReason.SUPPRESSED_BY_SYSTEM
        assert heard.calls == [("did_start", None, None), ("did_invalidate", suppressed, None)]
        assert session.invalidation_reason is suppressed
    finally:
        app_client.close()
        user.close()


def test_an_app_that_closes_hears_its_therapy_session_end_and_its_next_process_nothing(
    served: tuple[DaemonHost, str],
) -> None:
    """A physical-therapy session ends when its app exits. A process that closes its client
    (at exit, `atexit` does) hears the ending itself, as on the embedded host, so the app's
    next process is handed nothing. (A process that dies without closing misses it, and its
    next one is handed it: `test_daemon.py`.)"""
    host, path = served
    first = DaemonClient(path)
    therapy = SessionType.PHYSICAL_THERAPY
    heard = Heard()
    session = ExtendedRuntimeSession(App("org.example.back", therapy, host=first), heard)
    session.start()
    first.close()
    assert session.state is SessionState.INVALID
    assert heard.calls[-1] == ("did_invalidate", InvalidationReason.ERROR, ErrorCode.UNKNOWN)
    assert eventually(lambda: not host.sessions(), 5.0)
    second = DaemonClient(path)
    try:
        handed: list[ExtendedRuntimeSession] = []
        app = App("org.example.back", therapy, host=second)
        app.on_session(handed.append)
        assert second.settle()
        assert handed == []
    finally:
        second.close()
