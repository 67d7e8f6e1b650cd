"""Fixtures shared by the tests, and the `misuse` marker (see `helpers.MISUSE_MATRIX`)."""

from __future__ import annotations

import pytest

from extended_runtime.testing import VirtualHost

from .helpers import T0, Call, Recorder

# Tests written before `helpers` existed import these from here.
__all__ = ["T0", "Call", "Recorder", "host"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "misuse(row): the test pins that row of the spec's misuse matrix (2.10)"
    )


@pytest.fixture
def host() -> VirtualHost:
    """A virtual host whose clock starts at `T0`, with the default policy."""
    return VirtualHost(now=T0)
