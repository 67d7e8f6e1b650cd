"""Delivery and exit on the embedded host, in real processes.

DESIGN.md's row "The process of an embedded host exits": before the interpreter exits (bounded to
2 s), running sessions end as the "App exits" row says for a host that cannot relaunch
(frontmost: RESIGNED_FRONTMOST; others: ERROR, UNKNOWN "the process exited"), scheduled ones end
with ERROR, UNKNOWN and a WARNING naming the instant that will not ring, and every pending
delegate call is delivered. Each script here is run as a new user would write it, in its own
interpreter, and what its delegate printed is read back.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from extended_runtime import (
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    InvalidationReason,
    SessionState,
    SessionType,
)

PRELUDE = """
import asyncio, sys, time
from datetime import datetime, timedelta, timezone
from extended_runtime import (
    App, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate, SessionType,
)

class Say(ExtendedRuntimeSessionDelegate):
    def did_start(self, session):
        print("did_start", flush=True)

    def did_invalidate(self, session, reason, error):
        print("did_invalidate", reason.name, error.code.name if error else "-", flush=True)
"""


def _run(body: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("attempt", range(5))
def test_a_script_whose_last_line_is_invalidate_hears_did_invalidate(attempt: int) -> None:
    result = _run(
        """
        session = ExtendedRuntimeSession(App("org.example.last", "mindfulness"), Say())
        session.start()
        session.invalidate()
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["did_start", "did_invalidate NONE -"]


