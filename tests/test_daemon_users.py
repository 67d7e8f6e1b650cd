"""Another user of the machine can neither reach the daemon, nor be served by it, nor read its
status file.

Two layers keep users apart (`server` module docstring): the runtime folder is private (0700),
so another user cannot even reach the socket; and should the folder be open, the daemon checks
each connection's peer credentials (`SO_PEERCRED`, filled in by the kernel) and closes another
user's before reading a byte. Each layer is tested on its own: the first with the folder as
`paths.ensure_private_dir` makes it, the second with the folder and socket opened up on purpose.

Everything is real: a system user `xrs-other` (created once, if missing), an in-process daemon
(a `DaemonHost` on a `MockClock` behind a `Server`) whose own client has a running session, and
a child process run as that user with `setpriv`. The child needs only the standard library
(the `Hello` frame is encoded here and handed to it as hex), so it runs on whichever Python
that user may execute: the test's own interpreter, or the system's when that user cannot run
the test's (one installed under `/root`, say). Making a user, and becoming one, needs root; as
any other user the tests are skipped.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from extended_runtime import App, Backends, ExtendedRuntimeSession, Policy, SessionState
from extended_runtime._daemon import paths
from extended_runtime._daemon import protocol as p
from extended_runtime._daemon.client import DaemonClient
from extended_runtime._daemon.host import DaemonHost
from extended_runtime._daemon.server import Server
from extended_runtime._daemon.status import PROTOCOL_VERSION, DaemonStatus, write_status
from extended_runtime.testing import MockClock

from .helpers import LOGGER, SELF_CARE, T0

OTHER = "xrs-other"

#: What the child does as the other user: connect (and optionally send a frame and read until
#: the daemon closes), or read a file. It prints one JSON object saying what happened.
CHILD = r"""
import json, socket, sys

action, path = sys.argv[1], sys.argv[2]
result = {}
try:
    if action == "read":
        with open(path, "rb") as file:
            result["read"] = len(file.read())
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(path)
        result["connected"] = True
        if action == "hello":
            try:
                sock.sendall(bytes.fromhex(sys.argv[3]))
            except OSError as error:
                result["send_error"] = type(error).__name__
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
                result["end"] = "eof"
            except ConnectionResetError:
                result["end"] = "reset"
            except TimeoutError:
                result["end"] = "timeout"
            result["received"] = received.hex()
except OSError as error:
    result["error"] = type(error).__name__
    result["errno"] = error.errno
print(json.dumps(result))
"""


def _as_other(*argv: str) -> list[str]:
    return ["setpriv", f"--reuid={OTHER}", f"--regid={OTHER}", "--clear-groups", *argv]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        check=False,
    )


def _ensure_other_user() -> int:
    """The other user's uid, creating the system user if it does not exist yet."""
    if subprocess.run(["getent", "passwd", OTHER], capture_output=True, check=False).returncode:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER],
            capture_output=True,
            text=True,
            check=False,
        )
        # 9: it exists (made meanwhile by a concurrent run)
        assert made.returncode in (0, 9), made.stderr
    return pwd.getpwnam(OTHER).pw_uid


def _other_python() -> str:
    """A Python the other user can run the child with: this one, or the system's."""
    system = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    for candidate in (sys.executable, system):
        if (
            candidate
            and _run(_as_other(candidate, "-I", "-c", "import json, socket")).returncode == 0
        ):
            return candidate
    pytest.skip(f"no Python interpreter that {OTHER} may run ({sys.executable}, {system})")


