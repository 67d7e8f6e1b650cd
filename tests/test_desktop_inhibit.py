"""Keep-awake through the desktop's services, the fallbacks when logind will not do.

xdg-desktop-portal and org.freedesktop.ScreenSaver belong to a desktop session, which a test
machine does not run: each test starts a real, private session bus (`dbus-daemon`) and a stand-in
for both services on it (`doubles/desktop.py`), which answers as they do and writes down every
call. The D-Bus traffic, the connection and its end are real; only the service is a stand-in.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extended_runtime._backends.linux.dbus import Bus
from extended_runtime._backends.linux.desktop import PortalInhibitor, ScreenSaverInhibitor
from extended_runtime._backends.select import survey

DOUBLE = Path(__file__).resolve().parent / "doubles" / "desktop.py"


class Desktop:
    """A private session bus with the stand-in services on it."""

    def __init__(self, folder: Path) -> None:
        self.address = f"unix:path={folder}/bus"
        self.log = folder / "calls.jsonl"
        self._bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", f"--address={self.address}"],
            stdout=subprocess.DEVNULL,
        )
        _wait((folder / "bus").exists)
        self._double = subprocess.Popen([sys.executable, str(DOUBLE), self.address, str(self.log)])
        _wait(lambda: bool(self.calls()))

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def close(self) -> None:
        for process in (self._double, self._bus):
            process.terminate()
            process.wait(10)


@pytest.fixture
def desktop() -> Iterator[Desktop]:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:  # a short path for the socket
        running = Desktop(Path(folder))
        yield running
        running.close()


def _wait(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _after_ready(desktop: Desktop) -> list[dict[str, Any]]:
    return [call for call in desktop.calls() if "ready" not in call]


def test_the_portal_inhibits_suspend_and_idle_and_releases(desktop: Desktop) -> None:
    backend = PortalInhibitor(Bus(desktop.address, fds=False))
    assert backend.probe().available
    backend.hold("org.example.breathe", "mindfulness session until 08:00:00 UTC")
    backend.close()  # releases, then lets go of the connection
    inhibit, close = _after_ready(desktop)
    assert inhibit["call"] == "Inhibit"
    assert inhibit["args"] == [
        "",
        12,
        {"reason": ["s", "org.example.breathe: mindfulness session until 08:00:00 UTC"]},
    ]
    assert close["call"] == "Close"
    assert close["path"] == "/org/freedesktop/portal/desktop/request/1"


def test_the_screensaver_inhibits_with_a_cookie_and_uninhibits(desktop: Desktop) -> None:
    backend = ScreenSaverInhibitor(Bus(desktop.address, fds=False))
    backend.hold("org.example.breathe", "mindfulness session until 08:00:00 UTC")
    backend.hold("org.example.breathe", "alarm session until 08:30:00 UTC")  # a new label
    backend.close()
    calls = [(c["call"], c["args"]) for c in _after_ready(desktop)]
    assert calls == [
        ("Inhibit", ["org.example.breathe", "mindfulness session until 08:00:00 UTC"]),
        ("Inhibit", ["org.example.breathe", "alarm session until 08:30:00 UTC"]),
        ("UnInhibit", [1]),
        ("UnInhibit", [2]),
    ]


HOLDER = """
import sys
from extended_runtime._backends.linux.dbus import Bus
from extended_runtime._backends.linux.desktop import PortalInhibitor
PortalInhibitor(Bus(sys.argv[1], fds=False)).hold("org.example.killed", "alarm session")
print("held", flush=True)
input()
"""


def test_a_holder_that_dies_is_released_with_its_connection(desktop: Desktop) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), desktop.address],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    _wait(lambda: any("disconnected" in call for call in desktop.calls()))


def test_without_the_services_the_probes_say_so(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address=unix:path={folder}/bus"]
    )
    try:
        _wait((folder / "bus").exists)
        session = Bus(f"unix:path={folder}/bus", fds=False)
        for backend in (PortalInhibitor(session), ScreenSaverInhibitor(session)):
            probe = backend.probe()
            assert not probe.available
            assert probe.detail.endswith("is not on the session bus")
        session.close()
    finally:
        bus.terminate()
        bus.wait(10)


def test_without_logind_the_portal_is_chosen(
    desktop: Desktop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/system_bus_socket")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.address)
    found = survey(everything=True)
    found.backends.close()
    rows = [(c.probe.name, c.probe.available, c.chosen) for c in found.candidates
            if c.capability == "keep-awake"]  # fmt: skip
    assert rows == [
        ("logind", False, False),
        ("desktop-portal", True, True),
        ("screensaver", True, False),
    ]
    assert found.working("keep-awake")
