"""A yes-or-no question on the desktop (`_backends/linux/question.py`), against the real
notification server (dunst on Xvfb, as `scripts/services start` runs it).

The user answers as on a desktop: dunst's context menu (`dunstctl context`, answered by the
menu script `scripts/services` installs) picks Allow or Deny, and `dunstctl close` dismisses
the notification. An app without a terminal, served by the daemon, is asked this way when it
asks `request_auto_launch_authorization_status`, and the answer is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from extended_runtime._backends.linux.question import ask_on_desktop

from . import services
from .daemons import Daemon
from .test_daemon_apps import ASK, xrs
from .test_desktop_alarm import displayed, dunstctl

SUMMARY = "Allow org.example.asked to start for its alarms?"


def choose(label: str, key: str, notification: int, summary: str = SUMMARY) -> None:
    """Pick an action from dunst's context menu, as the user would."""
    choice = Path(os.environ["XRS_SERVICES_DIR"]) / "dunst" / "choice"
    choice.write_text(f"#{label} ({summary}) [{notification},{key}]\n")
    dunstctl("context")


@pytest.fixture
def desktop() -> Iterator[None]:
    services.require("notifications")
    dunstctl("close-all")
    yield
    dunstctl("close-all")


class Asking:
    """`ask_on_desktop` in a thread, with the id of the notification it showed."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.ids: list[int] = []
        self.answers: list[bool | None] = []
        self.thread = threading.Thread(target=self._ask, args=(timeout,))
        self.thread.start()

    def _ask(self, timeout: float) -> None:
        answer = ask_on_desktop(
            "org.example.asked", SUMMARY, "a test", timeout=timeout, shown=self.ids.append
        )
        self.answers.append(answer)

    def notification(self) -> int:
        deadline = time.monotonic() + 10
        while not self.ids and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.ids, "no notification was shown"
        return self.ids[0]

    def answer(self) -> bool | None:
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.answers[0]


@pytest.mark.usefixtures("desktop")
@pytest.mark.parametrize(
    ("label", "key", "expected"), [("Allow", "yes", True), ("Deny", "no", False)]
)
def test_the_user_s_action_is_the_answer(label: str, key: str, expected: bool) -> None:
    asking = Asking()
    choose(label, key, asking.notification())
    assert asking.answer() is expected


@pytest.mark.usefixtures("desktop")
def test_dismissing_the_question_is_no() -> None:
    asking = Asking()
    notification = asking.notification()
    assert displayed() == 1
    dunstctl("close")
    assert asking.answer() is False
    assert notification > 0


@pytest.mark.usefixtures("desktop")
def test_an_unanswered_question_is_no_answer_and_is_withdrawn() -> None:
    asking = Asking(timeout=0.5)
    asking.notification()
    assert asking.answer() is None
    deadline = time.monotonic() + 5
    while displayed() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert displayed() == 0


def test_without_a_session_bus_there_is_no_answer_at_once(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import time
        from extended_runtime._backends.linux.question import ask_on_desktop
        started = time.monotonic()
        print(ask_on_desktop("org.example.a", "?", "?"), round(time.monotonic() - started))
        """
    )
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path / 'none'}")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.stdout.split() == ["None", "0"], done.stderr


def _next_notification() -> int:
    """The id dunst gives the next notification (a probe shown and closed: ids only grow)."""
    probe = Asking(timeout=0.2)
    first = probe.notification()
    probe.answer()
    return first + 1


@pytest.mark.usefixtures("desktop")
def test_an_app_without_a_terminal_is_asked_on_the_desktop_and_the_answer_is_kept(
    daemon: Daemon,
) -> None:
    daemon.start()
    expected = _next_notification()
    asked = daemon.app(ASK)  # stdin is not a terminal
    deadline = time.monotonic() + 20
    while not displayed() and time.monotonic() < deadline:
        time.sleep(0.02)
    choose("Allow", "yes", expected)
    out, err = asked.communicate(timeout=30)
    assert "STATUS ACTIVE" in out, err
    again = daemon.app(ASK)  # the kept answer: no question this time
    out, err = again.communicate(timeout=30)
    assert "STATUS ACTIVE" in out, err
    assert displayed() == 0
    assert "allowed" in xrs(daemon, "apps", "list").stdout
