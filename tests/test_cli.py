"""`xrs`: in-process with CliRunner, and `xrs run` end to end in real subprocesses.

In-process tests run `xrs run` itself on a real command (`true`, `sh -c 'exit 3'`, a busy
Python loop); the embedded host runs inside the test process. A test that needs a host in a
given state passes a host factory as click's `obj`, the seam `run_in_session` documents. The
end-to-end tests cover what only a separate process shows: signals sent to `xrs` from outside,
a real terminal's Ctrl-C, and a process tree stopped when the session ends first.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click
import psutil
import pytest
from click.testing import CliRunner, Result

from extended_runtime import ErrorCode, ExtendedRuntimeSessionError, SessionType
from extended_runtime._api.app import App
from extended_runtime._cli import run as run_module
from extended_runtime._cli.child import default_app_id
from extended_runtime._cli.main import CpuBudget, cli
from extended_runtime._cli.run import (
    EXIT_NOT_EXECUTABLE,
    EXIT_NOT_FOUND,
    EXIT_SESSION_REFUSED,
    _refusal,
    _stop_tree,
    session_policy,
)
from extended_runtime._core.conditions import Conditions
from extended_runtime._core.engine import Engine
from extended_runtime._core.enums import InvalidationReason
from extended_runtime._core.policy import Policy
from extended_runtime._hosts.embedded import EmbeddedHost

XRS = [sys.executable, "-m", "extended_runtime"]
BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


def _xrs(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XRS, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _invoke(*args: str, make_host: Callable[[Policy], EmbeddedHost] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj=make_host)


class Hosts:
    """A host factory for `xrs run`, keeping every host it made for the test to inspect."""

    def __init__(
        self, conditions: Conditions | None = None, cpu_window: float | None = None
    ) -> None:
        self.conditions = conditions
        self.cpu_window = cpu_window
        self.made: list[EmbeddedHost] = []

    def __call__(self, policy: Policy) -> EmbeddedHost:
        if self.cpu_window is not None:  # a short window, sampled often: a test-sized budget
            window = timedelta(seconds=self.cpu_window)
            policy = replace(policy, cpu_window=window, cpu_sample_interval=window / 10)
        host = EmbeddedHost(policy)
        if self.conditions is not None:
            host.engine.set_conditions(self.conditions, host.now)
        self.made.append(host)
        return host


def _events(stderr: str) -> list[str]:
    """The event lines of `xrs run`'s stderr, without their `xrs [HH:MM:SS] ` stamp."""
    return [line.split("] ", 1)[1] for line in stderr.splitlines() if line.startswith("xrs [")]


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def sentinel_sigterm() -> Iterator[Callable[[int, FrameType | None], None]]:
    """A harmless SIGTERM handler in place for the test, so a stray SIGTERM never kills pytest."""

    def sentinel(signum: int, frame: FrameType | None) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, sentinel)
    try:
        yield sentinel
    finally:
        signal.signal(signal.SIGTERM, previous)


