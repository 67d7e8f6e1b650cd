"""The user's say over apps, through a real daemon: registration, policy, auto-launch, the log.

As in `test_daemon.py`, the daemon is `python -m extended_runtime daemon` in its own process
with its folders in the test's own, and the user's side is the real `xrs` command. Auto-launch is
the whole path: the daemon starts the registered command at the alarm's date, the new process
connects, is handed the session through `App.on_session`, and hears `did_start`. The question to
the user is asked on a real terminal (a pseudo-terminal the test answers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extended_runtime import (
    App,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    ExtendedRuntimeSession,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime._cli.audit import describe
from extended_runtime._core.clock import SystemClock

from .daemons import COMES_BACK, SCHEDULE, Daemon
from .helpers import Recorder


def xrs(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extended_runtime", *args],
        env=daemon.env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


class WallClock:
    """What a recorder reads as the host's time: the wall clock (the daemon runs on it)."""

    @property
    def now(self) -> datetime:
        return SystemClock().now()


def _refusal(daemon: Daemon, app_id: str, mode: SessionType, scheduled: bool) -> ErrorCode | None:
    """Start (or schedule) one session of the app through a client; the error it got."""
    client = daemon.client()
    try:
        recorder = Recorder(WallClock())
        session = ExtendedRuntimeSession(App(app_id, mode, host=client), recorder)
        if scheduled:
            session.start_at(datetime.now(UTC) + timedelta(hours=1))
        else:
            session.start()
        assert client.settle()
        session.invalidate()
        assert client.settle()
    finally:
        client.close()
    first = recorder.calls[0]
    return None if first.error is None else first.error.code


def test_the_user_denies_and_allows_an_app_and_the_answer_survives_a_restart(
    daemon: Daemon,
) -> None:
    daemon.start()
    app_id = "org.example.nosy"
    assert _refusal(daemon, app_id, SessionType.MINDFULNESS, False) is None
    denied = xrs(daemon, "apps", "deny", app_id)
    assert denied.returncode == 0 and "NOT_APPROVED_TO_START_SESSION" in denied.stdout
    assert _refusal(daemon, app_id, SessionType.MINDFULNESS, False) is (
        ErrorCode.NOT_APPROVED_TO_START_SESSION
    )
    daemon.kill()
    daemon.start()
    assert _refusal(daemon, app_id, SessionType.MINDFULNESS, False) is (
        ErrorCode.NOT_APPROVED_TO_START_SESSION
    )
    assert xrs(daemon, "apps", "allow", app_id).returncode == 0
    assert _refusal(daemon, app_id, SessionType.MINDFULNESS, False) is None


def test_disabled_alarms_are_refused_with_bar_disabled_until_allowed(daemon: Daemon) -> None:
    daemon.start()
    app_id = "org.example.loud"
    assert _refusal(daemon, app_id, SessionType.SMART_ALARM, True) is None
    assert xrs(daemon, "apps", "disable-alarms", app_id).returncode == 0
    assert _refusal(daemon, app_id, SessionType.SMART_ALARM, True) is ErrorCode.BAR_DISABLED
    listed = xrs(daemon, "apps", "list")
    assert app_id in listed.stdout and "disabled" in listed.stdout
    assert xrs(daemon, "apps", "allow", app_id).returncode == 0
    assert _refusal(daemon, app_id, SessionType.SMART_ALARM, True) is None


def test_policy_for_an_unknown_app_says_how_to_see_the_apps(daemon: Daemon) -> None:
    daemon.start()
    done = xrs(daemon, "apps", "deny", "org.example.never-seen")
    assert done.returncode == 1
    assert "xrs apps list" in done.stderr


