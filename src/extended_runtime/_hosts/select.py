"""Choosing the host: the one place that decides where sessions run.

Today the default host is the embedded host, in this process. When the daemon exists, this is
where the client will pick it when one runs and fall back to the embedded host otherwise.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Host

__all__ = ["default_host"]

_hosts: list[Host] = []  # the default host, once created
_lock = threading.Lock()


def default_host() -> Host:
    """The process-wide default host, created on first use."""
    with _lock:
        if not _hosts:
            from .embedded import EmbeddedHost

            _hosts.append(EmbeddedHost())
        return _hosts[0]