class PopenCalls:
    """Wraps `subprocess.Popen` as `xrs run` sees it, recording the SIGTERM handler per call."""

    def __init__(self, before: Callable[[], None] = lambda: None) -> None:
        self.handlers: list[object] = []
        self._before = before
        self._real = subprocess.Popen

    def __call__(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        self.handlers.append(signal.getsignal(signal.SIGTERM))
        self._before()
        return self._real(*args, **kwargs)


# ---------------------------------------------------------------------- the group


def test_help_lists_run_as_a_command() -> None:
    result = _invoke("--help")
    assert result.exit_code == 0
    assert re.search(r"^  run\s{2,}Run COMMAND inside a session", result.output, re.MULTILINE)


def test_version() -> None:
    result = _invoke("--version")
    assert result.exit_code == 0
    assert result.output.startswith("xrs, version 0.1.0")


# ---------------------------------------------------------------------- usage errors


def test_run_needs_a_command() -> None:
    result = _invoke("run")
    assert result.exit_code == 2
    assert "Missing argument 'COMMAND...'" in result.output


def test_run_rejects_unknown_types() -> None:
    result = _invoke("run", "--type", "alarm", "--", "true")
    assert result.exit_code == 2
    assert "'alarm' is not one of" in result.output


def test_a_limit_longer_than_the_type_is_a_usage_error() -> None:
    result = _invoke("run", "--type", "self-care", "--limit", "601", "--", "true")
    assert result.exit_code == 2
    assert (
        "Invalid value for '--limit': 601 s is longer than the self-care limit of 600 s"
        in result.stderr
    )


@pytest.mark.parametrize("limit", ["0", "-1", "soon"])
def test_a_limit_must_be_a_positive_number(limit: str) -> None:
    result = _invoke("run", "--limit", limit, "--", "true")
    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.stderr


@pytest.mark.parametrize("app_id", ["has space", "", ".hidden", "a/b", "é.x", "x" * 256])
def test_a_bad_app_id_is_a_usage_error_not_a_traceback(app_id: str) -> None:
    result = _invoke("run", "--app-id", app_id, "--", "true")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "Invalid value for '--app-id'" in result.stderr
    assert "up to 255 letters, digits, '.', '-' or '_'" in result.stderr
    assert "Traceback" not in result.output


def test_an_app_id_of_255_characters_runs() -> None:
    app_id = "org.example." + "x" * 243
    result = _invoke("run", "--app-id", app_id, "--", "true")
    assert result.exit_code == 0
    assert f"for {app_id}," in _events(result.stderr)[0]


@pytest.mark.parametrize(
    ("text", "cores"),
    [("2", 2.0), ("0.25", 0.25), ("none", math.inf), ("NONE", math.inf), (" None ", math.inf)],
)
def test_cpu_budget_values_reach_the_policy(text: str, cores: float) -> None:
    hosts = Hosts()
    result = _invoke("run", "-q", "--cpu-budget", text, "--", "true", make_host=hosts)
    assert result.exit_code == 0
    policy = hosts.made[0].engine.policy
    assert (policy.cpu_budget_frontmost, policy.cpu_budget_background) == (cores, cores)


@pytest.mark.parametrize(
    ("session_type", "cores"), [("self-care", 1.0), ("mindfulness", 1.0), ("physical-therapy", 0.5)]
)
def test_the_default_cpu_budget_is_the_types(session_type: str, cores: float) -> None:
    hosts = Hosts()
    result = _invoke("run", "-q", "--type", session_type, "--", "true", make_host=hosts)
    assert result.exit_code == 0
    assert hosts.made[0].engine.policy.cpu_budget(SessionType(session_type)) == cores


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "-inf", "lots", "", "1e"])
def test_a_bad_cpu_budget_is_a_usage_error(text: str) -> None:
    result = _invoke("run", "--cpu-budget", text, "--", "true")
    assert result.exit_code == 2
    assert "Invalid value for '--cpu-budget'" in result.stderr
    assert "is not a positive number of cores; use 'none' for no budget" in result.stderr


def test_cpu_budget_accepts_numbers_already_converted() -> None:
    assert CpuBudget().convert(1.5, None, None) == 1.5
    with pytest.raises(click.BadParameter):
        CpuBudget().convert(0, None, None)


def test_run_help_states_the_cpu_budget() -> None:
    result = _invoke("run", "--help")
    assert result.exit_code == 0
    text = _one_line(result.output)
    policy = Policy()
    assert (
        f"Default: {policy.cpu_budget_frontmost:g} core for self-care and mindfulness, "
        f"{policy.cpu_budget_background:g} core for physical-therapy" in text
    )
    assert "COMMAND and every process it starts count together" in text
    assert f"averaged over the last {policy.cpu_window.total_seconds():g} s" in text
    assert "the session ends with EXCEEDED_RESOURCE_LIMITS and COMMAND is stopped" in text
    assert "--cpu-budget CORES" in text
    assert "--cpu-budget none" in text


