"""Choosing the host of a plain `App(...)`: the daemon when one is reachable, else in-process.

Theory
------
An app should not have to know whether the user runs the daemon. The first session of a process
looks for it (`status.find_daemon`: the status file in the user's runtime folder, validated:
ours, alive, a socket, the same protocol) and connects; if none is usable, sessions run on the
embedded host in this process. The log says which was chosen, and why the daemon was not.

`XRS_HOST` forces the choice: `daemon` (fail with a clear error if none is reachable: an app that
must survive its own exit should not silently run without it), `embedded` (never look), or
`auto` (the default). A process the daemon launched for a session (`XRS_LAUNCHED_FOR`) always
connects, saying which session it was launched for.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from .._api.app import launched_for
from .._api.port import HostPort
from .._core.errors import SessionUsageError

__all__ = ["HOST_VARIABLE", "choose", "default_host"]

log = logging.getLogger("extended_runtime")

#: The environment variable that forces the host: `auto`, `daemon` or `embedded`.
HOST_VARIABLE = "XRS_HOST"

_chosen: list[HostPort] = []
_lock = threading.Lock()


def default_host() -> HostPort:
    """The process-wide host of plain apps, chosen on first use (again if it was closed)."""
    with _lock:
        if not _chosen or getattr(_chosen[0], "closed", False):
            _chosen[:] = [choose(os.environ)]
        return _chosen[0]


def choose(env: Mapping[str, str]) -> HostPort:
    """The host `env` asks for: the daemon's client, or the embedded host."""
    wanted = env.get(HOST_VARIABLE, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "daemon", "embedded"):
        raise SessionUsageError(
            f"{HOST_VARIABLE}={env.get(HOST_VARIABLE)!r} is not a host: "
            "use auto, daemon or embedded"
        )
    launched = launched_for(env)
    if wanted == "embedded" and launched is None:
        return _embedded("XRS_HOST=embedded")
    from .status import find_daemon

    status, why = find_daemon(env)
    if status is not None:
        from .client import DaemonClient, DaemonUnavailable

        try:
            client = DaemonClient(status.socket, launched_for=launched)
        except DaemonUnavailable as error:
            why = str(error)
        else:
            log.info("sessions run in the daemon (pid %d, %s)", status.pid, status.socket)
            return client
    if wanted == "daemon" or launched is not None:
        from .client import DaemonUnavailable

        raise DaemonUnavailable(
            f"{HOST_VARIABLE}=daemon, but the daemon cannot be used: {why}. Start it with "
            "`xrs daemon` (or `xrs daemon --install`)"
        )
    return _embedded(why)


def _embedded(why: str) -> HostPort:
    from .._hosts.select import default_host as embedded

    log.info("sessions run in this process (embedded host): %s", why)
    return embedded()