def test_registering_lists_and_removing_forgets(daemon: Daemon, tmp_path: Path) -> None:
    daemon.start()
    added = xrs(
        daemon, "apps", "register", "org.example.wake", "--mode", "alarm", "--cwd",
        str(tmp_path), "--", sys.executable, "wake.py",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = xrs(daemon, "apps", "list")
    assert "org.example.wake" in listed.stdout and "wake.py" in listed.stdout
    assert "not asked" in listed.stdout
    assert xrs(daemon, "apps", "remove", "org.example.wake").returncode == 0
    assert xrs(daemon, "apps", "remove", "org.example.wake").returncode == 1
    bad = xrs(daemon, "apps", "register", "not an id", "--mode", "alarm")
    assert bad.returncode == 2


LAUNCHED = """
    import os, sys, time
    from pathlib import Path
    from extended_runtime import App, ExtendedRuntimeSessionDelegate, SessionType
    out = Path(sys.argv[1])

    class Heard(ExtendedRuntimeSessionDelegate):
        def did_start(self, session):
            out.write_text(f"{session.session_id} {os.environ['XRS_LAUNCHED_FOR']} "
                           f"{session.state.name} {app.state.name}")

    app = App("org.example.wake", SessionType.SMART_ALARM)

    @app.on_session
    def handle(session):
        session.delegate = Heard()

    time.sleep(20)
"""


def test_an_allowed_app_is_launched_into_its_alarm(daemon: Daemon, tmp_path: Path) -> None:
    daemon.start()
    program = tmp_path / "wake.py"
    program.write_text(textwrap.dedent(LAUNCHED))
    heard = tmp_path / "heard.txt"
    added = xrs(
        daemon, "apps", "register", "org.example.wake", "--mode", "alarm", "--cwd", str(tmp_path),
        "--", sys.executable, str(program), str(heard),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert xrs(daemon, "apps", "allow-launch", "org.example.wake").returncode == 0
    schedule = textwrap.dedent(SCHEDULE).replace("org.example.alarm{n}", "org.example.wake")
    app = daemon.app(schedule, "1", "1.5")
    out, err = app.communicate(timeout=30)
    assert app.returncode == 0, err
    session_id = out.split()[0]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not heard.exists():
        time.sleep(0.05)
    assert heard.exists(), (daemon.log.read_text(), daemon.status())
    got, launched_for, state, app_state = heard.read_text().split()
    assert got == launched_for == session_id
    assert state == "RUNNING"
    assert app_state == "BACKGROUND"
    rows = daemon.status()["sessions"]
    assert isinstance(rows, list)
    assert [row["session_id"] for row in rows] == [session_id]
    daemon.end_apps()
    for line in subprocess.run(["pgrep", "-f", str(program)], capture_output=True, text=True,
                               check=False).stdout.split():  # fmt: skip
        os.kill(int(line), 9)


ASK = """
    from extended_runtime import App, ExtendedRuntimeSession, SessionType
    app = App("org.example.asked", SessionType.SMART_ALARM)
    status = ExtendedRuntimeSession.request_auto_launch_authorization_status(app)
    print("STATUS", status.name, flush=True)
"""


def _ask_on_a_terminal(daemon: Daemon, answer: bytes) -> str:
    """Run the asking program with a pseudo-terminal, answer, and return what it printed."""
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(ASK)],
            env=dict(daemon.env, XRS_HOST="daemon"),
            stdin=follower, stdout=subprocess.PIPE, stderr=follower, text=True,
        )  # fmt: skip
        prompt = b""
        deadline = time.monotonic() + 20
        while b"[y/N]" not in prompt and time.monotonic() < deadline:
            prompt += os.read(leader, 1024)
        os.write(leader, answer)
        out, _ = process.communicate(timeout=30)
    finally:
        os.close(leader)
        os.close(follower)
    assert b"org.example.asked" in prompt
    return out


def test_the_user_is_asked_once_on_the_terminal_and_the_answer_is_kept(daemon: Daemon) -> None:
    daemon.start()
    assert "STATUS ACTIVE" in _ask_on_a_terminal(daemon, b"y\n")
    again = daemon.app(ASK)  # no terminal now: the stored answer, not a question
    out, err = again.communicate(timeout=30)
    assert "STATUS ACTIVE" in out, err
    assert "allowed" in xrs(daemon, "apps", "list").stdout


def test_without_a_terminal_or_a_desktop_the_question_is_declined_and_says_how_to_allow(
    daemon: Daemon, tmp_path: Path
) -> None:
    """No terminal, and no session bus to show a notification on: nobody can answer."""
    daemon.start()
    daemon.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={tmp_path / 'no-bus'}"
    asked = daemon.app(ASK)
    out, err = asked.communicate(timeout=30)
    assert "STATUS INACTIVE" in out
    assert "xrs apps allow-launch org.example.asked" in err
    assert AutoLaunchAuthorizationStatus.INACTIVE.name in out


