"""Choosing backends for what a host needs, and importing nothing for what it does not."""

from __future__ import annotations

import os
import subprocess
import sys

from extended_runtime._backends.null import LoggingAlerts
from extended_runtime._backends.select import survey

#: Modules `xrs run` has no use for: it never schedules and never alerts. (psutil is not listed:
#: the session's first CPU reading needs none, but it is taken on a worker thread, which may come
#: to it after the command has started; `test_process_cpu` checks the reading itself.)
UNUSED_BY_RUN = (
    "extended_runtime._backends.linux.alerts",
    "extended_runtime._backends.linux.wakealarm",
    "extended_runtime._backends.linux.patterns",
)


def test_a_survey_of_keep_awake_alone_chooses_nothing_else() -> None:
    found = survey(needs=("keep-awake",))
    try:
        assert found.backends.keep_awake is not None
        assert found.backends.alerts is None
        assert found.backends.wake_alarm is None
        assert {c.capability for c in found.candidates} >= {"keep-awake"}
        assert not {c.capability for c in found.candidates} & {"alerts", "wake-alarm"}
    finally:
        found.backends.close()


def test_a_backend_asked_for_by_name_is_needed_whatever_the_list_says() -> None:
    found = survey(needs=("keep-awake",), prefer={"alerts": LoggingAlerts.name})
    try:
        assert isinstance(found.backends.alerts, LoggingAlerts)
        assert found.backends.wake_alarm is None
    finally:
        found.backends.close()


def test_xrs_run_imports_only_what_it_uses() -> None:
    """The full path (`xrs run` without -q; the quick path imports less, `test_quick`)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "extended_runtime", "run", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "extended_runtime._cli.run" in imported  # the listing is the real one
    assert not imported & set(UNUSED_BY_RUN)