# ---------------------------------------------------------------------- running, in process


def test_run_passes_the_exit_status_through_and_prints_events() -> None:
    result = _invoke("run", "--type", "mindfulness", "--", "sh", "-c", "exit 3")
    assert result.exit_code == 3
    events = _events(result.stderr)
    assert events[0].startswith("session started: mindfulness for xrs.run.sh, expires at ")
    assert events[1].startswith("keep-awake: ")
    assert events[-1] == "session ended: NONE"


def test_a_command_killed_by_a_signal_exits_128_plus_n() -> None:
    result = _invoke("run", "-q", "--", "sh", "-c", "kill -TERM $$")
    assert result.exit_code == 128 + signal.SIGTERM


def test_quiet_prints_nothing_when_all_goes_well() -> None:
    result = _invoke("run", "-q", "--", "true")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_an_unknown_command_exits_127_even_when_quiet() -> None:
    result = _invoke("run", "-q", "--", "no-such-command-xrs")
    assert result.exit_code == EXIT_NOT_FOUND
    assert result.stderr == "xrs run: command not found: no-such-command-xrs\n"


def test_an_unknown_command_never_starts_a_session() -> None:
    hosts = Hosts()
    result = _invoke("run", "--", "no-such-command-xrs", make_host=hosts)
    assert result.exit_code == EXIT_NOT_FOUND
    assert result.stderr == "xrs run: command not found: no-such-command-xrs\n"  # no events
    assert hosts.made == []  # not even a host, so nothing was held


def test_a_missing_path_and_a_directory_are_refused_before_a_session(tmp_path: Path) -> None:
    missing = _invoke("run", "--", str(tmp_path / "gone"))
    assert missing.exit_code == EXIT_NOT_FOUND
    assert missing.stderr == f"xrs run: command not found: {tmp_path / 'gone'}\n"
    directory = _invoke("run", "--", str(tmp_path))
    assert directory.exit_code == EXIT_NOT_EXECUTABLE
    assert directory.stderr == f"xrs run: command not executable: {tmp_path}\n"


def test_a_command_that_is_not_executable_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = _invoke("run", "-q", "--", str(script))
    assert result.exit_code == EXIT_NOT_EXECUTABLE
    assert result.stderr == f"xrs run: command not executable: {script}\n"


@pytest.mark.parametrize(
    ("conditions", "why"),
    [
        (Conditions(paused=True), "all sessions are paused; resume them, then run the command"),
        (Conditions(shutting_down=True), "the system is shutting down"),
        (Conditions(power_saver=True), "power-saver mode is on; turn it off to run sessions"),
        (
            Conditions(battery_percent=10, charging=False),
            "the battery is at 10% and not charging; plug it in",
        ),
    ],
)
def test_a_suppressed_session_is_refused_in_one_line(
    tmp_path: Path, conditions: Conditions, why: str
) -> None:
    marker = tmp_path / "ran"
    result = _invoke("run", "-q", "--", "touch", str(marker), make_host=Hosts(conditions))
    assert result.exit_code == EXIT_SESSION_REFUSED
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("xrs run: the session could not start: SUPPRESSED_BY_SYSTEM (")
    assert why in result.stderr
    assert result.stderr.endswith("); the command was not run\n")
    assert not marker.exists()


def test_a_refusal_is_reported_once_with_events_on() -> None:
    result = _invoke("run", "--", "true", make_host=Hosts(Conditions(paused=True)))
    assert result.exit_code == EXIT_SESSION_REFUSED
    assert _events(result.stderr) == []
    assert result.stderr.count("the session could not start") == 1