@pytest.mark.parametrize(
    ("mode", "ending"),
    [
        ("mindfulness", "did_invalidate RESIGNED_FRONTMOST -"),
        ("self-care", "did_invalidate RESIGNED_FRONTMOST -"),
        ("physical-therapy", "did_invalidate ERROR UNKNOWN"),
    ],
)
def test_a_session_running_at_exit_ends_as_the_app_exits_row_says(mode: str, ending: str) -> None:
    result = _run(
        f"""
        ExtendedRuntimeSession(App("org.example.running", "{mode}"), Say()).start()
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["did_start", ending]


def test_a_physical_therapy_session_at_exit_says_the_process_exited() -> None:
    result = _run(
        """
        ExtendedRuntimeSession(App("org.example.pt", "physical-therapy"), Say()).start()
        """
    )
    assert "ended: ERROR: the process exited (WKExtendedRuntimeSessionErrorDomain code 1)" in (
        result.stderr
    )


def test_a_scheduled_alarm_at_exit_warns_of_the_instant_that_will_not_ring() -> None:
    result = _run(
        """
        when = datetime(2030, 1, 1, 7, 30, tzinfo=timezone.utc)
        alarm = ExtendedRuntimeSession(App("org.example.sleep", "alarm"), Say())
        alarm.start_at(datetime.now(timezone.utc) + timedelta(hours=7))
        print(alarm.state.name, flush=True)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["SCHEDULED", "did_invalidate ERROR UNKNOWN"]
    warning = [line for line in result.stderr.splitlines() if "will not ring" in line]
    assert len(warning) == 1
    assert (
        "of org.example.sleep ended: ERROR: the process exited before the start date "
        in (warning[0])
    )


def test_an_async_script_hears_its_calls_even_after_its_loop_closed() -> None:
    result = _run(
        """
        async def main():
            session = ExtendedRuntimeSession(App("org.example.async", "physical-therapy"), Say())
            session.start()
            await asyncio.sleep(0.05)
            return session

        session = asyncio.run(main())
        print("loop closed", session.state.name, flush=True)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "did_start",
        "loop closed RUNNING",
        "did_invalidate ERROR UNKNOWN",
    ]


def test_the_readme_helper_can_run_twice_in_one_process() -> None:
    """A second `App` with the same id and declaration is the same app."""
    result = _run(
        """
        async def meditate(seconds):
            app = App("org.example.breathe", SessionType.MINDFULNESS)
            session = ExtendedRuntimeSession(app=app, delegate=Say())
            async with session.running():
                await asyncio.sleep(seconds)
            await session.wait_invalidated()

        asyncio.run(meditate(0.01))
        asyncio.run(meditate(0.01))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["did_start", "did_invalidate NONE -"] * 2


def test_a_delegate_hanging_at_exit_does_not_keep_the_process_alive() -> None:
    """Exit waits for delivery at most about 2 s; the bound here is loose on purpose."""
    started = time.monotonic()
    result = _run(
        """
        class Stuck(Say):
            def did_invalidate(self, session, reason, error):
                print("stuck", flush=True)
                time.sleep(60)

        ExtendedRuntimeSession(App("org.example.stuck", "physical-therapy"), Stuck()).start()
        """,
        timeout=60,
    )
    assert time.monotonic() - started < 20
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["did_start", "stuck"]


def test_ctrl_c_inside_with_running_ends_the_session_and_is_heard(tmp_path: Path) -> None:
    script = tmp_path / "breathe.py"
    script.write_text(
        PRELUDE
        + textwrap.dedent(
            """
            import signal
            signal.signal(signal.SIGINT, signal.default_int_handler)  # see below
            session = ExtendedRuntimeSession(App("org.example.ctrl-c", "mindfulness"), Say())
            with session.running():
                print("ready", flush=True)
                for _ in range(600):  # short sleeps, as an app's loop does (see below)
                    time.sleep(0.1)
            """
        ),
        encoding="utf-8",
    )
    # The program takes Ctrl-C as a terminal's foreground job does: a test run started as a
    # shell's background job has SIGINT ignored, its children inherit that, and Python then
    # leaves Ctrl-C ignored.
    # One long `time.sleep` would make this test flaky through CPython, not the library: a
    # signal that arrives while the main thread waits for the GIL just before a blocking call is
    # handled only when that call returns (the pending signal is checked after a call, not
    # before). A loop checks at every turn, so the Ctrl-C lands within 0.1 s.
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        before: list[str] = []
        while not before or before[-1] != "ready":
            line = process.stdout.readline()
            if not line:  # the program ended before it was ready: say how
                process.kill()
                _, err = process.communicate(timeout=30)
                pytest.fail(f"the program ended early; printed {before}; stderr:\n{err}")
            before.append(line.strip())
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    assert [*before, *out.splitlines()] in (
        ["ready", "did_start", "did_invalidate NONE -"],
        ["did_start", "ready", "did_invalidate NONE -"],  # did_start comes from another thread
    )


class Recorder(ExtendedRuntimeSessionDelegate):
    def __init__(self) -> None:
        self.calls: list[tuple[str, InvalidationReason | None]] = []
        self.thread: str | None = None

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.calls.append(("did_start", None))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self.calls.append(("did_invalidate", reason))
        self.thread = threading.current_thread().name


def test_close_ends_running_sessions_with_their_calls_delivered() -> None:
    host = EmbeddedHost()
    recorders = [Recorder(), Recorder()]
    frontmost = ExtendedRuntimeSession(host.app("org.example.m", SessionType.MINDFULNESS))
    background = ExtendedRuntimeSession(host.app("org.example.pt", SessionType.PHYSICAL_THERAPY))
    for session, recorder in zip((frontmost, background), recorders, strict=True):
        session.delegate = recorder
        session.start()
    host.close()
    assert recorders[0].calls == [
        ("did_start", None),
        ("did_invalidate", InvalidationReason.RESIGNED_FRONTMOST),
    ]
    assert recorders[1].calls == [("did_start", None), ("did_invalidate", InvalidationReason.ERROR)]
    assert background.error is not None
    assert background.error.message == "the host was closed"
    assert frontmost.state is SessionState.INVALID
    assert not host.engine.keep_awake_held


def test_a_closed_host_refuses_new_sessions_and_says_why() -> None:
    with EmbeddedHost() as host:
        app = host.app("org.example.late", SessionType.MINDFULNESS)
    with pytest.raises(RuntimeError, match="this EmbeddedHost is closed: its sessions have ended"):
        ExtendedRuntimeSession(app).start()


class _NoNewThreads:
    """Python 3.12+ at interpreter shutdown: `Thread.start` raises (simulated here by patching,
    since this suite runs on 3.11 too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def __enter__(self) -> None:
        def refuse(thread: threading.Thread) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

        self._monkeypatch.setattr(threading.Thread, "start", refuse)

    def __exit__(self, *exc: object) -> None:
        self._monkeypatch.undo()


def test_closing_when_no_thread_can_start_still_delivers_and_dismisses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The alert channel's first job (a dismiss) comes at close, when no thread may start."""
    from extended_runtime import Backends, HapticType
    from extended_runtime.abc import AlertBackend

    class Alerts(AlertBackend):
        name = "recording-alerts"
        dismissed: list[str] = []  # noqa: RUF012 (one per test)

        def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
            pass

        def dismiss(self, app_id: str, session_id: str) -> None:
            self.dismissed.append(session_id)

    host = EmbeddedHost(backends=Backends(alerts=Alerts()))
    recorder = Recorder()
    alarm = ExtendedRuntimeSession(host.app("org.example.sleep", SessionType.SMART_ALARM))
    alarm.delegate = recorder
    alarm.start_at(host.now)
    assert host.settle()
    with _NoNewThreads(monkeypatch):
        host.close()
    assert recorder.calls == [("did_start", None), ("did_invalidate", InvalidationReason.ERROR)]
    assert Alerts.dismissed == [alarm.session_id]


def test_delivery_without_a_thread_delivers_in_the_draining_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from extended_runtime._hosts.delivery import Delivery

    delivery = Delivery()
    seen: list[str] = []
    with _NoNewThreads(monkeypatch):
        for name in ("did_start", "did_invalidate"):
            delivery.post(lambda name=name: seen.append(name), None)  # type: ignore[misc]
        assert seen == []
        assert delivery.drain(5)
    assert seen == ["did_start", "did_invalidate"]
