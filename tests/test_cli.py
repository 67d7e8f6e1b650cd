"""`xrs`: in-process with CliRunner, and `xrs run` end to end in real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from click.testing import CliRunner

from extended_runtime._cli.main import EXIT_NOT_FOUND, cli

XRS = [sys.executable, "-m", "extended_runtime"]


def _xrs(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XRS, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_help_lists_run() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("xrs, version 0.1.0")


def test_run_needs_a_command() -> None:
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 2
    assert "Missing argument 'COMMAND...'" in result.output


def test_run_refuses_a_limit_longer_than_the_type() -> None:
    result = _xrs("run", "--type", "self-care", "--limit", "601", "--", "true")
    assert result.returncode == 2
    assert "--limit 601 is longer than the self-care limit of 600 s" in result.stderr


def test_run_rejects_unknown_types() -> None:
    result = CliRunner().invoke(cli, ["run", "--type", "alarm", "--", "true"])
    assert result.exit_code == 2
    assert "'alarm' is not one of" in result.output


def test_run_passes_the_exit_code_through_and_prints_events() -> None:
    result = _xrs("run", "--type", "mindfulness", "--", sys.executable, "-c", "exit(7)")
    assert result.returncode == 7
    lines = [line.split("] ", 1)[1] for line in result.stderr.splitlines()]
    assert lines[0].startswith("session started: mindfulness for xrs.run.python")
    assert lines[-1] == "session ended: NONE"


def test_run_passes_the_commands_output_through_untouched() -> None:
    result = _xrs("run", "-q", "--", sys.executable, "-c", "print('hello')")
    assert result.returncode == 0
    assert result.stdout == "hello\n"
    assert result.stderr == ""


def test_a_command_outliving_its_session_is_stopped(tmp_path: Path) -> None:
    """The session (limit 2 s) ends first: the command and its child are terminated."""
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pids}; wait"
    result = _xrs("run", "--limit", "2", "--grace", "2", "--", "sh", "-c", script)
    assert result.returncode == 128 + signal.SIGTERM
    assert "session ended: EXPIRED" in result.stderr
    assert "stopping the command" in result.stderr
    grandchild = int(pids.read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"


def test_a_command_ignoring_sigterm_is_killed_after_the_grace() -> None:
    """`trap '' TERM` is inherited by `sleep` through exec: only SIGKILL ends it."""
    script = "trap '' TERM; exec sleep 300"
    result = _xrs("run", "--limit", "1", "--grace", "0.5", "--", "sh", "-c", script)
    assert result.returncode == 128 + signal.SIGKILL
    assert "stopping the command (SIGTERM, then SIGKILL after 0.5 s)" in result.stderr


def test_sigterm_to_xrs_reaches_the_command() -> None:
    with subprocess.Popen(
        [*XRS, "run", "--", sys.executable, "-c", "import time; time.sleep(300)"],
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert "session started" in first
        _wait_for_child(process.pid)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
        assert "session ended: NONE" in process.stderr.read()


def test_unknown_command_exits_127() -> None:
    result = _xrs("run", "--", "no-such-command-xrs")
    assert result.returncode == EXIT_NOT_FOUND
    assert "command not found: no-such-command-xrs" in result.stderr


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