def test_the_log_shows_an_app_s_events_and_refuses_a_bad_since(daemon: Daemon) -> None:
    daemon.start()
    assert _refusal(daemon, "org.example.logged", SessionType.SMART_ALARM, True) is None
    time.sleep(0.5)  # the commit channel writes within 0.2 s
    shown = xrs(daemon, "log", "--app", "org.example.logged", "--since", "1h")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any("SessionScheduled" in line for line in lines)
    assert any("SessionInvalidated" in line and "reason=NONE" in line for line in lines)
    assert all("org.example.logged" in line for line in lines)
    bad = xrs(daemon, "log", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr
    naive = xrs(daemon, "log", "--since", "2026-01-01T00:00")
    assert naive.returncode == 2 and "UTC offset" in naive.stderr


def test_the_log_without_a_daemon_ever_run_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, XRS_STATE_DIR=str(tmp_path / "none"), XRS_RUNTIME_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "extended_runtime", "log"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "has not run" in done.stderr


def test_a_log_line_names_reasons_and_errors_as_apple_does() -> None:
    line = describe(SystemClock().now(), "SessionInvalidated", {
        "kind": "SessionInvalidated", "app_id": "a", "session_id": "s",
        "reason": int(InvalidationReason.ERROR), "error_code": 5, "message": "too much CPU",
    })  # fmt: skip
    assert "reason=ERROR" in line and "error=EXCEEDED_RESOURCE_LIMITS" in line
    assert "(too much CPU)" in line


def _alarm_rung_and_stopped(daemon: Daemon) -> str:
    """An app schedules an alarm and exits; the daemon rings it in the app's place, and the
    user stops it (`xrs stop`). The session's id."""
    daemon.start()
    app = daemon.app(SCHEDULE, "1", "1")
    out, err = app.communicate(timeout=30)
    assert app.returncode == 0, err
    session_id = out.split()[0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and daemon.status()["keep_awake"] is not True:
        time.sleep(0.05)  # the date came: the daemon alerts in the app's place
    assert xrs(daemon, "stop", session_id).returncode == 0
    return session_id


def _heard_when_back(daemon: Daemon) -> list[str]:
    """What the app's next process hears through `on_session`."""
    back = daemon.app(COMES_BACK, "org.example.alarm0", "SMART_ALARM", host="auto")
    heard, err = back.communicate(timeout=30)
    assert back.returncode == 0, err
    return heard.splitlines()


def test_an_app_hears_at_its_next_start_what_its_alarm_did_while_it_was_away(
    daemon: Daemon,
) -> None:
    """DESIGN.md: a `did_invalidate` the app missed because it had exited is delivered at its
    next launch, through its `on_session` handlers (here the user started it again)."""
    session_id = _alarm_rung_and_stopped(daemon)
    assert _heard_when_back(daemon) == [
        f"did_start {session_id}",
        f"did_invalidate {session_id} NONE",
    ]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_what_an_app_missed_reaches_it_across_a_restart_of_the_daemon(
    daemon: Daemon, how: str
) -> None:
    """The ending the app missed is kept in the store: a daemon killed (or stopped) after the
    alarm ended, and started again, still hands it to the app's next process, once."""
    session_id = _alarm_rung_and_stopped(daemon)
    time.sleep(0.5)  # the commit channel writes within 0.2 s
    daemon.kill(getattr(signal, how))
    daemon.start()
    assert _heard_when_back(daemon) == [
        f"did_start {session_id}",
        f"did_invalidate {session_id} NONE",
    ]
    assert _heard_when_back(daemon) == []  # heard: not handed a second time
    daemon.kill(signal.SIGKILL)
    daemon.start()
    assert _heard_when_back(daemon) == []  # nor after one more restart


def test_an_ending_kept_in_the_store_reads_back_and_a_damaged_one_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from extended_runtime._core.events import SessionInvalidated, SessionStarted
    from extended_runtime._core.handover import Undelivered
    from extended_runtime._daemon import host

    at = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    started = SessionStarted(
        at=at, app_id="org.example.a", session_id="s1", state=SessionState.RUNNING,
        session_type=SessionType.SMART_ALARM, expiration_date=at + timedelta(minutes=30),
    )  # fmt: skip
    ended = SessionInvalidated(
        at=at + timedelta(minutes=5), app_id="org.example.a", session_id="s1",
        state=SessionState.INVALID,
        session_type=SessionType.SMART_ALARM, previous_state=SessionState.RUNNING,
        reason=InvalidationReason.NONE,
    )  # fmt: skip
    kept = Undelivered(
        "s1", SessionType.SMART_ALARM, at, at + timedelta(minutes=30), (started, ended)
    )

    stored = json.loads(json.dumps([host._encode_undelivered(kept), {"session_id": "s2"}]))
    read = host._read_undelivered("org.example.a", stored)
    assert read == (kept,)
    assert "an ending kept for org.example.a cannot be read" in caplog.text
    assert host._read_undelivered("org.example.a", "not a list") == ()
