"""Fixtures shared by the tests, the `misuse` marker (see `helpers.MISUSE_MATRIX`), and the
real services' environment (see `services.py`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from extended_runtime.testing import VirtualHost

from . import services
from .daemons import Daemon
from .helpers import T0, Call, Recorder

# Tests written before `helpers` existed import these from here.
__all__ = ["T0", "Call", "Recorder", "host"]


def pytest_configure(config: pytest.Config) -> None:
    # the services `scripts/services start` started: this run and its subprocesses use them
    os.environ.update(services.load())
    config.addinivalue_line(
        "markers", "misuse(row): the test pins that row of the spec's misuse matrix (2.10)"
    )
    config.addinivalue_line(
        "markers", "slow: takes several seconds of real processes (still run in CI)"
    )


@pytest.fixture
def host() -> VirtualHost:
    """A virtual host whose clock starts at `T0`, with the default policy."""
    return VirtualHost(now=T0)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A real daemon process of the test's own folders (started by `daemon.start()`), and
    every app program it ran, ended after the test."""
    made = Daemon(tmp_path)
    try:
        yield made
    finally:
        made.end_apps()
        if made.process is not None and made.process.poll() is None:
            made.kill()