@pytest.fixture(scope="module")
def other() -> tuple[int, str]:
    """The other user's uid, and the Python it runs the child with."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to create the user {OTHER} and to run a process as it")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.skip("needs setpriv and useradd (util-linux, passwd) to run as another user")
    return _ensure_other_user(), _other_python()


def child(other: tuple[int, str], *args: str) -> dict[str, Any]:
    """Run `CHILD` as the other user and return what it reports."""
    result = _run(_as_other(other[1], "-I", "-c", CHILD, *args))
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- the daemon --------------------------------------------------------------------------------


class Daemon:
    """An in-process daemon whose socket is in a private runtime folder, and its own client
    with a running session."""

    def __init__(self, runtime: Path) -> None:
        self.runtime = runtime
        self.clock = MockClock(T0)
        self.host = DaemonHost(Policy(), clock=self.clock, backends=Backends(cpu=None))
        self.server = Server(self.host, str(runtime / paths.SOCKET_NAME))
        self.server.listen()
        self.client = DaemonClient(self.server.path)
        self.session = ExtendedRuntimeSession(
            app=App("org.example.own", SELF_CARE, host=self.client)
        )
        self.session.start()
        assert self.session.state is SessionState.RUNNING
        self.sessions = self.host.sessions()

    @property
    def socket(self) -> Path:
        return Path(self.server.path)

    def check_unharmed(self) -> None:
        """Only its own client is connected, its sessions are as they were, it is served."""
        assert self.server.connections == 1
        assert self.host.sessions() == self.sessions
        assert self.host.engine.live_sessions() == 1
        rows = self.client.status()["sessions"]
        assert [row["session_id"] for row in rows] == [self.session.session_id]
        assert self.session.state is SessionState.RUNNING

    def close(self) -> None:
        self.client.close()
        self.server.close()
        self.host.close()


@pytest.fixture
def base(other: tuple[int, str]) -> Iterator[Path]:
    """A folder under /tmp that every user may walk through (`tmp_path`'s parents are private),
    removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="xrs-users-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.fixture
def daemon(base: Path) -> Iterator[Daemon]:
    made = Daemon(paths.ensure_private_dir(base / "run"))
    try:
        yield made
    finally:
        made.close()


# -- the tests ---------------------------------------------------------------------------------


def test_the_folder_and_socket_are_private_to_the_daemon_s_user(daemon: Daemon) -> None:
    assert _mode(daemon.runtime) == 0o700
    assert _mode(daemon.socket) == 0o600
    assert stat.S_ISSOCK(os.lstat(daemon.socket).st_mode)
    assert os.lstat(daemon.runtime).st_uid == os.lstat(daemon.socket).st_uid == os.getuid()


def test_another_user_cannot_reach_the_socket_in_the_private_folder(
    other: tuple[int, str], daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        report = child(other, "connect", str(daemon.socket))
    assert report == {"error": "PermissionError", "errno": errno.EACCES}
    assert "refused a connection" not in caplog.text  # nothing reached the daemon
    daemon.check_unharmed()


def test_another_user_who_reaches_the_socket_is_refused_without_a_reply(
    other: tuple[int, str], daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    uid, _ = other
    # open the first layer on purpose, so the second is the only one left
    daemon.runtime.chmod(0o755)
    daemon.socket.chmod(0o666)
    hello = p.frame(p.Hello(id=1, protocol=PROTOCOL_VERSION, pid=4242))
    with caplog.at_level(logging.WARNING, LOGGER):
        report = child(other, "hello", str(daemon.socket), hello.hex())
    assert report["connected"] is True  # the socket let it in; the daemon did not
    assert report["received"] == ""
    assert report["end"] in ("eof", "reset"), report
    refusals = [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and "refused a connection" in record.getMessage()
    ]
    assert len(refusals) == 1
    assert f"from uid {uid} " in refusals[0]
    assert "not this user" in refusals[0]
    daemon.check_unharmed()


def test_another_user_cannot_read_the_status_file(
    other: tuple[int, str], daemon: Daemon, base: Path
) -> None:
    where = paths.status_path({"XRS_RUNTIME_DIR": str(daemon.runtime)})
    assert where == daemon.runtime / paths.STATUS_NAME
    status = DaemonStatus(
        pid=os.getpid(),
        socket=str(daemon.socket),
        protocol=PROTOCOL_VERSION,
        version="0",
        started_at=datetime(2026, 1, 5, 6, 0, tzinfo=UTC),
    )
    write_status(where, status)
    assert _mode(where) == 0o600
    # a file anyone may read, beside the folder: the child can read what it is allowed to
    control = base / "readable"
    control.write_bytes(b"four")
    control.chmod(0o644)
    assert child(other, "read", str(control)) == {"read": 4}
    # the private folder keeps it out ...
    refused = {"error": "PermissionError", "errno": errno.EACCES}
    assert child(other, "read", str(where)) == refused
    # ... and so does the file's own mode, once the folder is opened
    daemon.runtime.chmod(0o755)
    assert child(other, "read", str(where)) == refused
    daemon.check_unharmed()
