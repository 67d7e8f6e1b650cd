"""Keep-awake against the real systemd-logind (`scripts/services start`).

The lock is observed from outside, the way a user would see it: logind's `ListInhibitors`
through `busctl`. What is tested: a session's lock names its app and session, it goes when the
session ends, it dies with its process (the kernel closes the descriptor), a changed label is
taken before the old lock goes, and a process that polkit refuses a sleep block (uid nobody, no
logind session) still blocks idle and delays sleep, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import jeepney
import pytest

from extended_runtime import EmbeddedHost, ExtendedRuntimeSession, SessionType
from extended_runtime.abc import KeepAwakeBackend
from extended_runtime.testing.contracts import KeepAwakeContract

from . import services

SRC = Path(__file__).resolve().parent.parent / "src"

Lock = tuple[str, str, str, str, int, int]  # what, who, why, mode, uid, pid


def inhibitors() -> list[Lock]:
    """logind's locks now, as `busctl` prints them."""
    done = subprocess.run(
        [
            "busctl", "--system", "--json=short", "call", "org.freedesktop.login1",
            "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "ListInhibitors",
        ],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    return [tuple(lock) for lock in json.loads(done.stdout)["data"][0]]


def locks_of(who: str) -> list[Lock]:
    """The locks of app `who` (alone, or first of several: "APP and N more")."""
    return [lock for lock in inhibitors() if lock[1] == who or lock[1].startswith(f"{who} and ")]


@pytest.fixture(autouse=True)
def _logind() -> None:
    services.require("logind")


@pytest.fixture
def host() -> Iterator[EmbeddedHost]:
    embedded = EmbeddedHost()
    yield embedded
    embedded.close()


def test_the_embedded_host_chooses_logind(host: EmbeddedHost) -> None:
    keep = host.backends.keep_awake
    assert keep is not None
    assert keep.name == "logind"
    assert keep.probe().detail == "logind blocks idle and system sleep while held"


def test_a_session_holds_a_lock_naming_its_app_until_it_ends(host: EmbeddedHost) -> None:
    session = ExtendedRuntimeSession(host.app("org.example.logind-a", SessionType.MINDFULNESS))
    session.start()
    assert host.settle()
    assert session.expiration_date is not None
    until = session.expiration_date.strftime("%H:%M:%S")
    (lock,) = locks_of("org.example.logind-a")
    what, who, why, mode = lock[:4]
    assert (who, why, mode) == (
        "org.example.logind-a",
        f"mindfulness session until {until} UTC",
        "block",
    )
    assert set(what.split(":")) == {"idle", "sleep"}
    assert lock[5] == os.getpid()
    session.invalidate()
    assert host.settle()
    assert locks_of("org.example.logind-a") == []


def test_two_sessions_share_one_lock_that_says_so(host: EmbeddedHost) -> None:
    first = ExtendedRuntimeSession(host.app("org.example.logind-b", SessionType.PHYSICAL_THERAPY))
    second = ExtendedRuntimeSession(host.app("org.example.logind-c", SessionType.MINDFULNESS))
    first.start()
    second.start()
    assert host.settle()
    (lock,) = locks_of("org.example.logind-b")
    assert lock[1] == "org.example.logind-b and 1 more"
    assert lock[2].endswith("; 2 sessions")
    first.invalidate()
    assert host.settle()
    assert locks_of("org.example.logind-b") == []
    assert [lock[1] for lock in locks_of("org.example.logind-c")] == ["org.example.logind-c"]


HOLDER = """
from extended_runtime import App, ExtendedRuntimeSession, EmbeddedHost
import sys, time
host = EmbeddedHost()
ExtendedRuntimeSession(host.app("org.example.logind-killed", "physical-therapy")).start()
host.settle()
print("held", flush=True)
time.sleep(300)
"""


def test_the_lock_dies_within_a_second_when_its_process_is_killed() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert len(locks_of("org.example.logind-killed")) == 1
        holder.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        holder.wait(10)
        while locks_of("org.example.logind-killed") and time.monotonic() - killed < 10:
            time.sleep(0.02)
        gone_after = time.monotonic() - killed
    assert locks_of("org.example.logind-killed") == []
    assert gone_after < 1.0


def test_a_new_label_is_locked_before_the_old_lock_goes() -> None:
    from extended_runtime._backends.linux.logind import LogindInhibitor

    backend = LogindInhibitor()
    try:
        backend.hold("org.example.logind-d", "mindfulness session until 08:00:00 UTC")
        backend.hold("org.example.logind-d", "alarm session until 08:30:00 UTC")
        assert [lock[2] for lock in locks_of("org.example.logind-d")] == [
            "alarm session until 08:30:00 UTC"
        ]
        backend.hold("org.example.logind-d", "alarm session until 08:30:00 UTC")  # idempotent
        assert len(locks_of("org.example.logind-d")) == 1
    finally:
        backend.release()
    assert locks_of("org.example.logind-d") == []


NOBODY = """
from extended_runtime._backends.linux.logind import LogindInhibitor
backend = LogindInhibitor()
print(backend.probe().detail, flush=True)
backend.hold("org.example.logind-nobody", "mindfulness session until 08:00:00 UTC")
print("held", flush=True)
input()
"""


def test_without_a_logind_session_idle_is_blocked_and_sleep_delayed() -> None:
    """As uid nobody polkit refuses a sleep block. The system's python3 runs the backend from
    world-readable copies (this interpreter's tree, and pytest's temporary folders, are not
    readable by nobody)."""
    python = shutil.which("python3", path="/usr/bin")
    assert python is not None
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        place = Path(folder)
        place.chmod(0o755)
        shutil.copytree(Path(jeepney.__file__).parent, place / "jeepney")
        detail, locks, error = _as_nobody(python, place)
    assert detail.startswith("polkit refused a sleep block (no logind session)"), error
    assert locks == [("idle", "block"), ("sleep", "delay")]


def _as_nobody(python: str, place: Path) -> tuple[str, list[tuple[str, str]], str]:
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python, "-c"]
    env = {**os.environ, "PYTHONPATH": f"{place}:{SRC}"}
    with subprocess.Popen(
        [*command, textwrap.dedent(NOBODY)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=place,
    ) as process:  # fmt: skip
        assert process.stdout is not None and process.stdin is not None
        detail = process.stdout.readline().strip()
        process.stdout.readline()  # "held"
        locks = sorted((lock[0], lock[3]) for lock in locks_of("org.example.logind-nobody"))
        _, error = process.communicate("\n", timeout=10)
    return detail, locks, error


class TestLogindContract(KeepAwakeContract):
    """The published keep-awake contract, observed through `ListInhibitors`."""

    def make_backend(self) -> KeepAwakeBackend:
        from extended_runtime._backends.linux.logind import LogindInhibitor

        return LogindInhibitor()

    def is_held(self, backend: KeepAwakeBackend) -> bool:
        return bool(locks_of("org.example.a"))