def test_a_denied_app_is_refused_with_what_to_do() -> None:
    def denied(policy: Policy) -> EmbeddedHost:
        host = EmbeddedHost(policy)
        host.engine.register_app("org.example.denied", SessionType.PHYSICAL_THERAPY)
        host.engine.set_approved("org.example.denied", False, host.now)
        return host

    result = _invoke("run", "--app-id", "org.example.denied", "--", "true", make_host=denied)
    assert result.exit_code == EXIT_SESSION_REFUSED
    assert result.stderr == (
        "xrs run: the session could not start: NOT_APPROVED_TO_START_SESSION (The app is not "
        "approved to start a session: it declares no background mode, or the user denied it; "
        "allow this app's sessions, or pass another --app-id); the command was not run\n"
    )


@pytest.mark.parametrize(
    ("reason", "code", "expected"),
    [
        (
            InvalidationReason.SESSION_IN_PROGRESS,
            None,
            "SESSION_IN_PROGRESS (org.example.a already has a session; wait for it to end, "
            "or pass another --app-id)",
        ),
        (
            InvalidationReason.ERROR,
            ErrorCode.UNSUPPORTED_SESSION_TYPE,
            "UNSUPPORTED_SESSION_TYPE (The app's session type does not support this; "
            "choose another --type)",
        ),
        (
            InvalidationReason.ERROR,
            ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE,
            "MUST_BE_ACTIVE_TO_START_OR_SCHEDULE (The app must be active and before "
            "applicationWillResignActive to start or schedule a WKExtendedRuntimeSession; "
            "run xrs from the foreground)",
        ),
        (
            InvalidationReason.ERROR,
            ErrorCode.UNKNOWN,
            "UNKNOWN (The session ended because of an unknown error)",
        ),
        (
            InvalidationReason.SUPPRESSED_BY_SYSTEM,
            None,
            "SUPPRESSED_BY_SYSTEM (sessions are paused or the system is shutting down or "
            "saving power)",
        ),
    ],
)
def test_every_refusal_has_a_message(
    reason: InvalidationReason, code: ErrorCode | None, expected: str
) -> None:
    """Refusals `xrs run` cannot provoke with a fresh app on a fresh host, reported alike."""
    error = None if code is None else ExtendedRuntimeSessionError(code)
    message = _refusal(reason, error, Engine(), "org.example.a")
    assert message == f"the session could not start: {expected}"


@pytest.mark.parametrize("program", ["café", "...", "/usr/bin/x y", "n" * 300, "-"])
def test_the_default_app_id_is_always_a_valid_one(program: str) -> None:
    app_id = default_app_id(program)
    assert App(app_id).app_id == app_id


def test_the_default_app_id_names_the_command() -> None:
    assert default_app_id("/usr/bin/make") == "xrs.run.make"


@pytest.mark.parametrize(("budget", "status"), [("0.05", 128 + signal.SIGTERM), ("none", 0)])
def test_the_cpu_budget_ends_a_busy_command_unless_lifted(budget: str, status: int) -> None:
    """A busy loop on a 1 s window: over a 0.05-core budget it is stopped and xrs says why."""
    hosts = Hosts(cpu_window=1.0)
    busy = BUSY.format(seconds=3)
    args = ("run", "-q", "--grace", "1", "--cpu-budget", budget, "--", sys.executable, "-c", busy)
    result = _invoke(*args, make_host=hosts)
    assert result.exit_code == status
    if budget == "none":
        assert result.stderr == ""
        return
    assert result.stderr == (
        "xrs run: the command's process tree used more than 0.05 core of CPU on average over "
        "1 s, so the session ended (EXCEEDED_RESOURCE_LIMITS) and the command is being "
        "stopped; for CPU-heavy work run with --cpu-budget none, or a higher budget such as "
        "--cpu-budget 0.2\n"
    )


