"""The daemon as a user runs it: `xrs daemon` in its own process, apps in theirs, real signals.

Each test starts `python -m extended_runtime daemon` with its runtime and state folders in the
test's own folder (`XRS_RUNTIME_DIR`, `XRS_STATE_DIR`), on the machine's real services where they
run (the logind lock is observed from outside with `busctl`), and talks to it as apps and the
user's tools do: `DaemonClient`, `xrs status`, small app programs in subprocesses. Nothing is
faked: a crash is SIGKILL, an app dying is SIGKILL, the store is the SQLite file on disk.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extended_runtime import App, ExtendedRuntimeSession, SessionState, SessionType
from extended_runtime._daemon.status import find_daemon

from . import services
from .daemons import COMES_BACK, ROOT, SCHEDULE, THERAPY, Daemon
from .helpers import eventually
from .test_logind import inhibitors


def _scheduled(status: dict[str, object]) -> set[str]:
    rows = status["sessions"]
    assert isinstance(rows, list)
    return {row["session_id"] for row in rows if row["state"] == SessionState.SCHEDULED}


def test_an_app_uses_the_daemon_by_itself_and_its_alarm_outlives_it(daemon: Daemon) -> None:
    daemon.start()
    app = daemon.app(SCHEDULE, "1", "3600", host="auto")
    out, err = app.communicate(timeout=30)
    assert app.returncode == 0, err
    session_id, state = out.split()
    assert state == "SCHEDULED"
    assert _scheduled(daemon.status()) == {session_id}


def test_a_scheduled_session_is_acknowledged_only_once_on_disk(daemon: Daemon) -> None:
    daemon.start()
    app = daemon.app(SCHEDULE, "1", "3600")
    out, _ = app.communicate(timeout=30)
    session_id = out.split()[0]
    daemon.kill()  # at once after the acknowledgement: nothing may be lost
    daemon.start()
    assert _scheduled(daemon.status()) == {session_id}


def test_an_app_killed_mid_session_is_noticed_within_a_second(daemon: Daemon) -> None:
    daemon.start()
    app = daemon.app(THERAPY)
    assert app.stdout is not None
    session_id, state = app.stdout.readline().split()
    assert state == "RUNNING"
    assert daemon.status()["keep_awake"] is True
    app.kill()
    app.wait(10)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and daemon.status()["sessions"]:
        time.sleep(0.02)
    status = daemon.status()
    assert status["sessions"] == []
    assert status["keep_awake"] is False
    assert ("SessionInvalidated", session_id) in _when_committed(daemon)


def _when_committed(daemon: Daemon) -> list[tuple[str, str | None]]:
    deadline = time.monotonic() + 5
    while True:
        audit = daemon.audit()
        if any(kind == "SessionInvalidated" for kind, _ in audit) or time.monotonic() > deadline:
            return audit
        time.sleep(0.05)


def test_the_logind_lock_dies_with_a_killed_daemon(daemon: Daemon) -> None:
    services.require("logind")
    pid = daemon.start()
    app = daemon.app(THERAPY)
    assert app.stdout is not None
    app.stdout.readline()
    held = [lock for lock in inhibitors() if lock[5] == pid and "idle" in lock[0]]
    assert held, inhibitors()
    daemon.kill()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and any(lock[5] == pid for lock in inhibitors()):
        time.sleep(0.02)
    assert not [lock for lock in inhibitors() if lock[5] == pid]
    app.kill()
    app.wait(10)


@pytest.mark.slow
def test_twenty_kills_under_load_lose_nothing_and_start_nothing_twice(daemon: Daemon) -> None:
    """SIGKILL the daemon 20 times while a client runs sessions through it: every scheduled
    session is there after each restart, and no session ever starts twice (the audit log)."""
    daemon.start()
    app = daemon.app(SCHEDULE, "8", "4")  # due 4..11 s from now: some start during the loop
    out, err = app.communicate(timeout=30)
    assert app.returncode == 0, err
    alarms = {line.split()[0] for line in out.splitlines()}
    assert len(alarms) == 8
    for round_ in range(20):
        client = daemon.client()
        load = App(f"org.example.load{round_}", SessionType.PHYSICAL_THERAPY, host=client)
        for _ in range(20):
            session = ExtendedRuntimeSession(load)
            session.start()
            session.invalidate()
        running = ExtendedRuntimeSession(load)
        running.start()
        daemon.kill()
        client.close()
        daemon.start()
        listed = daemon.status()["sessions"]
        assert isinstance(listed, list)
        rows = {row["session_id"]: row for row in listed}
        assert running.session_id not in rows  # ended by the restart, never resumed twice
        ended = {sid for kind, sid in daemon.audit() if kind == "SessionInvalidated"}
        for alarm in alarms:
            assert alarm in rows or alarm in ended, f"alarm {alarm} was lost in round {round_}"
        time.sleep(0.3)
    started = [sid for kind, sid in daemon.audit() if kind == "SessionStarted"]
    assert len(started) == len(set(started)), "a session started twice"
    assert alarms & set(started), "no alarm came due during the loop"


def test_a_graceful_stop_keeps_scheduled_sessions_and_removes_its_status(daemon: Daemon) -> None:
    daemon.start()
    app = daemon.app(SCHEDULE, "2", "3600")
    out, _ = app.communicate(timeout=30)
    ids = {line.split()[0] for line in out.splitlines()}
    daemon.kill(signal.SIGTERM)
    assert daemon.process is not None and daemon.process.returncode == 0
    assert find_daemon(daemon.env)[0] is None
    daemon.start()
    assert _scheduled(daemon.status()) == ids


def test_a_second_daemon_says_who_runs_and_exits(daemon: Daemon) -> None:
    pid = daemon.start()
    second = daemon.run_to_the_end()
    assert second.returncode == 1
    assert f"pid {pid}" in second.stderr


def test_the_user_s_tools_stop_and_pause(daemon: Daemon) -> None:
    daemon.start()
    app = daemon.app(SCHEDULE, "1", "3600")
    out, _ = app.communicate(timeout=30)
    session_id = out.split()[0]
    xrs = [sys.executable, "-m", "extended_runtime"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*xrs, *args], env=daemon.env, capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip

    shown = run("status")
    assert shown.returncode == 0
    assert session_id in shown.stdout and "scheduled" in shown.stdout
    assert run("stop", "no-such-session").returncode == 1
    assert run("stop", session_id).returncode == 0
    assert _scheduled(daemon.status()) == set()
    assert run("pause").returncode == 0
    assert daemon.status()["paused"] is True
    assert run("resume").returncode == 0
    assert daemon.status()["paused"] is False


def test_without_a_daemon_the_tools_say_what_to_run(tmp_path: Path) -> None:
    env = dict(os.environ, XRS_RUNTIME_DIR=str(tmp_path / "run"), PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, "-m", "extended_runtime", "status"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert "xrs daemon" in done.stderr


def test_forcing_the_daemon_without_one_fails_clearly(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    app = daemon.app(SCHEDULE, "1", "3600", host="daemon")
    _, err = app.communicate(timeout=30)
    daemon.end_apps()
    assert app.returncode != 0
    assert "XRS_HOST=daemon" in err and "xrs daemon" in err


def test_a_newer_store_stops_the_daemon_with_a_clear_message(
    daemon: Daemon, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with sqlite3.connect(state / "daemon.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    done = daemon.run_to_the_end()
    assert done.returncode != 0
    text = done.stderr
    assert "99" in text and "upgrade" in text.lower()
    assert "Traceback" not in text


def test_an_alarm_due_while_the_daemon_was_down_starts_late_on_restart(daemon: Daemon) -> None:
    daemon.start()
    app = daemon.app(SCHEDULE, "1", "1")
    out, _ = app.communicate(timeout=30)
    session_id = out.split()[0]
    daemon.kill()
    time.sleep(1.5)
    daemon.start()
    rows = daemon.status()["sessions"]
    assert isinstance(rows, list)
    (row,) = [row for row in rows if row["session_id"] == session_id]
    assert row["state"] == SessionState.RUNNING  # the host alerts in the app's place
    assert isinstance(row["expiration_date"], datetime)
    assert row["expiration_date"] < datetime.now(UTC) + timedelta(minutes=30)


HOLDS = """
    import sys, time
    from datetime import datetime, timedelta, timezone
    from extended_runtime import App, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate
    from extended_runtime import SessionType

    class Heard(ExtendedRuntimeSessionDelegate):
        def did_start(self, session):
            print("did_start", session.session_id, flush=True)

        def did_invalidate(self, session, reason, error):
            print("did_invalidate", session.session_id, reason.name, flush=True)

    therapy = ExtendedRuntimeSession(App("org.example.held", SessionType.PHYSICAL_THERAPY), Heard())
    therapy.start()
    alarm = ExtendedRuntimeSession(App("org.example.held-alarm", SessionType.SMART_ALARM), Heard())
    alarm.start_at(datetime.now(timezone.utc) + timedelta(seconds=float(sys.argv[1])))
    print("holding", therapy.session_id, alarm.session_id, flush=True)
    time.sleep(float(sys.argv[2]))
    print("states", therapy.state.name, alarm.state.name, flush=True)
