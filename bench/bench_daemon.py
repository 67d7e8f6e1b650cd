"""The daemon: round trips against a bare socket echo, throughput, and a restart with 100,000.

What is measured
----------------
The real daemon (`python -m extended_runtime daemon`, its folders in a temporary directory, on
the machine's services when `scripts/services start` ran; its alerts logged, `BACKENDS`), used
as apps use it:

* *round trip*: one app (a `DaemonClient` in this process) runs `start()` then `invalidate()`
  of a physical-therapy session, again and again; each call is one request and its reply, with
  the session's events pushed before the reply. The figure is the p50 of one call. The peer is a
  bare Python Unix-socket echo server in its own process (a thread per connection, `recv` then
  `sendall`), answering 40-byte messages: the floor of any Python service on a socket. Calls and
  echoes alternate, one each in turn, so that both meet the machine in the same state (an echo
  measured alone, after the calls, has come out anywhere from 5 to 50 us on this machine).
  Target: under 3x the echo's p50. A second peer shows what any Python daemon with this
  protocol pays before it does any work: the *floor* (`FLOOR`, its own process, a thread per
  connection) reads a framed `Start` request into its msgspec struct, notes the session in a
  dict under a lock, and answers with a pushed event and a reply, which the caller reads and
  decodes as the client does; no engine, store, audit or keep-awake. It is measured in the
  same turns (a call, an echo, a floor round trip). The three run on one CPU (`pinned`):
  one side of a round trip runs at a time, and a wake-up across CPUs costs what the machine's
  idle states make it, differently from run to run;
* *throughput*: 16 client processes, each with its own app, run start + invalidate lifecycles
  for a few seconds; the figure is lifecycles per second over all of them. Target: 5,000/s;
* *lateness*: the time issue's benchmark through the daemon: 10,000 smart alarms of 10,000
  apps, due one per millisecond for 10 s, scheduled by one app process; each delegate records
  how long after its start date `did_start` came (the daemon's timer, the push over the socket,
  the client's delivery). The peer is APScheduler 3.11's `AsyncIOScheduler` with the same dates,
  in this process after the daemon's run. Target: our p99 at most half of APScheduler's;
* *restart*: a store holding 100,000 scheduled sessions (of 100,000 apps, written through the
  store as the daemon writes them) is opened by a fresh daemon, three times; the figure is the
  median time from starting the process to its status file saying it serves, and the fewest
  scheduled sessions its `status` reported. Target: under 1 s, all there.

Run: `python bench/bench_daemon.py` (one JSON object on the last line of stdout).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _measure import load_services, percentile, pin_to_one_core, report, stopwatch
from extended_runtime import App, ExtendedRuntimeSession, SessionType
from extended_runtime._daemon.client import DaemonClient
from extended_runtime._daemon.status import find_daemon

__all__ = ["lateness", "main", "restart", "round_trips", "throughput"]

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3000
CLIENTS = 16
SECONDS = 3.0
RESTART_SESSIONS = 100_000
RESTARTS = 3  # the restart's figure is the median of this many
#: The daemon's alerts go to its log: its alarms that nobody answers would otherwise post desktop
#: notifications that outlive the run, and the notification server's work would be timed along.
BACKENDS = ("--backend", "alerts=log-alerts")
TARGETS = {
    "round_trip_of_echo": 3.0,
    "lifecycles_per_s": 5000.0,
    "restart_s": 1.0,
    "lateness_p99_of_apscheduler": 0.5,
}
ALARMS = 10_000
SPACING = 0.001
SCHEDULERS = 16  # threads of the app that schedule, so that their commits are shared
LATENESS_LEAD = 3.0  # seconds between the end of the setup and the first alarm, roughly
SETUP_PER_ALARM = 0.6e-3  # seconds of setup each alarm is allowed (a round trip and a commit)

ECHO = """
import socket, sys, threading
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(16)
print("ready", flush=True)
def serve(connection):
    while data := connection.recv(65536):
        connection.sendall(data)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""

FLOOR = """
import socket, struct, sys, threading
import msgspec
from extended_runtime._daemon import protocol as p
requests = msgspec.msgpack.Decoder(p.Start)
sessions, lock = {}, threading.Lock()
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(16)
print("ready", flush=True)
def serve(connection):
    while True:
        try:
            request = requests.decode(p.read_frame(connection))
        except (EOFError, OSError):
            return
        with lock:
            sessions[request.session_id] = 2
        event = {"kind": "SessionStarted", "session_id": request.session_id, "state": 2}
        connection.sendall(p.frame(p.Push(event=event)) + p.frame(p.Reply(id=request.id)))
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""

CLIENT = """
import sys, time
from extended_runtime import App, ExtendedRuntimeSession, SessionType
app = App(f"org.bench.client{sys.argv[1]}", SessionType.PHYSICAL_THERAPY)
sys.stdin.readline()
count, end = 0, time.perf_counter() + float(sys.argv[2])
while time.perf_counter() < end:
    session = ExtendedRuntimeSession(app)
    session.start()
    session.invalidate()
    count += 1
