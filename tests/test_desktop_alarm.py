"""A smart alarm on the desktop, end to end: a real `EmbeddedHost`, the real sound server (a
PulseAudio null sink, recorded through its monitor) and a real notification server (dunst on
Xvfb), as `scripts/services start` runs them.

The user acts as on a desktop: dunst's context menu (`dunstctl context`, answered by the menu
script `scripts/services` installs) picks Stop or Open, and `dunstctl close` dismisses the
notification. The services are also stopped in the middle of a session (dunst by its pid,
PulseAudio by `pulseaudio --kill`, or dunst frozen with SIGSTOP) and started again afterwards
with `scripts/services start`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from extended_runtime import (
    ApplicationState,
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime._backends.linux.alerts import LinuxAlerts
from extended_runtime._backends.linux.dbus import Bus
from extended_runtime._backends.linux.notify import close_notification
from extended_runtime._cli.doctor import diagnose

from . import services
from .helpers import eventually, short_policy
from .sink import Monitor, rms

ROOT = Path(__file__).resolve().parent.parent


class Alarm(ExtendedRuntimeSessionDelegate):
    """Alerts as soon as the session starts, every `every` seconds (None: the default 3 s)."""

    def __init__(self, every: float | None = None) -> None:
        self.every = every
        self.ended = threading.Event()
        self.reason: InvalidationReason | None = None
        self.plays = 0

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        session.notify_user(HapticType.NOTIFICATION, None if self.every is None else self._next)

    def did_invalidate(
        self, session: ExtendedRuntimeSession, reason: InvalidationReason, error: object
    ) -> None:
        self.reason = reason
        self.ended.set()

    def _next(self, played: HapticType) -> float | None:
        self.plays += 1
        return self.every


def dunstctl(*args: str) -> str:
    done = subprocess.run(
        ["dunstctl", *args], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip()


def displayed() -> int:
    return int(dunstctl("count", "displayed"))


def history() -> list[dict[str, str]]:
    """dunst's history, newest first: each notification's fields."""
    data = json.loads(dunstctl("history"))["data"][0]
    return [{key: value["data"] for key, value in entry.items()} for entry in data]


def choose(action: str, notification: int) -> None:
    """Pick an action from dunst's context menu, as the user would."""
    choice = Path(os.environ["XRS_SERVICES_DIR"]) / "dunst" / "choice"
    choice.write_text(f"#{action.title()} (Wake up) [{notification},{action}]\n")
    dunstctl("context")


@pytest.fixture
def desktop() -> Iterator[None]:
    services.require("pulseaudio", "notifications")
    dunstctl("close-all")
    yield
    dunstctl("close-all")


@pytest.fixture
def host(desktop: None) -> Iterator[EmbeddedHost]:
    embedded = EmbeddedHost(policy=short_policy(smart_alarm=60))
    assert embedded.backends.alerts is not None
    assert embedded.backends.alerts.name == "linux-alerts"
    yield embedded
    embedded.close()


def ring(
    host: EmbeddedHost, app_id: str, alarm: Alarm, state: ApplicationState | None = None
) -> ExtendedRuntimeSession:
    """A smart alarm that starts now and alerts at once."""
    app = host.app(app_id, SessionType.SMART_ALARM)
    session = ExtendedRuntimeSession(app, alarm)
    session.start_at(host.now)
    if state is not None:
        app.state = state
    assert eventually(lambda: displayed() == 1), "the notification never came"
    return session


def shown(host: EmbeddedHost, session: ExtendedRuntimeSession) -> int | None:
    """The id of the session's notification, if one is shown."""
    alerts = host.backends.alerts
    assert isinstance(alerts, LinuxAlerts)
    return alerts.notifications.shown().get(session.session_id)


def shown_now(host: EmbeddedHost, session: ExtendedRuntimeSession) -> int:
    notification = shown(host, session)
    assert notification is not None
    return notification


# ---------------------------------------------------------------------- sound


def test_the_alarm_is_heard_while_it_rings_and_silent_once_it_ends(host: EmbeddedHost) -> None:
    with Monitor() as monitor:
        monitor.wait_quiet()
        alarm = Alarm(every=1.0)
        session = ring(host, "org.example.heard", alarm)
        ringing = rms(monitor.span(0.0, 2.0))
        session.invalidate()  # the app is ACTIVE: it may end its alarm
        assert alarm.ended.wait(5)
        after = rms(monitor.span(0.3, 1.0))
    print(f"RMS while ringing {ringing:.4f}, after the end {after:.5f}")
    assert ringing > 0.01
    assert after < 0.001
    assert alarm.plays >= 2


# ---------------------------------------------------------------------- the notification


def test_dunst_shows_one_notification_updated_at_each_repetition(host: EmbeddedHost) -> None:
    alarm = Alarm(every=1.0)
    session = ring(host, "org.example.shown", alarm)
    first = shown_now(host, session)
    counts = []
    for _ in range(4):
        time.sleep(0.8)
        counts.append(displayed())
    assert alarm.plays >= 3
    assert counts == [1, 1, 1, 1]
    assert shown(host, session) == first
    session.invalidate()
    assert alarm.ended.wait(5)
    assert eventually(lambda: displayed() == 0)  # withdrawn with the session
    (latest, *_) = history()
    assert (latest["id"], latest["summary"], latest["appname"]) == (
        first,
        "Wake up",
        "org.example.shown",
    )
    assert latest["body"] == "Alarm of org.example.shown"


