"""The real system services, as the tests see them.

`scripts/services start` (run by `.ci/run`, or by hand) starts the system bus, systemd-logind,
UPower, power-profiles-daemon, PulseAudio with a null sink and dunst, and writes `.services.env`
with the addresses. `conftest.py` loads that file into the environment at the start of a run, so
the library and every subprocess find the same services.

A test that needs a service asks `require(...)`: without the service it is skipped with the
reason and the command that starts it, unless `XRS_REQUIRE_SERVICES=1` (set by `.ci/run`), where a
missing service is a failure: CI must never pass by skipping the tests of real services.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".services.env"

#: How to check each service is up now (the file says what was started, not what still runs).
_CHECKS = {
    "system-bus": ["busctl", "--system", "--timeout=1", "list"],
    "logind": ["busctl", "--system", "--timeout=1", "status", "org.freedesktop.login1"],
    "upower": ["busctl", "--system", "--timeout=1", "status", "org.freedesktop.UPower"],
    "power-profiles": ["busctl", "--system", "--timeout=1", "status", "net.hadess.PowerProfiles"],
    "systemd-double": ["busctl", "--system", "--timeout=1", "status", "org.freedesktop.systemd1"],
    "pulseaudio": ["pactl", "info"],
    "notifications": ["dunstctl", "count"],
}


def load() -> dict[str, str]:
    """The services' environment from `.services.env` (empty when it was never started)."""
    if not ENV_FILE.is_file():
        return {}
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _up(name: str) -> bool:
    try:
        done = subprocess.run(_CHECKS[name], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def require(*names: str) -> None:
    """Skip (or, in CI, fail) unless every named service runs now."""
    missing = [name for name in names if not _up(name)]
    if not missing:
        return
    why = (
        f"needs {', '.join(missing)}: run `sudo scripts/services start` "
        f"(started: {load().get('XRS_SERVICES', 'nothing')})"
    )
    skip_or_fail(why)


def require_root(what: str) -> None:
    """Skip (or, in CI, fail) unless this process is root, as in CI: `what` needs it."""
    if os.geteuid() != 0:
        skip_or_fail(f"{what} needs root")


def skip_or_fail(why: str) -> None:
    """Skip with `why`, or fail in CI (`XRS_REQUIRE_SERVICES=1`)."""
    if os.environ.get("XRS_REQUIRE_SERVICES") == "1":
        pytest.fail(why)
    pytest.skip(why)
