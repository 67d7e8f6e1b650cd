"""The daemon's configuration file: what a user writes becomes the policy, and what the daemon
would misread is refused with the file, the key and what is allowed."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from extended_runtime import App, ExtendedRuntimeSession, Policy, SessionType
from extended_runtime._core.clock import SystemClock
from extended_runtime._daemon.config import ConfigError, load_policy

from .daemons import Daemon


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_no_file_is_the_default_policy(tmp_path: Path) -> None:
    assert load_policy(tmp_path / "absent.toml") == Policy()


def test_limits_budgets_and_knobs_become_the_policy(tmp_path: Path) -> None:
    policy = load_policy(
        write(
            tmp_path,
            "will-expire-lead = 30\nsilent-alarm-limit = 5\nbattery-low-percent = 15\n"
            "max-launches = 2\n"
            "[limits]\nself-care = 300\nmindfulness = 1800.5\n"
            '[budgets]\nfrontmost = 2\nbackground = "none"\n',
        )
    )
    assert policy.limit(SessionType.SELF_CARE) == timedelta(seconds=300)
    assert policy.limit(SessionType.MINDFULNESS) == timedelta(seconds=1800.5)
    assert policy.limit(SessionType.SMART_ALARM) == timedelta(minutes=30)  # untouched
    assert policy.cpu_budget(SessionType.SELF_CARE) == 2.0
    assert math.isinf(policy.cpu_budget(SessionType.PHYSICAL_THERAPY))
    assert policy.will_expire_lead == timedelta(seconds=30)
    assert policy.silent_alarm_limit == 5
    assert policy.max_launches == 2
    assert policy.battery_low_percent == 15.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[limits]\nself-care = 601\n", "above the type's limit"),
        ("[limits]\nnaps = 60\n", "unknown key(s) limits.naps"),
        ("[limits]\nself-care = 0\n", "limits.self-care must be above 0"),
        ("[limits]\nself-care = true\n", "must be a number"),
        ("[budgets]\nfrontmost = -1\n", "budgets.frontmost must be above 0"),
        ("[budgets]\nforeground = 1\n", "unknown key(s) budgets.foreground"),
        ("limits = 5\n", "limits must be a table"),
        ("silent-alarm-limit = 0\n", "at least 1"),
        ("max-launches = 1.5\n", "max-launches must be a whole number"),
        ("battery-low-percent = 101\n", "between 0 and 100"),
        ("will-expire-lead = nan\n", "must be a number"),
        ("sessions = 1\n", "unknown key(s) sessions"),
        ("[limits\n", "not valid TOML"),
    ],
)
def test_what_would_be_misread_is_refused_naming_the_key(
    tmp_path: Path, text: str, says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_policy(path)
    assert says in str(refused.value)
    assert str(path) in str(refused.value)


def test_the_daemon_runs_on_the_configuration_and_refuses_a_bad_one(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    config = write(tmp_path, "[limits]\nmindfulness = 90\n")
    daemon.env["XRS_CONFIG"] = str(config)
    daemon.start()
    try:
        client = daemon.client()
        app = App("org.example.calm", SessionType.MINDFULNESS, host=client)
        before = SystemClock().now()
        session = ExtendedRuntimeSession(app)
        session.start()
        after = SystemClock().now()
        client.close()
    finally:
        daemon.kill()
    expires = session.expiration_date
    assert expires is not None
    assert before + timedelta(seconds=90) <= expires <= after + timedelta(seconds=90)
    config.write_text("[limits]\nmindfulness = 9000\n")
    refused = daemon.run_to_the_end()
    assert refused.returncode == 1
    assert "limits.mindfulness" in refused.stderr
    assert "Traceback" not in refused.stderr
