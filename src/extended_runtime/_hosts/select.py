"""Choosing the host: the one place that decides where sessions of a plain `App(...)` run.

Today the default host is the embedded host, in this process. When the daemon exists, this is
where the client will pick it when one runs and fall back to the embedded host otherwise.
"""

from __future__ import annotations

import threading

from .embedded import EmbeddedHost

__all__ = ["default_host"]

_hosts: list[EmbeddedHost] = []  # the default host, once created
_lock = threading.Lock()


def default_host() -> EmbeddedHost:
    """The process-wide default host, created on first use."""
    with _lock:
        if not _hosts or _hosts[0].closed:
            _hosts[:] = [EmbeddedHost()]
        return _hosts[0]
