"""The main thread takes the app's signals: every thread the package starts blocks them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from extended_runtime._backends.threads import signals_held, start_thread

#: A program with an embedded host that has started its threads (session, keep-awake, D-Bus
#: sources where the services run), then lists each thread's blocked signals from /proc.
PROGRAM = """
import os, sys, time
from extended_runtime import App, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate

class Quiet(ExtendedRuntimeSessionDelegate):
    pass

session = ExtendedRuntimeSession(App("org.example.masks", "mindfulness"), Quiet())
with session.running():
    time.sleep(0.5)
    print(os.getpid(), flush=True)
    for task in sorted(os.listdir("/proc/self/task"), key=int):
        with open(f"/proc/self/task/{task}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        print(task, fields["Name"].strip(), fields["SigBlk"].strip(), flush=True)
"""


def _blocked(mask_hex: str, signum: int) -> bool:
    return bool(int(mask_hex, 16) >> (signum - 1) & 1)


def _own_mask() -> str:
    status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    return next(line.split(":", 1)[1].strip() for line in status.splitlines() if "SigBlk" in line)


def test_every_thread_of_a_host_blocks_the_signals_the_main_thread_takes() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pid, *lines = done.stdout.splitlines()
    rows = [line.split() for line in lines]
    main, *others = rows
    assert main[0] == pid  # the main thread's task id is the process id
    assert not _blocked(main[2], signal.SIGINT)
    assert len(others) >= 2, rows  # the host runs threads beside the app's
    for task, name, mask in others:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            assert _blocked(mask, signum), (task, name, signum)
        assert not _blocked(mask, signal.SIGSEGV), (task, name)  # a fault stays the thread's


def test_a_started_thread_blocks_signals_and_the_starter_keeps_its_mask() -> None:
    before = _own_mask()
    seen: list[str] = []
    thread = start_thread(lambda: seen.append(_own_mask()), name="xrs-test")
    thread.join(timeout=10)
    assert seen and _blocked(seen[0], signal.SIGTERM) and _blocked(seen[0], signal.SIGINT)
    assert _own_mask() == before


def test_a_signal_that_comes_while_held_is_delivered_after() -> None:
    heard: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: heard.append(signum))
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGUSR1)
            assert heard == []  # blocked: it waits
        assert heard == [signal.SIGUSR1]  # delivered as soon as the mask is restored
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_ctrl_c_during_a_host_command_lands_after_the_command() -> None:
    """The main thread (pytest's) gets SIGINT while the host runs a command: the command is
    applied whole, and KeyboardInterrupt is raised as it returns."""
    from extended_runtime import EmbeddedHost
    from extended_runtime._backends.null import LoggingAlerts, LoggingKeepAwake, LoggingWakeAlarm
    from extended_runtime._backends.select import Backends

    backends = Backends(LoggingAlerts(), LoggingKeepAwake(), LoggingWakeAlarm(), None, None, None)
    with EmbeddedHost(backends=backends) as host:
        steps: list[str] = []

        def command() -> list[object]:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, halfway through
            steps.append("after the signal")
            return []

        # Ctrl-C raises KeyboardInterrupt here even if the test run was started with SIGINT
        # ignored (as a shell's background job is)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                host._command(command)  # type: ignore[arg-type]
        finally:
            signal.signal(signal.SIGINT, previous)
        assert steps == ["after the signal"]


#: An app whose Ctrl-C comes twice (`timeout -s INT` signals the app and its group): the second
#: lands while the session is being ended, and the end is still heard.
TWICE = """
import os, signal, time
from extended_runtime import App, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate

class Say(ExtendedRuntimeSessionDelegate):
    def did_invalidate(self, session, reason, error):
        print("did_invalidate", reason.name, flush=True)

signal.signal(signal.SIGINT, signal.default_int_handler)
session = ExtendedRuntimeSession(App("org.example.twice", "self-care"), Say())
with session.running():
    print("ready", flush=True)
    for _ in range(300):
        time.sleep(0.1)
"""


def test_two_ctrl_c_in_a_row_still_end_the_session_and_are_heard() -> None:
    done = subprocess.run(
        ["timeout", "-s", "INT", "3", sys.executable, "-c", TWICE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.splitlines() == ["ready", "did_invalidate NONE"], done.stderr
    assert "KeyboardInterrupt" in done.stderr
