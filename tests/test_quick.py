"""The quick path of `xrs run -q`: the command starts before the engine is imported.

Run end to end as a user runs it (`python -m extended_runtime run -q ...`) against the real
systemd-logind, whose `ListInhibitors` shows the lock from outside. What is tested: the forms
the quick path takes and those it leaves to the full path; the lock held, labelled as the
session's, for all of a short command's life and gone after; the exit status; signals
forwarded; a command that outlives the window handed to a session with no moment unguarded;
a session that cannot start on a handed-over command stops it; the conditions that make it
decline; and what it imports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from jeepney import DBusAddress, Message, Properties, new_error, new_method_return

from extended_runtime._backends.linux import logind, power
from extended_runtime._cli import quick
from extended_runtime._cli.child import Inbox, Signals, spawn, watch_child
from extended_runtime._cli.run import (
    EXIT_SESSION_REFUSED,
    Adopted,
    RunOptions,
    continue_in_session,
    session_policy,
)
from extended_runtime._core.conditions import Conditions
from extended_runtime._core.enums import SessionType
from extended_runtime._core.policy import Policy
from extended_runtime._hosts.embedded import EmbeddedHost

from . import services
from .test_logind import Lock, locks_of

XRS = [sys.executable, "-m", "extended_runtime"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["-q", "--", "true"], ("true",)),
        (["--quiet", "sleep", "1"], ("sleep", "1")),
        (["-q", "--type", "physical-therapy", "--", "ls", "-l"], ("ls", "-l")),
        (["--type=physical-therapy", "-q", "make", "-j", "4"], ("make", "-j", "4")),
        (["-q", "--", "-weird-name"], ("-weird-name",)),
    ],
)
def test_the_plain_quiet_form_is_taken(args: list[str], command: tuple[str, ...]) -> None:
    assert quick.parse(args) == command


@pytest.mark.parametrize(
    "args",
    [
        ["--", "true"],  # events are printed: the engine's
        ["-q", "--type", "self-care", "--", "true"],  # frontmost: follows the terminal
        ["-q", "--type", "mindfulness", "true"],
        ["-q", "--type"],
        ["-q", "--limit", "5", "--", "true"],
        ["-q", "--cpu-budget", "none", "--", "true"],
        ["-q", "--app-id", "org.example.a", "--", "true"],
        ["-q", "--backend", "keep-awake=log-keep-awake", "--", "true"],
        ["-q", "--help"],
        ["-q", "--"],
        ["-q"],
        [],
    ],
)
def test_every_other_form_is_left_to_the_full_path(args: list[str]) -> None:
    assert quick.parse(args) is None


def test_a_command_not_on_the_path_is_left_to_the_full_path() -> None:
    assert quick.quick_run(["-q", "--", "no-such-command-xrs"]) is None


def test_its_bus_names_are_the_backends() -> None:
    assert quick._LOGIND == logind._LOGIND
    assert logind._FULL[0] == quick._FULL_BLOCK
    assert quick._PROFILES == power._PROFILES
    assert (quick._UPOWER[0], quick._UPOWER[1]) == (power._UPOWER, power._UPOWER_PATH)
    assert quick._POWER_SAVER == power._POWER_SAVER


# ---------------------------------------------------------------------- conditions


def _question() -> Message:
    return Properties(DBusAddress("/p", bus_name="org.example.p", interface="org.example")).get("P")


def _value(signature: str, value: object) -> Message:
    """A method return carrying one property value, as `Properties.Get` answers."""
    return new_method_return(_question(), "v", ((signature, value),))


def _error(name: str) -> Message:
    return new_error(_question(), name)


ABSENT = "org.freedesktop.DBus.Error.ServiceUnknown"
DENIED = "org.freedesktop.DBus.Error.AccessDenied"


@pytest.mark.parametrize(
    ("shutdown", "battery", "profile", "clear"),
    [
        (_value("b", False), _value("b", False), _value("s", "balanced"), True),
        (_value("b", False), _error(ABSENT), _error(ABSENT), True),  # no UPower, no profiles
        (_value("b", True), _value("b", False), _value("s", "balanced"), False),  # shutting down
        (_value("b", False), _value("b", True), _value("s", "balanced"), False),  # on battery
        (_value("b", False), _value("b", False), _value("s", "power-saver"), False),
        (_error(DENIED), _value("b", False), _value("s", "balanced"), False),  # logind refuses
        (_value("b", False), _error(DENIED), _value("s", "balanced"), False),  # UPower refuses
        (_value("b", False), _value("b", False), _error(DENIED), False),
    ],
)
def test_any_doubt_about_the_conditions_declines(
    shutdown: Message, battery: Message, profile: Message, clear: bool
) -> None:
    assert quick._clear([shutdown, battery, profile]) is clear


def test_a_refused_block_declines() -> None:
    assert quick._granted(_error(DENIED)) is None


# ---------------------------------------------------------------------- end to end, real logind


@pytest.fixture
def _logind() -> None:
    services.require("logind")


def _watch_locks(who: str, until: Callable[[], bool]) -> list[list[Lock]]:
    """`locks_of(who)`, sampled until `until()` is true."""
    samples = []
    while not until():
        samples.append(locks_of(who))
    return samples


@pytest.mark.usefixtures("_logind")
def test_a_short_command_runs_under_the_session_lock_and_its_status_comes_back(
    tmp_path: Path,
) -> None:
    seen = tmp_path / "locks"
    script = (
        "busctl --system --json=short call org.freedesktop.login1 /org/freedesktop/login1 "
        f"org.freedesktop.login1.Manager ListInhibitors > {seen}; exit 7"
    )
    xrs = subprocess.Popen(
        [*XRS, "run", "-q", "--", "sh", "-c", script],
        stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    _, stderr = xrs.communicate(timeout=60)
    assert xrs.returncode == 7, stderr
    assert stderr == ""
    held = [lock for lock in _locks(seen.read_text()) if lock[1] == "xrs.run.sh"]
    assert len(held) == 1
    what, _, why, mode, _, pid = held[0]
    assert (set(what.split(":")), mode) == ({"idle", "sleep"}, "block")
    assert why.startswith("physical-therapy session until ") and why.endswith(" UTC")
    assert pid == xrs.pid
    assert locks_of("xrs.run.sh") == []


def _locks(text: str) -> list[Lock]:
    import json

    return [tuple(lock) for lock in json.loads(text)["data"][0]]


@pytest.mark.usefixtures("_logind")
def test_a_short_command_imports_neither_the_command_line_nor_the_engine() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "extended_runtime", "run", "-q", "--", "true"],
        capture_output=True, text=True, env=_env(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "extended_runtime._cli.quick" in imported  # the listing is the real one
    heavy = {"click", "extended_runtime._core.engine", "extended_runtime._cli.run", "psutil"}
    heavy |= {"extended_runtime._hosts.embedded", "extended_runtime._backends.select"}
    assert not imported & heavy


@pytest.mark.usefixtures("_logind")
def test_a_longer_command_is_handed_to_a_session_without_a_moment_unguarded(
    tmp_path: Path,
) -> None:
    """The lock is sampled from outside all through the hand-over: never absent, and the
    session's own (another descriptor, same label) is taken before the quick one goes."""
    ran = 1.5
    xrs = subprocess.Popen(
        [*XRS, "run", "-q", "--", "sleep", str(ran)],
        env=_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        samples = _watch_locks("xrs.run.sleep", lambda: xrs.poll() is not None)
    finally:
        _, stderr = xrs.communicate(timeout=30)
    assert xrs.returncode == 0, stderr
    first = next(i for i, s in enumerate(samples) if s)
    last = max(i for i, s in enumerate(samples) if s)
    assert all(samples[first : last + 1]), "a moment without the lock"
    assert last - first >= 5  # it was watched, not glimpsed
    assert {lock[5] for s in samples for lock in s} == {xrs.pid}
    assert all(len(s) <= 2 for s in samples)  # the quick lock and the session's, at most
    assert len(samples[last]) == 1  # the quick one went once the session's was held
    assert locks_of("xrs.run.sleep") == []


@pytest.mark.usefixtures("_logind")
@pytest.mark.parametrize("after", [0.05, 0.8])
def test_sigterm_reaches_the_command_before_and_after_the_hand_over(after: float) -> None:
    xrs = subprocess.Popen(
        [*XRS, "run", "-q", "--", "sleep", "30"], env=_env(), stderr=subprocess.PIPE, text=True
    )
    time.sleep(after)
    started = time.monotonic()
    xrs.send_signal(signal.SIGTERM)
    _, stderr = xrs.communicate(timeout=30)
    assert xrs.returncode == 128 + signal.SIGTERM, stderr
    assert time.monotonic() - started < 10  # forwarded, not waited out (sleep 30)
    assert locks_of("xrs.run.sleep") == []


# ---------------------------------------------------------------------- the hand-over itself


class _Released:
    """The quick block's `release`, counted."""

    def __init__(self) -> None:
        self.calls = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.event.set()


def _adopt(
    command: tuple[str, ...], inbox: Inbox, signals: Signals, released: _Released
) -> Adopted:
    child = spawn(command)
    assert not isinstance(child, int)
    signals.child_exists = True
    watch_child(child, inbox)
    return Adopted(child, inbox, signals, released)


def test_a_handed_over_command_runs_to_the_sessions_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = RunOptions(
        session_type=SessionType.PHYSICAL_THERAPY,
        command=("sleep", "30"),
        policy=session_policy(SessionType.PHYSICAL_THERAPY, 0.5),
        quiet=True,
        grace=2.0,
        backends=(("keep-awake", "log-keep-awake"),),
    )
    released = _Released()
    started = time.monotonic()
    with Inbox() as inbox, Signals(inbox) as signals:
        status = continue_in_session(options, _adopt(options.command, inbox, signals, released))
    assert status == 128 + signal.SIGTERM  # stopped at the limit
    assert 0.4 < time.monotonic() - started < 10
    assert released.calls >= 1


def test_a_handed_over_command_is_stopped_when_its_session_cannot_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def shutting_down(policy: Policy) -> EmbeddedHost:
        host = EmbeddedHost(policy)
        host.engine.set_conditions(Conditions(shutting_down=True), host.now)
        return host

    options = RunOptions(
        session_type=SessionType.PHYSICAL_THERAPY,
        command=("sleep", "30"),
        policy=Policy(),
        quiet=True,
        grace=2.0,
    )
    released = _Released()
    with Inbox() as inbox, Signals(inbox) as signals:
        adopted = _adopt(options.command, inbox, signals, released)
        status = continue_in_session(options, adopted, make_host=shutting_down)
    assert status == EXIT_SESSION_REFUSED
    assert adopted.child.poll() is not None  # stopped and reaped
    assert released.calls >= 1
    err = capsys.readouterr().err
    assert "the session could not start: SUPPRESSED_BY_SYSTEM" in err
    assert err.rstrip().endswith("; the command is being stopped")