def test_session_policy_applies_limit_and_budget() -> None:
    policy = session_policy(SessionType.SELF_CARE, 30, math.inf)
    assert policy.limit(SessionType.SELF_CARE) == timedelta(seconds=30)
    assert policy.limit(SessionType.MINDFULNESS) == Policy().limit(SessionType.MINDFULNESS)
    assert policy.cpu_budget(SessionType.SELF_CARE) == math.inf
    assert session_policy(SessionType.SELF_CARE) == Policy()


# ---------------------------------------------------------------------- signals, in process


def test_the_forwarder_is_in_place_before_the_command_starts(
    monkeypatch: pytest.MonkeyPatch, sentinel_sigterm: object
) -> None:
    """Popen sees `xrs`'s own SIGTERM handler; the previous one is back afterwards."""
    popen = PopenCalls()
    monkeypatch.setattr("extended_runtime._cli.child.subprocess.Popen", popen)
    result = _invoke("run", "-q", "--", "true")
    assert result.exit_code == 0
    assert len(popen.handlers) == 1
    handler = popen.handlers[0]
    assert handler is not sentinel_sigterm
    assert getattr(handler, "__name__", None) == "_caught"
    assert signal.getsignal(signal.SIGTERM) is sentinel_sigterm


def test_a_signal_while_popen_is_under_way_reaches_the_command(
    monkeypatch: pytest.MonkeyPatch, sentinel_sigterm: object
) -> None:
    """SIGTERM comes just before the child exists: it is forwarded once the child does."""
    popen = PopenCalls(before=lambda: os.kill(os.getpid(), signal.SIGTERM))
    monkeypatch.setattr("extended_runtime._cli.child.subprocess.Popen", popen)
    result = _invoke("run", "--", "sleep", "20")
    assert result.exit_code == 128 + signal.SIGTERM
    assert _events(result.stderr)[-1] == "session ended: NONE"