print(count, flush=True)
"""


class Daemon:
    """A real daemon with its folders in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.env = dict(os.environ, XRS_RUNTIME_DIR=str(folder / "run"))
        self.env["XRS_STATE_DIR"] = str(folder / "state")
        self.env["PYTHONPATH"] = str(ROOT / "src")
        self.env["XRS_HOST"] = "daemon"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start it; seconds until its status file says it serves."""
        started = stopwatch()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "extended_runtime", "daemon", *BACKENDS],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while find_daemon(self.env)[0] is None:
            if self.process.poll() is not None:
                raise SystemExit("the daemon exited at start-up")
            time.sleep(0.001)
        return stopwatch() - started

    def client(self) -> DaemonClient:
        found, why = find_daemon(self.env)
        assert found is not None, why
        return DaemonClient(found.socket)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


class _Peer:
    """A peer server (`code`, given the path of its socket, `name`.sock in `folder`) in its own
    process, and one connection to it."""

    def __init__(
        self, folder: Path, name: str, code: str, env: dict[str, str] | None = None
    ) -> None:
        import socket

        path = str(folder / f"{name}.sock")
        self.server = subprocess.Popen(
            [sys.executable, "-c", code, path], env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.server.stdout is not None and self.server.stdout.readline().strip() == "ready"
        self.connection = socket.socket(socket.AF_UNIX)
        self.connection.connect(path)

    def close(self) -> None:
        self.connection.close()
        self.server.kill()
        self.server.communicate()


class _Echo(_Peer):
    """A bare echo server (`ECHO`)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "echo", ECHO)

    def round_trip(self) -> float:
        """Seconds for one 40-byte message to come back."""
        started = stopwatch()
        self.connection.sendall(b"x" * 40)
        self.connection.recv(65536)
        return stopwatch() - started


