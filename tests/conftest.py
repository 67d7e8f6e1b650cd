"""Fixtures shared by the tests, the `misuse` marker (see `helpers.MISUSE_MATRIX`), and the
real services' environment (see `services.py`)."""

from __future__ import annotations

import os

import pytest

from extended_runtime.testing import VirtualHost

from . import services
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
