"""Running the daemon: claim, recover, listen, announce; on a signal, the reverse.

Theory
------
Start-up is ordered so that a client never finds a daemon that cannot serve it:

1. the runtime folder is made private (0700) and the single-instance lock taken (a second
   daemon of the same user says who runs and exits);
2. the configuration is read (`config.toml`: limits and budgets; one the daemon would
   misread stops it with a message naming the key), the store is opened (a newer schema, or a
   file that is not a database, stops the daemon with the store's message) and what the last
   daemon left is recovered into the engine;
3. the socket is bound (0600) and served;
4. only then is the status file written, atomically: its presence says "ready".

What recovery makes lives as long as the daemon and is kept out of the garbage collector's
passes; while the daemon serves, its full passes wait for a gap between timers (`interpreter`).

SIGTERM and SIGINT stop it in the reverse order: the status file goes first (new clients fall
back or wait), then the socket and its connections, then the host (its keep-awake released,
its timer stopped) and the store, committed and closed. Sessions are not ended: scheduled ones
wait in the store for the next daemon. A SIGKILL skips all of this, and nothing is lost either:
every acknowledged schedule was committed, the logind lock dies with the process, and the next
daemon replaces the stale socket and status file.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import FrameType

from .._core.clock import SystemClock
from .._core.policy import Policy
from . import paths
from .interpreter import quiet_collections, recovering
from .status import (
    PROTOCOL_VERSION,
    DaemonStatus,
    claim_single_instance,
    package_version,
    remove_status,
    write_status,
)

__all__ = ["serve"]

log = logging.getLogger("extended_runtime")


def serve(
    env: Mapping[str, str] | None = None,
    *,
    policy: Policy | None = None,
    stop: threading.Event | None = None,
    ready: Callable[[DaemonStatus], None] | None = None,
    prefer: Mapping[str, str] | None = None,
) -> int:
    """Run the daemon until `stop` is set or SIGTERM / SIGINT arrives; returns an exit status.
    `prefer`: the backend to use for some capabilities (`xrs daemon --backend`), by name."""
    from .._backends.select import survey
    from .._backends.sqlite import SqliteStore
    from .config import load_policy
    from .cpu import PeerCpu
    from .host import DaemonHost
    from .server import Server

    stop = stop if stop is not None else threading.Event()
    if policy is None:
        policy = load_policy(paths.config_path(env))
    runtime = paths.ensure_private_dir(paths.runtime_dir(env))
    lock = claim_single_instance(runtime)
    try:
        paths.ensure_private_dir(paths.state_dir(env))
        pids: dict[str, int] = {}
        chosen = survey(prefer=prefer).backends
        backends = replace(chosen, store=None, cpu=PeerCpu(pids.get))
        with recovering():
            store = SqliteStore(paths.database_path(env), audit_commits=False)
            host = DaemonHost(policy, backends=backends, store=store, pids=pids)
            waiting = host.recover(store.apps(), *store.recovery())
        log.info("recovered %d scheduled sessions from %s", waiting, paths.database_path(env))
        server = Server(host, str(paths.socket_path(env)))
        server.listen()
        status = DaemonStatus(
            pid=os.getpid(),
            socket=server.path,
            protocol=PROTOCOL_VERSION,
            version=package_version(),
            started_at=SystemClock().now(),
        )
        status_file = paths.status_path(env)
        write_status(status_file, status)
        log.info("the daemon (pid %d) serves %s", status.pid, server.path)
        if ready is not None:
            ready(status)
        with quiet_collections(), _stopping_on_signals(stop):
            stop.wait()
        log.info("the daemon stops")
        remove_status(status_file, status.pid)
        server.close()
        host.close()
        store.close()
        return 0
    finally:
        os.close(lock)


class _stopping_on_signals:
    """SIGTERM and SIGINT set `stop` while the block runs (main thread only)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._old: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGTERM, signal.SIGINT):
            self._old[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self._stop.set()

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._old.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