class _Floor(_Peer):
    """The protocol's floor (`FLOOR`), importing the package from `env`'s path."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        super().__init__(folder, "floor", FLOOR, env)
        self._ids = 0

    def round_trip(self) -> float:
        """Seconds for one `Start` to be answered with a pushed event and a reply, decoded."""
        from extended_runtime._daemon import protocol as p

        self._ids += 1
        request = p.Start(id=self._ids, app_id="org.bench.floor", session_id=f"s{self._ids}")
        started = stopwatch()
        self.connection.sendall(p.frame(request))
        for _ in range(2):  # the push, then the reply
            p.decode_reply(p.read_frame(self.connection))
        return stopwatch() - started


def round_trips(folder: Path, count: int = ROUNDS) -> dict[str, Any]:
    """p50 of one call through the daemon, and of the echo and floor peers, measured in turn,
    so all three see the machine in the same state, and on one CPU (`pinned`)."""
    with pinned():
        return _round_trips(folder, count)


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """This process, and the processes it starts meanwhile, on one CPU. A round trip has one
    side running at a time, and on one CPU each hand-over is a context switch; across two, it
    is a wake-up of the other CPU, whose cost varies from run to run (an echo measured across
    them has come out at 15 us in one run and 45 us in the next)."""
    allowed = os.sched_getaffinity(0)
    pin_to_one_core()
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def _round_trips(folder: Path, count: int) -> dict[str, Any]:
    daemon = Daemon(folder / "round")
    daemon.start()
    client = daemon.client()
    echo = _Echo(folder)
    floor = _Floor(folder, daemon.env)
    try:
        app = App("org.bench.round-trip", SessionType.PHYSICAL_THERAPY, host=client)
        calls: list[float] = []
        echoes: list[float] = []
        floors: list[float] = []
        for _ in range(count):
            session = ExtendedRuntimeSession(app)
            for call in (session.start, session.invalidate):
                started = stopwatch()
                call()
                calls.append(stopwatch() - started)
                echoes.append(echo.round_trip())
                floors.append(floor.round_trip())
    finally:
        floor.close()
        echo.close()
        client.close()
        daemon.stop()
    ours_us, echo_us = percentile(calls, 0.5) * 1e6, percentile(echoes, 0.5) * 1e6
    floor_us = percentile(floors, 0.5) * 1e6
    return {
        "call_p50_us": ours_us,
        "call_p99_us": percentile(calls, 0.99) * 1e6,
        "echo_p50_us": echo_us,
        "floor_p50_us": floor_us,
        "ratio": ours_us / echo_us,
        "floor_ratio": floor_us / echo_us,
    }


def throughput(folder: Path, clients: int = CLIENTS, seconds: float = SECONDS) -> dict[str, Any]:
    """Lifecycles per second with `clients` processes at once."""
    daemon = Daemon(folder / "throughput")
    daemon.start()
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(CLIENT), str(n), str(seconds)],
                env=daemon.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(clients)
        ]
        time.sleep(1.0)  # every client connected and registered
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        counts = [int(process.communicate(timeout=60)[0].strip()) for process in processes]
    finally:
        daemon.stop()
    return {"clients": clients, "seconds": seconds, "per_s": sum(counts) / seconds}


def restart(folder: Path, sessions: int = RESTART_SESSIONS) -> dict[str, Any]:
    """Seconds for a daemon to serve with `sessions` scheduled sessions in its store."""
    from extended_runtime._backends.sqlite import SqliteStore
    from extended_runtime._core.enums import SessionState
    from extended_runtime._core.records import SessionRecord

    daemon = Daemon(folder / "restart")
    state = Path(daemon.env["XRS_STATE_DIR"])
    state.mkdir(parents=True, mode=0o700)
    store = SqliteStore(state / "daemon.sqlite3")
    now = datetime.now(UTC)
    body: dict[str, object] = {"mode": "alarm", "launch": None}
    for n in range(sessions):
        app_id = f"org.bench.alarm{n}"
        store.put_app(app_id, body, now)
        store.save(
            SessionRecord(
                session_id=f"{n:032x}",
                app_id=app_id,
                session_type=SessionType.SMART_ALARM,
                state=SessionState.SCHEDULED,
                updated_at=now,
                start_date=now + timedelta(hours=2, seconds=n / 10),
            )
        )
    store.close()
    readies: list[float] = []
    counts: list[int] = []
    for _ in range(RESTARTS):  # the same store each time: a restart changes nothing in it
        readies.append(daemon.start())
        client = daemon.client()
        try:
            counts.append(client.status(limit=0)["scheduled"])
        finally:
            client.close()
            daemon.stop()
    return {
        "sessions": sessions,
        "ready_s": statistics.median(readies),
        "ready_s_all": readies,
        "scheduled": min(counts),
    }


def lateness(folder: Path, count: int = ALARMS, spacing: float = SPACING) -> dict[str, Any]:
    """`count` smart alarms, `spacing` seconds apart, scheduled through the daemon by one app
    process (one connection, `count` apps, `SCHEDULERS` threads sharing the group commits):
    how late `did_start` reaches each delegate, against APScheduler at the same spacing."""
    from concurrent.futures import ThreadPoolExecutor

    from bench_embedded_alarms import MIN_MARGIN, LatenessDelegate, _Recorder, run_apscheduler
    from extended_runtime._core.clock import SystemClock

    clock = SystemClock()
    daemon = Daemon(folder / "lateness")
    daemon.start()
    client = daemon.client()
    recorder = _Recorder(count)
    try:
        apps = [
            App(f"org.bench.alarm{i:05d}", SessionType.SMART_ALARM, host=client)
            for i in range(count)
        ]
        t0 = clock.now() + timedelta(seconds=LATENESS_LEAD + count * SETUP_PER_ALARM)
        whens = [t0 + timedelta(seconds=i * spacing) for i in range(count)]

        def schedule(index: int) -> None:
            delegate = LatenessDelegate(recorder, whens[index])
            ExtendedRuntimeSession(apps[index], delegate).start_at(whens[index])

        with ThreadPoolExecutor(SCHEDULERS) as pool:
            list(pool.map(schedule, range(count)))
        margin = (t0 - clock.now()).total_seconds()
        if margin < MIN_MARGIN:
            raise SystemExit(f"the setup ended {margin:.3f} s before the first alarm")
        if not recorder.done.wait(margin + count * spacing + 60):
            raise SystemExit(f"only {len(recorder.samples)} of {count} alarms started")
    finally:
        client.close()
        daemon.stop()
    ours = _percentiles(recorder.samples)
    peer = _percentiles(run_apscheduler(count, spacing).samples)
    return {
        "alarms": count,
        "spacing_s": spacing,
        "margin_s": margin,
        "ours": ours,
        "apscheduler": peer,
        "ratio_p99": ours["p99_ms"] / peer["p99_ms"],
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = [sample * 1e3 for sample in samples]
    return {"p50_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99), "max_ms": max(ms)}


def main() -> None:
    load_services()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        trips = round_trips(folder)
        flow = throughput(folder)
        back = restart(folder)
        late = lateness(folder)
    report(
        {
            "benchmark": "daemon",
            "round_trip": trips,
            "throughput": flow,
            "restart": back,
            "lateness": late,
            "targets": TARGETS,
            "passed": {
                "round_trip": trips["ratio"] < TARGETS["round_trip_of_echo"],
                "throughput": flow["per_s"] >= TARGETS["lifecycles_per_s"],
                "restart": back["ready_s"] < TARGETS["restart_s"]
                and back["scheduled"] == back["sessions"],
                "lateness": late["ratio_p99"] <= TARGETS["lateness_p99_of_apscheduler"],
            },
        }
    )


if __name__ == "__main__":
    main()