def test_a_signal_before_the_command_starts_means_it_never_runs(
    monkeypatch: pytest.MonkeyPatch, sentinel_sigterm: object
) -> None:
    popen = PopenCalls()
    monkeypatch.setattr("extended_runtime._cli.child.subprocess.Popen", popen)
    original = run_module._Watcher.did_start

    def did_start(watcher: run_module._Watcher, session: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the session has started, the command not yet
        original(watcher, session)

    monkeypatch.setattr(run_module._Watcher, "did_start", did_start)
    result = _invoke("run", "--", "true")
    assert result.exit_code == 128 + signal.SIGTERM
    assert popen.handlers == []
    events = _events(result.stderr)
    assert "SIGTERM received: the command was not run" in events
    assert events[-1] == "session ended: NONE"


# ---------------------------------------------------------------------- stopping the tree


def _tree_ignoring_sigterm() -> subprocess.Popen[bytes]:
    """`sh` with two `sleep`s, all ignoring SIGTERM (an ignored signal stays so across exec)."""
    child = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & wait"])
    parent = psutil.Process(child.pid)
    for _ in range(200):  # bounded wait for the tree to exist, not a timing assertion
        if len(parent.children()) == 2:
            return child
        time.sleep(0.02)
    child.kill()
    child.wait()
    raise AssertionError("the tree did not start")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_whole_tree_gets_one_grace_period() -> None:
    """Every member ignores SIGTERM: all are killed once one grace (3 s) has passed in total.

    The bound is loose on purpose: one grace plus polling takes about 3 s here; waiting for the
    child and then again for its descendants, one grace each, takes at least 6 s. Asserting
    under 2 x grace separates the two with a whole grace of margin for a slow machine.
    """
    grace = 3.0
    child = _tree_ignoring_sigterm()
    members = [child.pid, *(p.pid for p in psutil.Process(child.pid).children())]
    began = time.monotonic()
    _stop_tree(child, grace)
    took = time.monotonic() - began
    assert grace <= took < 2 * grace
    assert child.returncode == -signal.SIGKILL
    assert [pid for pid in members if _running(pid)] == []


def test_a_tree_that_obeys_sigterm_stops_at_once() -> None:
    """No member ignores SIGTERM: stopping takes far less than the grace (loose bound)."""
    child = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    began = time.monotonic()
    _stop_tree(child, 10.0)
    assert time.monotonic() - began < 5.0
    assert child.returncode == -signal.SIGTERM


# ---------------------------------------------------------------------- end to end


def _left_behind(token: str) -> list[psutil.Process]:
    """Running processes whose command line holds `token`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if token in (process.info["cmdline"] or []) and _running(process.pid):
            found.append(process)
    return found


@pytest.mark.parametrize("lines_first", [1, 2])
def test_an_early_sigterm_never_leaves_the_command_behind(lines_first: int) -> None:
    """SIGTERM as soon as xrs prints its first (or second) line, before or while it spawns."""
    for attempt in range(4):
        token = f"xrs-test-{os.getpid()}-{lines_first}-{attempt}"
        sleeper = [sys.executable, "-c", "import time; time.sleep(300)", token]
        with subprocess.Popen(
            [*XRS, "run", "--", *sleeper], stderr=subprocess.PIPE, text=True
        ) as process:
            assert process.stderr is not None
            for _ in range(lines_first):
                process.stderr.readline()
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=30)
            rest = process.stderr.read()
        assert status == 128 + signal.SIGTERM, rest
        assert _left_behind(token) == []


def test_sigterm_to_xrs_reaches_the_running_command() -> None:
    with subprocess.Popen(
        [*XRS, "run", "--", sys.executable, "-c", "import time; time.sleep(300)"],
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        try:
            first = process.stderr.readline()
            _wait_for_child(process.pid)
            os.kill(process.pid, signal.SIGTERM)
            assert process.wait(timeout=30) == 128 + signal.SIGTERM
        finally:  # a failed check leaves neither xrs nor its command behind
            _kill_tree(process.pid)
        assert "session started" in first  # the first line, before the keep-awake one
        assert "session ended: NONE" in process.stderr.read()


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        for process in [*parent.children(recursive=True), parent]:
            process.kill()
    except psutil.NoSuchProcess:
        pass


def test_a_command_outliving_its_session_is_stopped(tmp_path: Path) -> None:
    """The session (limit 2 s) ends first: the command and its child are terminated."""
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pids}; wait"
    result = _xrs("run", "--limit", "2", "--grace", "2", "--", "sh", "-c", script)
    assert result.returncode == 128 + signal.SIGTERM
    assert "session ended: EXPIRED" in result.stderr
    assert "stopping the command" in result.stderr
    assert not _running(int(pids.read_text()))


def test_a_command_ignoring_sigterm_is_killed_after_the_grace() -> None:
    """`trap '' TERM` is inherited by `sleep` through exec: only SIGKILL ends it."""
    script = "trap '' TERM; exec sleep 300"
    result = _xrs("run", "--limit", "1", "--grace", "0.5", "--", "sh", "-c", script)
    assert result.returncode == 128 + signal.SIGKILL
    assert "stopping the command (SIGTERM, then SIGKILL after 0.5 s)" in result.stderr


def test_the_output_of_the_command_is_passed_through_untouched() -> None:
    result = _xrs("run", "-q", "--", sys.executable, "-c", "print('hello')")
    assert result.returncode == 0
    assert result.stdout == "hello\n"
    assert result.stderr == ""


def _wait_for_child(pid: int) -> None:
    """Wait until xrs has started its child (bounded; not a timing assertion)."""
    parent = psutil.Process(pid)
    for _ in range(300):
        if parent.children():
            return
        time.sleep(0.05)
    raise AssertionError("xrs did not start the command")


_TERMINAL_DRIVER = """
import os, pty, sys, time
counter, script = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "extended_runtime", "run", "-q", "--",
                              sys.executable, "-c", script])