def test_stop_in_dunsts_menu_ends_the_session_with_none(host: EmbeddedHost) -> None:
    alarm = Alarm()
    session = ring(host, "org.example.stop", alarm, ApplicationState.BACKGROUND)
    choose("stop", shown_now(host, session))
    assert alarm.ended.wait(5)
    assert alarm.reason is InvalidationReason.NONE
    assert session.state is SessionState.INVALID


def test_dismissing_the_notification_ends_the_session_with_none(host: EmbeddedHost) -> None:
    alarm = Alarm()
    session = ring(host, "org.example.dismiss", alarm, ApplicationState.BACKGROUND)
    dunstctl("close")  # NotificationClosed(id, 2): the user dismissed it
    assert alarm.ended.wait(5)
    assert alarm.reason is InvalidationReason.NONE
    assert session.state is SessionState.INVALID


def test_open_makes_the_app_active_and_the_alarm_rings_on(host: EmbeddedHost) -> None:
    alarm = Alarm(every=1.0)
    session = ring(host, "org.example.open", alarm, ApplicationState.BACKGROUND)
    first = shown_now(host, session)
    choose("open", first)
    assert eventually(lambda: session.app.state is ApplicationState.ACTIVE)
    assert session.state is SessionState.RUNNING
    # acted on, it is gone; the next repetition shows the alarm again
    assert eventually(lambda: shown(host, session) not in (None, first), 3)
    assert eventually(lambda: displayed() == 1)
    session.invalidate()  # the app, now active, ends its alarm
    assert alarm.ended.wait(5)
    assert alarm.reason is InvalidationReason.NONE


def test_a_notification_closed_by_someone_else_comes_back_at_the_next_repetition(
    host: EmbeddedHost,
) -> None:
    alarm = Alarm(every=1.0)
    session = ring(host, "org.example.closed", alarm, ApplicationState.BACKGROUND)
    first = shown_now(host, session)
    Bus.session().call(close_notification(first))  # another client: NotificationClosed(id, 3)
    assert eventually(lambda: displayed() == 0, 1)
    assert eventually(lambda: displayed() == 1, 3)
    assert shown(host, session) not in (None, first)
    assert session.state is SessionState.RUNNING
    choose("stop", shown_now(host, session))
    assert alarm.ended.wait(5)


# ---------------------------------------------------------------------- services that go away


def restart_services() -> None:
    done = subprocess.run(
        [str(ROOT / "scripts" / "services"), "start"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture
def restore(desktop: None) -> Iterator[None]:
    """Start the services again after a test that stopped one (root: `scripts/services`)."""
    if os.geteuid() != 0:
        pytest.skip("stopping and restarting the services needs root (scripts/services start)")
    try:
        yield
    finally:
        restart_services()
        services.require("pulseaudio", "notifications")


def alerts_row() -> str:
    text, _ = diagnose()
    (row,) = [line for line in text.splitlines() if "linux-alerts" in line]
    return row


def ends_on_time(limit: float, stop_service: Callable[[], None]) -> tuple[Alarm, float, float]:
    """A smart alarm of `limit` seconds ringing every second; `stop_service` runs after its
    first alert. When it ended after its start (s), and how long closing the host took."""
    host = EmbeddedHost(policy=short_policy(smart_alarm=limit))
    alarm = Alarm(every=1.0)
    started = time.monotonic()
    try:
        ring(host, "org.example.lost", alarm, ApplicationState.BACKGROUND)
        stop_service()
        assert alarm.ended.wait(limit + 5)
        ended = time.monotonic() - started
    finally:
        closing = time.monotonic()
        host.close()
    return alarm, ended, time.monotonic() - closing


def test_without_the_sound_server_the_alarm_still_ends_on_time(restore: None) -> None:
    def stop_pulseaudio() -> None:
        subprocess.run(["pulseaudio", "--kill"], check=True, timeout=10)

    alarm, ended, closing = ends_on_time(3.0, stop_pulseaudio)
    assert alarm.reason is InvalidationReason.EXPIRED
    assert 2.9 < ended < 4.0
    assert closing < 1.0
    row = alerts_row()
    assert "missing: sound (libcanberra: cannot reach the sound server" in row
    assert "works: notification (dunst" in row


def test_without_the_notification_server_the_alarm_is_still_heard_and_ends_on_time(
    restore: None,
) -> None:
    def stop_dunst() -> None:
        pid = int((Path(os.environ["XRS_SERVICES_DIR"]) / "pid" / "dunst").read_text())
        os.kill(pid, signal.SIGTERM)

    with Monitor() as monitor:
        alarm, ended, closing = ends_on_time(3.0, stop_dunst)
        row = alerts_row()
    assert alarm.reason is InvalidationReason.EXPIRED
    assert 2.9 < ended < 4.0
    assert closing < 1.0
    assert "missing: notification (no notification server:" in row
    assert "works: sound (the freedesktop sound theme" in row
    heard = monitor.heard()
    assert rms(heard) > 0.01


def test_a_frozen_notification_server_delays_nothing(restore: None) -> None:
    """dunst stopped with SIGSTOP: every call to it times out (1 s), and still the session ends
    on time and the host closes without waiting on it for long."""
    pid = int((Path(os.environ["XRS_SERVICES_DIR"]) / "pid" / "dunst").read_text())
    try:
        alarm, ended, closing = ends_on_time(3.0, lambda: os.kill(pid, signal.SIGSTOP))
        row = alerts_row()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert alarm.reason is InvalidationReason.EXPIRED
    assert 2.9 < ended < 4.0
    assert closing < 6.0  # at most the host's effect timeout for the pending withdrawal
    assert "missing: notification (no notification server:" in row