"""


def test_a_restarted_daemon_gives_its_sessions_back_to_the_processes_that_hold_them(
    daemon: Daemon,
) -> None:
    """The app outlives a crash of the daemon: its running session runs on and its scheduled
    one starts on the same objects, with no second did_start and no did_invalidate (until the
    app's own exit ends its therapy session)."""
    daemon.start()
    app = daemon.app(HOLDS, "4", "7")
    assert app.stdout is not None
    # the therapy session's did_start (delegate thread) and the ids (main thread), either first
    lines: list[list[str]] = sorted(app.stdout.readline().split() for _ in range(2))
    assert [line[0] for line in lines] == ["did_start", "holding"], lines
    therapy, alarm = lines[1][1], lines[1][2]
    assert lines[0][1] == therapy
    daemon.kill()
    daemon.start()
    deadline = time.monotonic() + 10
    held: set[str] = set()
    while time.monotonic() < deadline and held != {therapy, alarm}:
        rows = daemon.status()["sessions"]
        assert isinstance(rows, list)
        held = {row["session_id"] for row in rows}
        time.sleep(0.05)
    out, err = app.communicate(timeout=30)
    assert held == {therapy, alarm}, (out, err, daemon.log.read_text()[-3000:])
    rest = out.splitlines()
    # nothing of the restart; at its own exit, the app hears its therapy session end
    ending = f"did_invalidate {therapy} ERROR"
    assert rest == [f"did_start {alarm}", "states RUNNING RUNNING", ending], (rest, err)


CALM = """
    import time
    from extended_runtime import App, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate
    from extended_runtime import SessionType

    class Bell(ExtendedRuntimeSessionDelegate):
        def did_start(self, session):
            print("started", flush=True)

        def did_invalidate(self, session, reason, error):
            print("ended", reason.name, flush=True)

    session = ExtendedRuntimeSession(App("org.example.calm", SessionType.MINDFULNESS), Bell())
    with session.running():
        print("inside", flush=True)
        time.sleep(30)
"""


def test_ctrl_c_twice_still_ends_the_session_and_keeps_the_connection_readable(
    daemon: Daemon,
) -> None:
    """The second Ctrl-C lands while `running()` invalidates through the daemon: it waits until
    that call is whole, so the session ends, its delegate hears it, and nothing is left."""
    daemon.start()
    app = daemon.app(CALM, host="daemon")
    assert app.stdout is not None
    seen = ""  # two threads print: their words may share a line
    while "inside" not in seen or "started" not in seen:
        line = app.stdout.readline()
        assert line, seen
        seen += line
    app.send_signal(signal.SIGINT)
    time.sleep(0.01)
    app.send_signal(signal.SIGINT)
    out, err = app.communicate(timeout=30)
    assert "ended NONE" in out, err
    assert "read_frame" not in err  # no interrupt inside a frame
    status = daemon.status()
    assert status["sessions"] == [] and status["keep_awake"] is False


def test_a_frontmost_session_of_an_exiting_app_ends_before_it_goes(daemon: Daemon) -> None:
    """As on the embedded host, an app that exits with its mindfulness session running hears
    RESIGNED_FRONTMOST before the process ends."""
    daemon.start()
    code = CALM.replace("with session.running():", "if session.start() is None:").replace(
        "time.sleep(30)", "pass"
    )
    app = daemon.app(code, host="daemon")
    out, err = app.communicate(timeout=30)
    assert "started" in out and "inside" in out, err
    assert out.rstrip().endswith("ended RESIGNED_FRONTMOST"), (out, err)
    assert daemon.status()["sessions"] == []


THERAPY_APP = """
    import sys, time
    from datetime import datetime, timedelta, timezone
    from extended_runtime import App, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate
    from extended_runtime import SessionType

    def say(*words):  # one write: the delegate thread and the main thread both speak
        sys.stdout.write(" ".join(map(str, words)) + "\\n")
        sys.stdout.flush()

    class Heard(ExtendedRuntimeSessionDelegate):
        def did_start(self, session):
            say("started")

        def did_invalidate(self, session, reason, error):
            say("ended", reason.name, error.code.name if error else None)

    kind = SessionType[sys.argv[1]]
    session = ExtendedRuntimeSession(App(f"org.example.{kind.value}", kind), Heard())
    if kind is SessionType.SMART_ALARM:
        session.start_at(datetime.now(timezone.utc))  # due now: it starts at once
    else:
        session.start()
    while session.state.name != "RUNNING":
        time.sleep(0.01)
    say("running", session.session_id)
    if sys.argv[2] == "wait":
        time.sleep(30)
"""


def _running(app: subprocess.Popen[str]) -> str:
    """Wait until `THERAPY_APP` says its session runs; the session's id."""
    assert app.stdout is not None
    while not (line := app.stdout.readline()).startswith("running"):
        assert line, app.communicate()
    return line.split()[1]


def _run_until_exit(daemon: Daemon, kind: str, how: str) -> str:
    """Run `THERAPY_APP` for a session of `kind`; it exits by itself or on Ctrl-C (`how`)."""
    app = daemon.app(THERAPY_APP, kind, "wait" if how == "ctrl-c" else "exit")
    assert app.stdout is not None
    if how == "ctrl-c":
        _running(app)
        app.send_signal(signal.SIGINT)
    out, err = app.communicate(timeout=30)
    return out + err


@pytest.mark.parametrize("how", ["exit", "ctrl-c"])
def test_a_therapy_session_of_an_exiting_app_ends_before_it_goes_and_only_once(
    daemon: Daemon, how: str
) -> None:
    """As on the embedded host, an app that exits (or is stopped with Ctrl-C) with its
    physical-therapy session running hears ERROR, UNKNOWN before the process ends: no process
    is ever launched into such a session. It heard it, so nothing is kept for its next one."""
    daemon.start()
    said = _run_until_exit(daemon, "PHYSICAL_THERAPY", how)
    assert "ended ERROR UNKNOWN" in said, said
    assert daemon.status()["sessions"] == []
    assert eventually(lambda: _kinds(daemon).count("SessionInvalidated") == 1), _kinds(daemon)
    # the app's next process is handed nothing: the ending was heard
    again = _run_until_exit(daemon, "PHYSICAL_THERAPY", "exit")
    assert again.count("ended ERROR UNKNOWN") == 1, again
    assert eventually(lambda: _kinds(daemon).count("SessionInvalidated") == 2), _kinds(daemon)
    assert "SessionHandedOver" not in _kinds(daemon)


def _kinds(daemon: Daemon) -> list[str]:
    return [kind for kind, _ in daemon.audit()]


def test_an_alarm_of_an_exiting_app_goes_on_in_the_daemon(daemon: Daemon) -> None:
    """An exit ends no alarm: the daemon rings it itself (or hands it to the next process)."""
    daemon.start()
    said = _run_until_exit(daemon, "SMART_ALARM", "exit")
    assert "started" in said and "ended" not in said, said
    rows = daemon.status()["sessions"]
    assert isinstance(rows, list) and len(rows) == 1, rows
    assert rows[0]["app_id"] == "org.example.alarm"


def test_a_therapy_session_of_a_killed_app_is_handed_to_its_next_process(daemon: Daemon) -> None:
    """A process killed outright cannot hear its session end: the daemon ends it (ERROR,
    UNKNOWN) and hands the ending to the app's next process, through `App.on_session`."""
    daemon.start()
    app = daemon.app(THERAPY_APP, "PHYSICAL_THERAPY", "wait")
    session_id = _running(app)
    app.kill()
    out, _ = app.communicate(timeout=30)
    assert "ended" not in out
    assert eventually(lambda: daemon.status()["sessions"] == [])
    back = daemon.app(COMES_BACK, "org.example.physical-therapy", "PHYSICAL_THERAPY")
    heard, err = back.communicate(timeout=30)
    # what it missed: the ending (its start was heard by the killed process), as on every host
    assert heard.splitlines() == [f"did_invalidate {session_id} ERROR UNKNOWN"], err


CARELESS = """
    import logging
    from datetime import datetime, timedelta, timezone
    from extended_runtime import App, ExtendedRuntimeSession, SessionType

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    session = ExtendedRuntimeSession(App("org.example.careless", SessionType.SMART_ALARM))
    session.start_at(datetime.now(timezone.utc) - timedelta(hours=1))
    print(session.state.name, session.invalidation_reason.name, flush=True)
"""


def test_an_app_without_a_delegate_reads_in_its_own_log_why_its_session_failed(
    daemon: Daemon,
) -> None:
    """DESIGN.md: every refusal is logged at WARNING, so an app without a delegate still learns
    why. On the daemon the line is written in the app's process too, not only in the daemon's."""
    daemon.start()
    app = daemon.app(CARELESS)
    out, err = app.communicate(timeout=30)
    assert out.split() == ["INVALID", "ERROR"], err
    assert "WARNING session" in err and "could not start" in err, err
    assert "accepts dates at most 60 s in the past" in err, err


def test_an_app_exiting_while_its_daemon_hangs_waits_at_most_a_second_and_hears_its_end(
    daemon: Daemon,
) -> None:
    """A daemon that stops answering (here: SIGSTOP) does not hold an exiting app for the
    ten seconds a call may take: the app tells it what it can within half of the 2 s exit
    bound, then ends here what its exit ends, so its delegate still hears it."""
    daemon.start()
    app = daemon.app(THERAPY_APP, "PHYSICAL_THERAPY", "wait")
    _running(app)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGSTOP)
    try:
        began = time.monotonic()
        app.send_signal(signal.SIGINT)
        out, err = app.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        daemon.process.send_signal(signal.SIGCONT)
    assert "ended ERROR UNKNOWN" in out, err
    assert "could not tell the daemon that org.example.physical-therapy exits" in err
    assert took < 5.0, took
    assert eventually(lambda: daemon.status()["sessions"] == [])  # the daemon ended it too
