"""The daemon's host: the embedded host's engine and loop, serving apps in other processes.

Theory
------
`DaemonHost` is an `EmbeddedHost` (the same engine, one-timer loop, effect channels and Linux
backends) whose session links are `RemoteLink`s: a link belongs to one client connection, and
*mirroring* an event into it means pushing the event to that connection, under the host's lock,
so the client sees every event a request caused before the request's reply (the connection's
outbox keeps the order). Delivering delegate calls and running repeat handlers happen in the
client, which mirrors each pushed event into its own session object and posts its delegate call
there; so the daemon's `_post` has nothing left to do but run the (empty) remote deliveries.

An app is *alive* while at least one connection has registered it. When its last connection
closes (the app exited, or was killed: the socket closes with the process), the engine hears
`app_exited`, and its sessions go on as DESIGN.md's "App exits" row says. A new connection of
the app is a launch (`app_launched`), which hands it the sessions it has no object for.

What the daemon keeps outlives it: the store (SQLite) holds every session's record and the
apps' declarations. At start-up `recover` registers the known apps as absent, puts every
scheduled session back on its date (a date that passed while the daemon was down starts at once,
late, as after a suspend) and ends the sessions that were running with ERROR, UNKNOWN: their
budget and their process cannot be vouched for across the restart. Stopping the daemon does not
end its sessions (they wait in the store for the next daemon); the keep-awake dies with the
process, as it must.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from .._api.port import AppRecord, SessionLink
from .._backends.select import Backends
from .._core.clock import Clock
from .._core.enums import (
    ApplicationState,
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from .._core.events import (
    AlertPlayed,
    Event,
    Output,
    SessionEvent,
    SessionHandedOver,
    SessionInvalidated,
)
from .._core.policy import Policy
from .._core.records import FOLDED, SessionRecord
from .._hosts.base import always_spaced, keep_record
from .._hosts.effects import Job
from .._hosts.embedded import EmbeddedHost

if TYPE_CHECKING:
    from .._backends.sqlite import SqliteStore

__all__ = ["DaemonHost", "Peer", "RemoteLink"]

log = logging.getLogger("extended_runtime")

#: How long staged records and audit events may wait for their commit (seconds); a scheduled
#: session does not wait: its request commits before it is acknowledged.
COMMIT_SPACING = 0.2


class Peer(Protocol):
    """A client connection, as the host sees it."""

    pid: int
    launched_for: str | None
    #: Connections in the order they were accepted.
    serial: int

    def push(self, event: SessionEvent) -> None:
        """Queue `event` for the client (called under the host's lock; never blocks)."""


class RemoteLink:
    """A session object that lives in a client process, reached through its connection."""

    __slots__ = ("__weakref__", "_detached", "app", "peer", "session_id")

    def __init__(self, session_id: str, app: AppRecord, peer: Peer) -> None:
        self.session_id = session_id
        self.app = app
        self.peer = peer
        self._detached = False

    @property
    def loop(self) -> object | None:
        return None

    @property
    def owner(self) -> object:
        return self

    @property
    def detached(self) -> bool:
        return self._detached

    def mirror(self, event: SessionEvent) -> None:
        if not self._detached:
            self.peer.push(event)

    def deliver(self, event: SessionEvent) -> None:
        """The client delivers the delegate call of every event it is pushed."""

    def deliver_backlog(self) -> None:
        """The client keeps the backlog of a handed-over session."""

    def repeat_answer(self, played: HapticType, default: float) -> tuple[float | None, HapticType]:
        """Never asked: the client runs the repeat handler and answers with `NextAlert`."""
        return default, played

    def detach(self) -> None:
        self._detached = True


class DaemonHost(EmbeddedHost):
    """The engine of the per-user daemon, serving many apps over their connections."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        backends: Backends,
        store: SqliteStore | None = None,
        clock: Clock | None = None,
        effect_timeout: float = 5.0,
    ) -> None:
        super().__init__(policy, clock=clock, backends=backends, effect_timeout=effect_timeout)
        self._app_store = store
        if store is not None:
            self._effects.latest(
                "commit",
                lambda _: Job("commit", store.name, store.flush),
                spaced=always_spaced,
                spacing=COMMIT_SPACING,
            )
        #: The connections that registered each app (alive while any does).
        self._holders: dict[str, set[Peer]] = {}
        #: The apps' processes by connection, for CPU budgets and `xrs status`.
        self.pids: dict[str, int] = {}

    # ------------------------------------------------------------------ recovery

    def recover(self, apps: dict[str, dict[str, Any]], live: list[SessionRecord]) -> int:
        """Take back what a previous daemon left in the store (see the module's theory);
        returns how many scheduled sessions wait again."""
        waiting = 0

        def command() -> list[Output]:
            nonlocal waiting
            now = self.now
            for app_id, body in apps.items():
                self._restore_app(app_id, body)
            outputs: list[Output] = []
            for record in live:
                if record.app_id not in self._apps:
                    self._restore_app(record.app_id, {})
                if record.state is SessionState.SCHEDULED and record.start_date is not None:
                    outputs += self.engine.restore_scheduled(
                        record.session_id, record.app_id, record.start_date, now
                    )
                    waiting += 1
                else:
                    outputs.append(_ended_by_restart(record, now))
            return outputs

        self._command(command)
        return waiting

    def _restore_app(self, app_id: str, body: dict[str, Any]) -> None:
        mode = body.get("mode")
        launch = body.get("launch")
        record = AppRecord(
            app_id,
            SessionType(mode) if isinstance(mode, str) else None,
            tuple(str(part) for part in launch) if isinstance(launch, list) else None,
            ApplicationState.BACKGROUND,
        )
        record.host = self
        self._apps[app_id] = record
        self.engine.register_app(app_id, record.mode, state=record.state, tree=f"app:{app_id}")
        self.engine.app_absent(app_id)

    # ------------------------------------------------------------------ connections

    def connect_app(self, record: AppRecord, peer: Peer) -> AppRecord:
        """A connection registers an app: the first connection of an absent app launches it."""

        def command() -> list[Output]:
            known = self._apps.get(record.app_id)
            holders = self._holders.setdefault(record.app_id, set())
            outputs: list[Output] = []
            if known is None:
                known = self.register_app(record)
            elif not holders:
                self._redeclare(known, record)
                outputs = self.engine.app_launched(
                    record.app_id, self.now, by_host=peer.launched_for is not None
                )
            elif not known.same_declaration(record):
                self.register_app(record)  # raises SessionUsageError naming both
            holders.add(peer)
            self.pids[record.app_id] = peer.pid
            known.state = record.state
            outputs += self.engine.set_app_state(record.app_id, record.state, self.now)
            self._keep_app(known)
            return outputs

        self._command(command)
        return self._apps[record.app_id]

    def _redeclare(self, known: AppRecord, record: AppRecord) -> None:
        """An absent app comes back, possibly with a new declaration (a new version)."""
        known.mode, known.launch = record.mode, record.launch
        self.engine.register_app(
            known.app_id, known.mode, launchable=self._can_launch(known), tree=self._tree(known)
        )

    def _keep_app(self, app: AppRecord) -> None:
        store = self._app_store
        if store is None:
            return
        body: dict[str, object] = {
            "mode": None if app.mode is None else app.mode.value,
            "launch": None if app.launch is None else list(app.launch),
        }
        keep = partial(store.put_app, app.app_id, body, self.now)
        self._effects.submit("store", Job("store", store.name, keep, app.app_id))

    def disconnect(self, peer: Peer, app_ids: list[str]) -> None:
        """A connection closed: each app it was the last holder of has exited."""

        def command() -> list[Output]:
            outputs: list[Output] = []
            for app_id in app_ids:
                holders = self._holders.get(app_id)
                if holders is None:
                    continue
                holders.discard(peer)
                if holders:
                    continue
                self._drop_links(app_id)
                self.pids.pop(app_id, None)
                outputs += self.engine.app_exited(app_id, self.now)
            return outputs

        self._feed(command)

    def link_of(self, session_id: str) -> SessionLink | None:
        """The link that hears a live session's events, if any."""
        with self._lock:
            return self._links.get(session_id)

    def link_for(self, session_id: str, app: AppRecord, peer: Peer) -> SessionLink:
        """The link through which `peer` speaks of a session: its own, or a new one."""
        with self._lock:
            link = self._links.get(session_id)
        if isinstance(link, RemoteLink) and link.peer is peer:
            return link
        return RemoteLink(session_id, app, peer)

    # ------------------------------------------------------------------ durability

    def _submit_audit(self, event: Event) -> None:
        """Every event is staged in the store at once, under the lock (staging is in memory),
        and committed soon after on the commit channel, or at once by `durable`."""
        store = self._app_store
        if store is not None:
            if isinstance(event, FOLDED):
                keep_record(store, event)
            store.record(event)
            self._effects.set("commit", True)
        super()._submit_audit(event)

    def durable(self) -> str | None:
        """Commit what is staged (shared with concurrent callers); `None` once it is on disk,
        else what went wrong (logged: the session still rings while the daemon runs)."""
        store = self._app_store
        if store is None:
            return None
        try:
            store.flush()
        except Exception as error:
            log.error("the store could not save a scheduled session: %s", error)
            return str(error)
        return None

    # ------------------------------------------------------------------ requests of the user

    def answer_alert(
        self, session_id: str, sequence: int, delay: float | None, haptic: HapticType
    ) -> None:
        """A client's repeat handler answered."""
        self._command(
            lambda: self.engine.set_next_alert(session_id, sequence, delay, haptic, self.now)
        )

    def user_stop(self, session_id: str) -> bool:
        """`xrs stop ID`: whether a live session had that id."""
        with self._lock:
            live = self.engine.session_state(session_id) in (
                SessionState.SCHEDULED,
                SessionState.RUNNING,
            )
        self._command(lambda: self.engine.user_stop(session_id, self.now))
        return live

    def allow(self, app_id: str) -> None:
        """The user allows an app's alarms again."""
        self._command(lambda: self.engine.allow_alarms(app_id, self.now))

    def sessions(self) -> list[dict[str, Any]]:
        """What runs and what is scheduled, for `xrs status`."""
        with self._lock:
            rows = self.engine.sessions()
        return [
            {
                "session_id": sid,
                "app_id": app_id,
                "session_type": None if kind is None else kind.value,
                "state": int(state),
                "start_date": start,
                "expiration_date": expires,
            }
            for sid, app_id, kind, state, start, expires in rows
        ]

    # ------------------------------------------------------------------ host hooks

    def _post(self, at: datetime, call: Callable[[], None], loop: object | None) -> None:
        call()  # remote deliveries are pushes already made; nothing waits on a thread here

    def _ask_repeat(self, link: SessionLink, event: AlertPlayed) -> None:
        link.mirror(event)  # the client runs the repeat handler and answers with NextAlert

    def _on_handed_over(self, event: SessionHandedOver) -> None:
        holders = self._holders.get(event.app_id)
        app = self._apps.get(event.app_id)
        if not holders or app is None:
            return
        peer = _newest(holders, event.session_id)
        link = RemoteLink(event.session_id, app, peer)
        self._attach(link)
        if event.state is SessionState.INVALID:
            del self._links[event.session_id]
        peer.push(event)

    def _stop_engine(self, message: str) -> None:
        """Sessions outlive the daemon: they wait in the store for the next one."""
        log.info("the daemon stops (%s); its sessions wait in the store", message)


def _newest(holders: set[Peer], session_id: str) -> Peer:
    """The connection that receives a handed-over session: the one the daemon launched for
    it, else the one registered last."""
    for peer in holders:
        if peer.launched_for == session_id:
            return peer
    return max(holders, key=lambda peer: peer.serial)


def _ended_by_restart(record: SessionRecord, now: datetime) -> SessionInvalidated:
    """A session that ran when the previous daemon stopped ends: neither its budget nor its
    process can be vouched for across the restart."""
    return SessionInvalidated(
        at=now,
        app_id=record.app_id,
        session_id=record.session_id,
        state=SessionState.INVALID,
        session_type=record.session_type,
        previous_state=record.state,
        reason=InvalidationReason.ERROR,
        error_code=ErrorCode.UNKNOWN,
        message=f"the daemon stopped while it ran (pid {os.getpid()} took over)",
    )