seen = b""
while b"ready" not in seen:
    seen += os.read(fd, 1024)
os.write(fd, b"\\x03")  # Ctrl-C, typed on the terminal
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_ctrl_c_in_a_terminal_reaches_the_command_once(tmp_path: Path) -> None:
    """A real pseudo-terminal: its Ctrl-C reaches the command once, not again through xrs."""
    counter = tmp_path / "interrupts"
    script = (
        "import signal, sys, time\n"
        "count = 0\n"
        "def interrupted(signum, frame):\n"
        "    global count\n"
        "    count += 1\n"
        f"    open({str(counter)!r}, 'w').write(str(count))\n"
        "signal.signal(signal.SIGINT, interrupted)\n"
        "print('ready', flush=True)\n"
        "time.sleep(1.5)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", _TERMINAL_DRIVER, str(counter), script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "0", result.stderr
    assert counter.read_text() == "1"


def test_doctor_shows_every_backend_and_passes_with_a_keep_awake() -> None:
    from . import services

    services.require("logind")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["capability", "backend", "usable", "chosen", "why"]
    assert lines[1].split()[:4] == ["keep-awake", "logind", "yes", "*"]


def test_doctor_says_what_the_timers_sleep_on(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    timers = [line for line in result.output.splitlines() if line.startswith("timers")]
    assert timers and timers[0].split()[1:4] == ["timerfd", "yes", "*"]
    assert "never polls" in timers[0]
    # where no timerfd can be made, the fallback and the drift it allows are named
    monkeypatch.setattr("extended_runtime._hosts.waiting.TimerfdWaiter", _NoTimerfd)
    result = CliRunner().invoke(cli, ["doctor"])
    timers = [line for line in result.output.splitlines() if line.startswith("timers")]
    assert timers[0].split()[1:4] == ["polling", "yes", "*"]
    assert "up to 5 s late after a suspend" in timers[0]


class _NoTimerfd:
    def __init__(self, lock: object) -> None:
        raise OSError(24, "Too many open files")


def test_doctor_fails_and_says_why_without_a_keep_awake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/system_bus_socket")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    rows = {
        line.split()[1]: line
        for line in result.output.splitlines()
        if line.startswith("keep-awake")
    }
    assert rows["logind"].split()[2] == "no"
    assert "cannot reach the system bus" in rows["logind"]
    assert rows["log-keep-awake"].split()[2:4] == ["no", "*"]  # the stand-in, chosen
    assert result.output.splitlines()[-1].startswith("no keep-awake backend works here")


def test_a_backend_can_be_chosen_by_name() -> None:
    """keep-awake=log-keep-awake: a session that does not keep the machine awake, on purpose."""
    result = CliRunner().invoke(
        cli, ["run", "--backend", "keep-awake=log-keep-awake", "--", sys.executable, "-c", "pass"]
    )
    assert result.exit_code == 0, result.output
    assert "keep-awake: logs only: does not keep the machine awake" in result.output


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sound=x", "'sound=x' is not CAPABILITY=NAME with CAPABILITY one of keep-awake,"),
        ("keep-awake=nope", "no keep-awake backend is called 'nope': choose from logind,"),
        ("keep-awake", "'keep-awake' is not CAPABILITY=NAME"),
    ],
)
def test_a_backend_that_does_not_exist_is_a_usage_error(value: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["run", "--backend", value, "--", "true"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_backend_that_cannot_work_here_is_refused_before_the_command_runs(
    tmp_path: Path,
) -> None:
    """No desktop portal runs on this machine's session bus (or there is no session bus)."""
    marker = tmp_path / "ran"
    result = CliRunner().invoke(
        cli, ["run", "--backend", "keep-awake=desktop-portal", "--", "touch", str(marker)]
    )
    assert result.exit_code == 2
    assert "the keep-awake backend desktop-portal cannot work here" in result.output
    assert "the command was not run" in result.output
    assert not marker.exists()
