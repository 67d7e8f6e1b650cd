"""Terminal apps: their state follows the controlling terminal, and Ctrl-Z ends a frontmost
session before the process stops.

Real pseudo-terminals, real job control, real signals. Each end-to-end test runs a small
job-control shell (`SHELL` below, doing what bash does) as the session leader of a new pty; it
runs the app as a job in a process group of its own, in the foreground, reports when the job
stops or exits, and obeys `fg` and `bg` typed on the terminal. The test types on the pty's
master side (`\\x1a` is Ctrl-Z) and reads what the shell and the app print. The job's process
group is not orphaned (its parent, the shell, is in the same session), so SIGTSTP stops it as it
would under a real shell. Every wait is bounded and waits for a line, never for time.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from extended_runtime import (
    ApplicationState,
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    InvalidationReason,
    SessionType,
)
from extended_runtime._backends.linux.terminal import (
    TerminalForeground,
    descends_from,
    foreground_state,
)
from extended_runtime._backends.select import terminal_source

A, B = ApplicationState.ACTIVE, ApplicationState.BACKGROUND

#: A job-control shell: runs its arguments (a Python command line) as a foreground job, says
#: when the job stops or exits, and takes `fg` / `bg` from the terminal. `fg` of a running job
#: only hands it the terminal (no signal); `fg` and `bg` of a stopped job send SIGCONT to its
#: group.
SHELL = r"""
import fcntl, os, signal, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
JOB_CONTROL = (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP, signal.SIGINT)
for signum in JOB_CONTROL:
    signal.signal(signum, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpid())
    for signum in JOB_CONTROL:
        signal.signal(signum, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
for call in (lambda: os.setpgid(pid, pid), lambda: os.tcsetpgrp(0, pid)):
    try:
        call()
    except OSError:
        pass  # the job did it first
foreground, stopped = True, False
while True:
    if foreground:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            print(f"shell: exited {os.waitstatus_to_exitcode(status)}", flush=True)
            break
        os.tcsetpgrp(0, os.getpgrp())
        foreground, stopped = False, True
        print("shell: stopped", flush=True)
    command = sys.stdin.readline().strip()
    if command == "fg":
        os.tcsetpgrp(0, pid)
        foreground = True
    if stopped:
        os.killpg(pid, signal.SIGCONT)
        stopped = False
    print(f"shell: {command} done", flush=True)
"""

#: An app that follows its terminal (the opt-in call) and runs a session of the type given as
#: its first argument. Lines typed to it: `state` prints its state; `state ACTIVE` waits
#: (bounded) until the app is ACTIVE, then prints. It ignores SIGTTIN, so in the background it
#: keeps running (its reads of the terminal fail with EIO and are tried again) instead of
#: stopping.
APP = r"""
import os, signal, sys, threading
from extended_runtime import (
    App, ApplicationState, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate,
    follow_terminal,
)

class Delegate(ExtendedRuntimeSessionDelegate):
    def did_start(self, session):
        print("app: started", flush=True)

    def did_invalidate(self, session, reason, error):
        print(f"app: ended {reason.name}", flush=True)

app = App("org.example.terminal", sys.argv[1])
follower = follow_terminal(app)
print(f"app: following={follower.following} {app.state.name}", flush=True)
session = ExtendedRuntimeSession(app=app, delegate=Delegate())
session.start()
print("app: ready", flush=True)
signal.signal(signal.SIGTTIN, signal.SIG_IGN)

def read_line():
    while True:
        try:
            return os.read(0, 1024).decode()
        except OSError:  # EIO: read from the background
            threading.Event().wait(0.01)

while line := read_line():
    words = line.split()
    for _ in range(500):
        if len(words) < 2 or app.state.name == words[1]:
            break
        threading.Event().wait(0.01)
    print(f"app: state {app.state.name} {session.state.name}", flush=True)
"""


class Terminal:
    """A new pseudo-terminal with `SHELL` running a job on it; the test types and reads."""

    def __init__(self, *job: str) -> None:
        self.master, slave = os.openpty()
        attributes = termios.tcgetattr(slave)
        attributes[3] &= ~termios.ECHO  # what the test types is not read back as output
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        self.process = subprocess.Popen(
            [sys.executable, "-c", SHELL, *job],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.output = ""
        self._read = 0  # how much of `output` the test has looked at

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, marker: str, timeout: float = 20) -> str:
        """Read until `marker` appears; return the output up to and including it."""
        while (found := self.output.find(marker, self._read)) < 0:
            if not select.select([self.master], [], [], timeout)[0]:
                raise AssertionError(f"no {marker!r} within {timeout} s in:\n{self.output}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # every process of the terminal is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"the terminal closed before {marker!r}:\n{self.output}")
            self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        seen = self.output[: found + len(marker)]
        self._read = found + len(marker)
        return seen

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
        self.process.wait(10)
        os.close(self.master)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for terminal in made:
        terminal.close()


def _run(terminals: list[Terminal], *job: str) -> Terminal:
    terminal = Terminal(*job)
    terminals.append(terminal)
    return terminal


def _app(
    terminals: list[Terminal], session_type: str, script: str = APP, ready: str = "app: ready"
) -> Terminal:
    terminal = _run(terminals, "-c", script, session_type)
    terminal.expect(ready)
    return terminal


def _xrs(terminals: list[Terminal], session_type: str) -> Terminal:
    command = "import sys; print('command: ready', flush=True); sys.stdin.readline()"
    terminal = _run(
        terminals,
        *("-m", "extended_runtime", "run", "--type", session_type),
        *("--", sys.executable, "-c", command),
    )
    terminal.expect("command: ready")
    return terminal


# ---------------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("foreground", "stopping", "descendant", "state"),
    [
        (100, False, False, A),  # our group has the terminal
        (200, False, False, B),  # another job has it (the shell, after Ctrl-Z or bg)
        (200, False, True, A),  # a group our own process started has it (a shell we ran)
        (100, True, False, B),  # Ctrl-Z came: stopping, though still in front
        (None, False, False, B),  # the terminal hung up
    ],
)
def test_the_foreground_group_decides_the_state(
    foreground: int | None, stopping: bool, descendant: bool, state: ApplicationState
) -> None:
    asked: list[int] = []

    def ours(group: int) -> bool:
        asked.append(group)
        return descendant

    assert foreground_state(foreground, 100, stopping=stopping, ours=ours) is state
    assert set(asked) <= ({200} if foreground == 200 and not stopping else set())


def test_descent_is_read_from_proc(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        assert descends_from(child.pid, os.getpid())
        assert descends_from(os.getpid(), os.getpid())
        assert not descends_from(os.getppid(), os.getpid())
    finally:
        child.communicate(b"")
    assert not descends_from(child.pid, os.getpid())  # gone
    # a name with a space and a parenthesis does not confuse the parser
    for pid, ppid in ((30, 20), (20, 10)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (a) b) S {ppid} 1 1 0\n")
    assert descends_from(30, 10, proc=str(tmp_path))
    assert not descends_from(30, 11, proc=str(tmp_path))


# ---------------------------------------------------------------------- without a terminal


def test_without_a_terminal_the_source_is_not_usable_and_says_why() -> None:
    """`start_new_session`: the child has no controlling terminal, wherever pytest runs."""
    code = (
        "from extended_runtime import App, follow_terminal\n"
        "from extended_runtime._backends.select import terminal_source\n"
        "probe = terminal_source().probe()\n"
        "print(probe.available, probe.detail)\n"
        "app = App('org.example.batch', 'mindfulness')\n"
        "follower = follow_terminal(app)\n"
        "print(follower.following, app.state.name, follower.detail == probe.detail)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    probe, follower = result.stdout.splitlines()
    assert probe.startswith("False no controlling terminal (/dev/tty: No such device")
    assert probe.endswith("the app's state follows no terminal")
    assert follower == "False ACTIVE True"


def test_a_file_that_is_no_terminal_is_not_usable() -> None:
    probe = TerminalForeground(tty="/dev/null").probe()
    assert not probe.available
    assert probe.detail.startswith("no controlling terminal (/dev/null: Inappropriate ioctl")


def test_the_terminal_source_is_chosen_for_linux_only() -> None:
    assert isinstance(terminal_source("linux"), TerminalForeground)
    assert terminal_source("darwin") is None


def test_the_last_watcher_gone_gives_sigtstp_and_the_wakeup_fd_back() -> None:
    """A pty that is not this process's controlling terminal: the foreground cannot be read
    (BACKGROUND), but the source takes SIGTSTP and the wakeup fd while watched, and gives both
    back, and ends its threads, when the last watcher goes."""
    master, slave = os.openpty()
    source = TerminalForeground(tty=os.ttyname(slave))
    heard: list[ApplicationState] = []
    before = signal.getsignal(signal.SIGTSTP)
    try:
        source.watch("org.example.a", heard.append)
        source.watch("org.example.b", heard.append)
        assert heard == [B, B]
        assert source.handles_ctrl_z
        assert signal.getsignal(signal.SIGTSTP) not in (before, signal.SIG_DFL)
        source.unwatch(heard.append)
    finally:
        os.close(slave)
        os.close(master)
    assert not source.handles_ctrl_z
    assert signal.getsignal(signal.SIGTSTP) == before
    assert signal.set_wakeup_fd(-1) == -1  # none was set before, and none is left
    for thread in threading.enumerate():
        if thread.name.startswith("xrs-terminal"):
            thread.join(5)
            assert not thread.is_alive()


def test_from_another_thread_only_polling_follows() -> None:
    master, slave = os.openpty()
    source = TerminalForeground(tty=os.ttyname(slave))
    heard: list[ApplicationState] = []
    watching = threading.Thread(target=source.watch, args=("org.example.c", heard.append))
    try:
        watching.start()
        watching.join(10)
        assert heard == [B]
        assert not source.handles_ctrl_z
        assert signal.getsignal(signal.SIGTSTP) is signal.SIG_DFL
    finally:
        source.unwatch(heard.append)
        os.close(slave)
        os.close(master)


# ---------------------------------------------------------------------- Ctrl-Z


def test_ctrl_z_ends_a_mindfulness_session_before_the_app_stops(
    terminals: list[Terminal],
) -> None:
    terminal = _app(terminals, "mindfulness")
    assert "app: following=True ACTIVE" in terminal.output
    terminal.type("\x1a")
    before_stop = terminal.expect("shell: stopped")
    assert "app: ended RESIGNED_FRONTMOST" in before_stop
    terminal.type("fg\n")
    terminal.expect("shell: fg done")
    terminal.type("state ACTIVE\n")  # `fg` makes it ACTIVE again; the session stays ended
    terminal.expect("app: state ACTIVE INVALID")


def test_an_asyncio_app_hears_did_invalidate_on_its_loop_before_it_stops(
    terminals: list[Terminal],
) -> None:
    script = r"""
import asyncio, sys, threading
from extended_runtime import App, ExtendedRuntimeSession, ExtendedRuntimeSessionDelegate
from extended_runtime import follow_terminal

class Delegate(ExtendedRuntimeSessionDelegate):
    def did_invalidate(self, session, reason, error):
        where = threading.current_thread().name
        print(f"app: ended {reason.name} in {where}", flush=True)

async def main():
    app = App("org.example.breathe", sys.argv[1])
    follow_terminal(app)
    session = ExtendedRuntimeSession(app=app, delegate=Delegate())
    session.start()
    print("app: ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)

asyncio.run(main())
"""
    terminal = _app(terminals, "mindfulness", script)
    terminal.type("\x1a")
    assert "app: ended RESIGNED_FRONTMOST in MainThread" in terminal.expect("shell: stopped")
    terminal.type("fg\n")
    terminal.type("bye\n")
    terminal.expect("shell: exited 0")


def test_a_physical_therapy_session_survives_ctrl_z_bg_and_fg(terminals: list[Terminal]) -> None:
    """`bg` continues the job in the background (SIGCONT); `fg` of the running job then sends
    no signal at all: only polling sees the app come back to the front. The session runs on."""
    terminal = _app(terminals, "physical-therapy")
    terminal.type("\x1a")
    terminal.expect("shell: stopped")
    terminal.type("bg\n")
    terminal.expect("shell: bg done")
    terminal.type("fg\n")
    terminal.expect("shell: fg done")
    terminal.type("state ACTIVE\n")
    terminal.expect("app: state ACTIVE RUNNING")
    assert "app: ended" not in terminal.output


def test_ctrl_z_while_the_main_thread_holds_the_host_cannot_deadlock(
    terminals: list[Terminal],
) -> None:
    """The main thread is inside the host (its lock held) when Ctrl-Z comes: the process still
    stops, within the 1 s bound, and the session ends once the main thread lets go."""
    script = APP.replace(
        'print("app: ready", flush=True)\n',
        'host = app.host\nwith host._lock:\n    print("app: ready", flush=True)\n'
        "    sys.stdin.readline()\n"
        'print("app: let go", flush=True)\n',
    )
    terminal = _app(terminals, "mindfulness", script)
    terminal.type("\x1a")
    stopped = terminal.expect("shell: stopped")
    assert "took over 1 s to hear it is being stopped: it stops anyway" in stopped
    terminal.type("fg\n")
    assert "app: ended" not in terminal.expect("shell: fg done")
    terminal.type("go on\n")
    terminal.expect("app: ended RESIGNED_FRONTMOST")


def test_after_stop_ctrl_z_is_the_shells_again(terminals: list[Terminal]) -> None:
    """`stop()` gives Ctrl-Z back: the process stops at once, its session still running."""
    script = APP.replace(
        'print("app: ready", flush=True)\n',
        'follower.stop()\nprint(f"app: ready {follower.following}", flush=True)\n',
    )
    terminal = _app(terminals, "mindfulness", script, ready="app: ready False")
    terminal.type("\x1a")
    terminal.expect("shell: stopped")
    terminal.type("fg\n")
    terminal.expect("shell: fg done")
    terminal.type("state\n")
    terminal.expect("app: state ACTIVE RUNNING")
    assert "app: ended" not in terminal.output


# ---------------------------------------------------------------------- tcsetpgrp


def test_foreground_changes_without_a_signal_are_noticed_by_polling(
    terminals: list[Terminal],
) -> None:
    """The job hands the terminal to the shell's group and takes it back (`tcsetpgrp`, what
    `fg` and `bg` do): no signal, yet the app's state follows, and its mindfulness session
    ends when it leaves the front."""
    script = r"""
import os, signal, sys, threading
from extended_runtime import App, ApplicationState, ExtendedRuntimeSession
from extended_runtime import ExtendedRuntimeSessionDelegate, follow_terminal

class Delegate(ExtendedRuntimeSessionDelegate):
    def did_invalidate(self, session, reason, error):
        print(f"app: ended {reason.name}", flush=True)

def until(state):
    for _ in range(1000):
        if app.state is state:
            return state.name
        threading.Event().wait(0.01)
    return f"still {app.state.name}"

app = App("org.example.follow", "mindfulness")
follow_terminal(app)
session = ExtendedRuntimeSession(app=app, delegate=Delegate())
session.start()
signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # to take the terminal back from the background
print(f"app: ready {app.state.name}", flush=True)
os.tcsetpgrp(0, os.getpgid(os.getppid()))
print(f"app: now {until(ApplicationState.BACKGROUND)}", flush=True)
os.tcsetpgrp(0, os.getpgrp())
print(f"app: now {until(ApplicationState.ACTIVE)}", flush=True)
"""
    terminal = _app(terminals, "mindfulness", script, ready="app: ready ACTIVE")
    terminal.expect("app: now BACKGROUND")
    terminal.expect("app: now ACTIVE")
    terminal.expect("shell: exited 0")
    assert "app: ended RESIGNED_FRONTMOST" in terminal.output


# ---------------------------------------------------------------------- xrs run


def test_ctrl_z_on_xrs_run_mindfulness_ends_the_session_and_keeps_the_job(
    terminals: list[Terminal],
) -> None:
    """The session ends before `xrs` stops; the command stops with the job, `fg` resumes it
    (without a session) and `xrs` exits with its status."""
    terminal = _xrs(terminals, "mindfulness")
    terminal.type("\x1a")
    before_stop = terminal.expect("shell: stopped")
    assert "session ended: RESIGNED_FRONTMOST" in before_stop
    assert "goes on without a session after fg" in before_stop
    terminal.type("fg\n")
    terminal.expect("shell: fg done")
    terminal.type("done\n")
    after = terminal.expect("shell: exited 0")
    assert "stopping the command" not in after


def test_xrs_run_started_in_the_background_cannot_start_a_frontmost_session(
    terminals: list[Terminal],
) -> None:
    """The job gives the terminal to the shell's group, then becomes `xrs run`: the session
    is refused (the app is BACKGROUND from the start) and the command never runs."""
    script = (
        "import os, sys\n"
        "os.tcsetpgrp(0, os.getpgid(os.getppid()))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'extended_runtime', 'run',\n"
        "         '--type', 'mindfulness', '--', 'echo', 'command: ran'])\n"
    )
    terminal = _run(terminals, "-c", script)
    refused = terminal.expect("shell: exited 75")
    assert "MUST_BE_ACTIVE_TO_START_OR_SCHEDULE" in refused
    assert "run xrs from the foreground); the command was not run" in refused
    assert "command: ran" not in refused


def test_ctrl_z_on_xrs_run_physical_therapy_keeps_the_session(terminals: list[Terminal]) -> None:
    terminal = _xrs(terminals, "physical-therapy")
    terminal.type("\x1a")
    terminal.expect("shell: stopped")
    terminal.type("fg\n")
    terminal.expect("shell: fg done")
    terminal.type("done\n")
    ended = terminal.expect("shell: exited 0")
    assert "session ended: NONE" in ended  # when the command exited, not before
    assert ended.count("session ended") == 1


# ---------------------------------------------------------------------- the host's side


def test_settle_with_loops_waits_for_calls_posted_to_a_loop() -> None:
    """What a Ctrl-Z waits for before the stop: `did_invalidate` run on the session's loop,
    here a loop in another thread."""
    import asyncio

    heard: list[str] = []

    class Delegate(ExtendedRuntimeSessionDelegate):
        def did_invalidate(self, session: object, reason: object, error: object) -> None:
            heard.append(threading.current_thread().name)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="app-loop", daemon=True)
    thread.start()
    with EmbeddedHost() as host:
        app = host.app("org.example.loop", SessionType.MINDFULNESS)

        async def begin() -> ExtendedRuntimeSession:
            session = ExtendedRuntimeSession(app=app, delegate=Delegate())
            session.start()
            return session

        session = asyncio.run_coroutine_threadsafe(begin(), loop).result(10)
        gate = threading.Event()
        loop.call_soon_threadsafe(gate.wait, 10)  # the loop is busy: the call must wait
        app.state = ApplicationState.BACKGROUND
        assert session.invalidation_reason is InvalidationReason.RESIGNED_FRONTMOST
        assert not host.settle(0.2, loops=True)
        assert heard == []
        gate.set()
        assert host.settle(5, loops=True)
        assert heard == ["app-loop"]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_the_readme_terminal_example_ends_its_session_on_ctrl_z(
    terminals: list[Terminal],
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (example,) = [block for block in blocks if "follow_terminal(" in block]
    terminal = _run(terminals, "-c", example)
    terminal.expect("Enter ends the session")
    assert "following the terminal: True - follows the foreground" in terminal.output
    terminal.type("\x1a")
    assert "session ended: RESIGNED_FRONTMOST" in terminal.expect("shell: stopped")
    terminal.type("fg\n")
    terminal.expect("shell: fg done")
    terminal.type("\n")
    terminal.expect("shell: exited 0")
