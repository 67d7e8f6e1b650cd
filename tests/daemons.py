"""A real daemon process for tests: `python -m extended_runtime daemon` with its runtime and
state folders in the test's own folder, and the small app programs the tests run against it.

The daemon runs on the machine's real services (logind's lock, the wake alarm, power and sleep
signals) except for alerts, which are the logging stand-in (`--backend alerts=log-alerts`): an
alarm test rings many alarms, and the desktop's sound and notification servers are shared with
the tests that check those alerts for real (`test_desktop_alarm.py`, `test_linux_alerts.py`),
which a flood of stale notifications would disturb."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from extended_runtime._daemon.client import DaemonClient
from extended_runtime._daemon.status import find_daemon

ROOT = Path(__file__).resolve().parent.parent


class Daemon:
    """A daemon process of the test's own folders."""

    def __init__(self, folder: Path) -> None:
        self.env = dict(os.environ)
        self.env.update(
            XRS_RUNTIME_DIR=str(folder / "run"),
            XRS_STATE_DIR=str(folder / "state"),
            PYTHONPATH=str(ROOT / "src"),
        )
        self.env.pop("XRS_HOST", None)
        self.command = [
            sys.executable, "-m", "extended_runtime", "daemon", "--backend", "alerts=log-alerts",
        ]  # fmt: skip
        self.process: subprocess.Popen[str] | None = None
        self.log = folder / "daemon.log"
        self.apps: list[subprocess.Popen[str]] = []

    def start(self) -> int:
        """Start it and wait until its status file says it serves; returns its pid."""
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env, stdout=log, stderr=log, text=True,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found, _ = find_daemon(self.env)
            if found is not None and found.pid == self.process.pid:
                return found.pid
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"the daemon did not start:\n{self.log.read_text()}")

    def run_to_the_end(self) -> subprocess.CompletedProcess[str]:
        """Run a daemon that is expected to refuse to start; what it said, and its status."""
        return subprocess.run(
            self.command,
            env=self.env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    @property
    def socket(self) -> str:
        """Where the daemon listens."""
        return str(Path(self.env["XRS_RUNTIME_DIR"]) / "daemon.sock")

    @property
    def database(self) -> Path:
        """The daemon's store."""
        return Path(self.env["XRS_STATE_DIR"]) / "daemon.sqlite3"

    def kill(self, number: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(number)
        self.process.wait(10)

    def client(self) -> DaemonClient:
        found, why = find_daemon(self.env)
        assert found is not None, why
        return DaemonClient(found.socket)

    def status(self) -> dict[str, object]:
        client = self.client()
        try:
            return client.status()
        finally:
            client.close()

    def app(self, code: str, *args: str, host: str = "daemon") -> subprocess.Popen[str]:
        env = dict(self.env, XRS_HOST=host)
        app = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.apps.append(app)
        return app

    def end_apps(self) -> None:
        for app in self.apps:
            if app.poll() is None:
                app.kill()
            app.communicate(timeout=10)

    def audit(self) -> list[tuple[str, str | None]]:
        """(kind, session id) of every event the store kept, in order."""
        with sqlite3.connect(Path(self.env["XRS_STATE_DIR"]) / "daemon.sqlite3") as db:
            return list(db.execute("SELECT kind, session_id FROM events ORDER BY seq"))


SCHEDULE = """
    import sys
    from datetime import datetime, timedelta, timezone
    from extended_runtime import App, ExtendedRuntimeSession, SessionType
    for n in range(int(sys.argv[1])):
        app = App(f"org.example.alarm{n}", SessionType.SMART_ALARM)
        session = ExtendedRuntimeSession(app)
        session.start_at(datetime.now(timezone.utc) + timedelta(seconds=float(sys.argv[2]) + n))
        print(session.session_id, session.state.name, flush=True)
"""

THERAPY = """
    import sys, time
    from extended_runtime import App, ExtendedRuntimeSession, SessionType
    session = ExtendedRuntimeSession(App("org.example.therapy", SessionType.PHYSICAL_THERAPY))
    session.start()
    print(session.session_id, session.state.name, flush=True)
    time.sleep(60)
"""


#: An app's next process: it sets a delegate on each session handed to it through
#: `App.on_session` and prints what it hears ("did_start ID", "did_invalidate ID REASON [CODE]").
#: Arguments: the app id, its `SessionType` name.
COMES_BACK = """
    import sys, time
    from extended_runtime import App, ExtendedRuntimeSessionDelegate, SessionType

    class Heard(ExtendedRuntimeSessionDelegate):
        def did_start(self, session):
            print("did_start", session.session_id, flush=True)

        def did_invalidate(self, session, reason, error):
            code = [] if error is None else [error.code.name]
            print("did_invalidate", session.session_id, reason.name, *code, flush=True)

    app = App(sys.argv[1], SessionType[sys.argv[2]])

    @app.on_session
    def handle(session):
        session.delegate = Heard()

    time.sleep(2)
"""
