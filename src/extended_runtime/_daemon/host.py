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

What the daemon keeps outlives it: the store (SQLite) holds every session's record, the apps'
declarations and the user's answers about them. At start-up `recover` registers the known apps
as absent (with their answers) and puts every scheduled session back on its date (a date that
passed while the daemon was down starts at once, late, as after a suspend). Sessions that were
running wait `RECLAIM_GRACE` seconds for the process that holds them, which reconnects as soon
as the new daemon serves, to claim them back (`reclaim`): they run on to their expiration date,
their budget counted all along, or end EXPIRED if it passed; the ones nobody claims end with
ERROR, UNKNOWN. A scheduled session claimed back is its process's own again, so its start goes
to that process rather than being handed over. Stopping the daemon does not end its sessions
(they wait in the store for the next daemon); the keep-awake dies with the process, as it must.

Apps the user declares (`declare`, `xrs apps register`) have a command the daemon runs when one
of their alarms is due and they are not running, if the user allowed it (`_launch`), with
`XRS_LAUNCHED_FOR` naming the session; the new process connects and is handed it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .._api.app import LAUNCHED_FOR
from .._api.port import AppRecord, SessionLink
from .._backends.select import Backends
from .._backends.threads import start_thread
from .._core.clock import Clock, as_utc
from .._core.codec import decode_event, encode_event
from .._core.engine import KeptApp
from .._core.enums import (
    FRONTMOST_TYPES,
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from .._core.events import (
    AlarmEndedSilently,
    AlarmsAllowed,
    AlarmsDisabled,
    AlertPlayed,
    AutoLaunchAnswered,
    Event,
    Output,
    SessionEvent,
    SessionHandedOver,
    SessionInvalidated,
)
from .._core.handover import Undelivered
from .._core.policy import Policy
from .._core.records import FOLDED, SessionRecord
from .._hosts.base import CannotLaunch, keep_record
from .._hosts.effects import Job, spaced_by
from .._hosts.embedded import EmbeddedHost
from .interpreter import collect_if_due

if TYPE_CHECKING:
    from .._backends.sqlite import SqliteStore

__all__ = ["DaemonHost", "Manifest", "Peer", "RemoteLink"]

log = logging.getLogger("extended_runtime")

#: How many ended sessions the daemon remembers, for an `invalidate()` that crossed the ending
#: on its way (it comes within one round trip; ten thousand is far more than enough).
ENDED_KEPT = 10_000

#: How long sessions that ran when the last daemon stopped wait for their process to claim them
#: back (seconds): it reconnects as soon as the new daemon serves.
RECLAIM_GRACE = 10.0

#: The app-level events that change what the store keeps of an app.
_APP_ANSWERS = (AlarmEndedSilently, AlarmsAllowed, AlarmsDisabled, AutoLaunchAnswered)

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
        pids: dict[str, int] | None = None,
    ) -> None:
        """`pids`: where the host keeps each connected app's process id (shared with the CPU
        source that reads those processes, `cpu.PeerCpu`)."""
        super().__init__(policy, clock=clock, backends=backends, effect_timeout=effect_timeout)
        self._app_store = store
        if store is not None:
            self._effects.latest(
                "commit",
                lambda _: Job("commit", store.name, store.flush),
                spacing=spaced_by(COMMIT_SPACING),
            )
        #: The connections that registered each app (alive while any does).
        self._holders: dict[str, set[Peer]] = {}
        #: Sessions that ran when the last daemon stopped, until their process claims them
        #: back or `RECLAIM_GRACE` passes.
        self._reclaimable: dict[str, SessionRecord] = {}
        self._unclaimed = threading.Condition()
        #: The sessions that ended last, oldest first (a late `invalidate()` has no effect).
        self._ended: dict[str, None] = {}
        #: Sessions handed to a connection that has not set their delegate yet: it, and the app.
        self._handed_to: dict[str, tuple[Peer, str]] = {}
        #: The working folder of each app the user declared with one (`xrs apps register`).
        self._cwd: dict[str, str] = {}
        #: The endings each app had not heard when it was last kept (`_keep_backlog`).
        self._kept_backlog: dict[str, tuple[str, ...]] = {}
        #: The apps' processes by connection, for CPU budgets and `xrs status`.
        self.pids: dict[str, int] = {} if pids is None else pids

    # ------------------------------------------------------------------ recovery

    def recover(
        self,
        apps: dict[str, dict[str, Any]],
        scheduled: list[tuple[str, str, datetime]],
        running: list[SessionRecord],
    ) -> int:
        """Take back what a previous daemon left in the store (see the module's theory): its
        apps, its scheduled sessions as (session id, app id, start date) and the records of
        the other live ones (`SqliteStore.recovery`); returns how many scheduled sessions wait
        again."""

        def command() -> list[Output]:
            now = self.now
            read: dict[int, _Body] = {}
            kept = [self._restored(app_id, body, read) for app_id, body in apps.items()]
            known = self._apps
            unknown = dict.fromkeys(a for _, a, _ in scheduled if a not in known)
            unknown |= dict.fromkeys(r.app_id for r in running if r.app_id not in known)
            kept += [self._restored(app_id, {}) for app_id in unknown]
            outputs: list[Output] = []
            alarms: list[SessionRecord] = []
            for record in running:
                if not _resumable(record):
                    outputs.append(_ended_by_restart(record, now))
                elif record.session_type is SessionType.SMART_ALARM:
                    alarms.append(record)  # rung at once: an alarm is never silently lost
                else:
                    self._reclaimable[record.session_id] = record
            outputs += self.engine.restore(kept, scheduled, now)
            for record in alarms:
                outputs += self._resume(record, now, warned=True)
            return outputs

        self._command(command)
        if self._reclaimable:
            start_thread(self._end_unclaimed, name="xrs-reclaim")
        return self.engine.scheduled_count()

    def _end_unclaimed(self) -> None:
        """After `RECLAIM_GRACE`, the sessions no process claimed back end (ERROR, UNKNOWN)."""
        with self._unclaimed:
            self._clock.wait(self._unclaimed, RECLAIM_GRACE)
        if self._stopping:
            return  # they wait in the store for the next daemon

        def command() -> list[Output]:
            left, self._reclaimable = self._reclaimable, {}
            return [_ended_by_restart(record, self.now) for record in left.values()]

        self._feed(command)

    def reclaim(self, peer: Peer, app: AppRecord, session_id: str, *, warned: bool) -> str:
        """The process that holds a session takes it back after this daemon started in the
        last one's place: `scheduled` (it waits for its date, this process's own again),
        `running` (it runs on, its budget counted all along), or `gone` (it ended meanwhile,
        or is unknown: the process ends it itself)."""
        answer = "gone"

        def command() -> list[Output]:
            nonlocal answer
            link = RemoteLink(session_id, app, peer)
            if self.engine.reclaim_waiting(session_id, app.app_id):
                self._attach(link)
                answer = "scheduled"
                return []
            held = self._links.get(session_id)
            if isinstance(held, RemoteLink) and held.peer is peer:
                answer = "running"  # an alarm the daemon rang: handed over at registration
                return []
            record = self._reclaimable.get(session_id)
            if record is None or record.app_id != app.app_id:
                return []
            del self._reclaimable[session_id]
            self._attach(link)
            answer = "running"
            return self._resume(record, self.now, warned=warned)

        self._command(command)
        return answer

    def _restored(
        self, app_id: str, body: dict[str, Any], read: dict[int, _Body] | None = None
    ) -> KeptApp:
        """The app a store's body describes, known again to this host (with no process).
        `read`: the bodies read so far, by identity (apps with one body share its dict)."""
        known = None if read is None else read.get(id(body))
        if known is None:
            known = _read_body(app_id, body)
            if read is not None:
                read[id(body)] = known
        mode, launch, cwd, answers = known
        if answers[4]:
            self._kept_backlog[app_id] = _ids(answers[4])
        record = AppRecord(app_id, mode, launch, ApplicationState.BACKGROUND)
        record.host = self
        self._apps[app_id] = record
        if cwd is not None:
            self._cwd[app_id] = cwd
        return KeptApp(app_id, mode, launch is not None, *answers)

    def _resume(self, record: SessionRecord, now: datetime, *, warned: bool) -> list[Output]:
        assert record.session_type is not None and record.started_at is not None  # `_resumable`
        return self.engine.resume_running(
            record.session_id,
            record.app_id,
            record.session_type,
            now,
            started_at=record.started_at,
            expires_at=record.expiration_date,
            warned=warned,
        )

    def declare(self, manifest: Manifest) -> None:
        """`xrs apps register`: the user declares an app the daemon may launch (its mode,
        command and working folder); an app already known takes the new declaration."""

        def command() -> list[Output]:
            app_id = manifest.app_id
            if manifest.cwd is not None:
                self._cwd[app_id] = manifest.cwd
            else:
                self._cwd.pop(app_id, None)
            known = self._apps.get(app_id)
            if known is None:
                record = AppRecord(
                    app_id, manifest.mode, manifest.launch, ApplicationState.BACKGROUND
                )
                record.host = self
                self._apps[app_id] = record
                kept = KeptApp(app_id, manifest.mode, manifest.launch is not None)
                outputs = self.engine.restore([kept], [], self.now)
            else:
                known.mode, known.launch = manifest.mode, manifest.launch
                self._reregister(known)
                outputs = []
            self._keep_app(app_id)
            return outputs

        self._command(command)

    def forget(self, app_id: str) -> bool:
        """`xrs apps remove`: the daemon forgets an app's declaration; it stays known (and
        its sessions go on) while a process of it is connected. Whether it was declared."""
        with self._lock:
            declared = self._app_store is not None and self._app_store.get_app(app_id) is not None
            self._cwd.pop(app_id, None)
        if self._app_store is not None:
            self._app_store.delete_app(app_id)
        return declared

    def set_policy(self, app_id: str, action: str) -> None:
        """`xrs apps ACTION APP` (`protocol.PolicyAction`)."""
        engine = self.engine

        def command() -> list[Output]:
            if app_id not in self._apps:
                raise ValueError(
                    f"no app {app_id!r} is known to the daemon: `xrs apps list` shows them, "
                    "`xrs apps register` declares one"
                )
            now = self.now
            if action == "allow":
                outputs = [
                    *engine.set_approved(app_id, True, now),
                    *engine.allow_alarms(app_id, now),
                ]
            elif action == "deny":
                outputs = engine.set_approved(app_id, False, now)
            elif action == "disable-alarms":
                outputs = engine.set_alarms_disabled(app_id, True, now)
            elif action in ("allow-launch", "deny-launch"):
                outputs = engine.answer_auto_launch(app_id, action == "allow-launch", now)
            elif action == "reset":
                outputs = engine.reset_app(app_id, now)
            else:
                raise ValueError(
                    f"unknown app policy {action!r}: allow, deny, disable-alarms, reset"
                )
            self._keep_app(app_id)
            return outputs

        self._command(command)

    def apps(self) -> list[dict[str, Any]]:
        """Every app the daemon knows, with the user's answers, for `xrs apps list`."""
        with self._lock:
            return [
                {**self._body(app_id), "app_id": app_id, "running": app_id in self.pids}
                for app_id in sorted(self._apps)
            ]

    # ------------------------------------------------------------------ connections

    def connect_app(self, record: AppRecord, peer: Peer) -> AppRecord:
        """A connection registers an app: the first connection of an absent app launches it."""

        def command() -> list[Output]:
            known = self._apps.get(record.app_id)
            if known is not None and record.launch is None:
                record.launch = known.launch  # the user's manifest names the command
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
            self._keep_app(record.app_id)
            return outputs

        self._command(command)
        return self._apps[record.app_id]

    def _redeclare(self, known: AppRecord, record: AppRecord) -> None:
        """An absent app comes back, possibly with a new declaration (a new version)."""
        known.mode, known.launch = record.mode, record.launch
        self._reregister(known)

    def _reregister(self, app: AppRecord) -> None:
        self.engine.register_app(
            app.app_id, app.mode, launchable=self._can_launch(app), tree=self._tree(app)
        )

    def _body(self, app_id: str) -> dict[str, Any]:
        """What the store keeps of an app: its manifest and the user's answers."""
        app, kept = self._apps[app_id], self.engine.kept_app(app_id)
        return {
            "mode": None if app.mode is None else app.mode.value,
            "launch": None if app.launch is None else list(app.launch),
            "cwd": self._cwd.get(app_id),
            "auto_launch": int(kept.auto_launch),
            "approved": kept.approved,
            "alarms_disabled": kept.alarms_disabled,
            "silent": kept.silent,
            "undelivered": [_encode_undelivered(u) for u in kept.undelivered],
        }

    def _keep_app(self, app_id: str) -> None:
        """Stage the app's body in the store (under the lock: staging is in memory)."""
        if self._app_store is not None:
            self._app_store.put_app(app_id, self._body(app_id), self.now)
            self._effects.set("commit", True)
            self._kept_backlog[app_id] = _ids(self.engine.backlog(app_id))

    def _keep_backlog(self, app_id: str) -> None:
        """Keep the app again if the endings it has not heard changed since it was last kept
        (an ending it missed must reach it even across a restart; one it heard must not
        reach it twice). A dict lookup when nothing changed: every ending comes here."""
        if app_id not in self._apps:
            return
        ids = _ids(self.engine.backlog(app_id))
        if ids != self._kept_backlog.get(app_id, ()):
            self._keep_app(app_id)

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
                handed = self._handed_to
                for session_id in [sid for sid, (to, _) in handed.items() if to is peer]:
                    del handed[session_id]  # handed again at the next launch
                self._drop_links(app_id)
                self.pids.pop(app_id, None)
                outputs += self.engine.app_exited(app_id, self.now)
            return outputs

        self._feed(command)

    def exiting(self, app: AppRecord, peer: Peer) -> None:
        """The process behind `peer` says it is about to exit: if it is the app's last one,
        what the exit ends for certain ends now, so the process hears it before it goes (the
        connection's close then finds nothing more of it to end)."""

        def command() -> list[Output]:
            if self._holders.get(app.app_id) != {peer}:
                return []
            return self.engine.app_exiting(app.app_id, self.now)

        self._feed(command)

    def delegate_set_by(self, peer: Peer, session_id: str) -> None:
        """A session handed to `peer` got a delegate there: the engine forgets what it kept
        for it (ended ones included). Any other connection is refused."""
        with self._lock:
            to, app_id = self._handed_to.get(session_id, (None, ""))
            if to is not peer:
                raise ValueError(f"session {session_id!r} was not handed to this connection")
            del self._handed_to[session_id]

        def command() -> list[Output]:
            outputs = self.engine.delegate_attached(session_id, self.now)
            self._keep_backlog(app_id)
            return outputs

        self._command(command)

    def invalidate(self, link: SessionLink) -> None:
        """`invalidate()`, unless the session already ended here: a client may send it while
        the event saying so is on its way to it, and on an INVALID session it has no effect."""

        def command() -> list[Output]:
            if link.session_id in self._ended:
                return []
            self._attach(link)
            return self.engine.invalidate(link.session_id, link.app.app_id, self.now)

        self._command(command)

    def _on_invalidated(self, event: SessionInvalidated) -> None:
        super()._on_invalidated(event)
        self._keep_backlog(event.app_id)
        if not event.refused:
            ended = self._ended
            ended[event.session_id] = None
            if len(ended) > ENDED_KEPT:
                del ended[next(iter(ended))]

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

    def _idle(self, deadline: datetime | None, now: datetime) -> bool:
        """The full garbage collection owed, if nothing is due for a while (`interpreter`)."""
        return collect_if_due(None if deadline is None else (deadline - now).total_seconds())

    # ------------------------------------------------------------------ durability

    def _submit_audit(self, event: Event) -> None:
        """Every event is staged in the store at once, under the lock (staging is in memory),
        and committed soon after on the commit channel, or at once by `durable`."""
        store = self._app_store
        if store is not None:
            if isinstance(event, FOLDED):
                keep_record(store, event)
            elif isinstance(event, _APP_ANSWERS):
                self._keep_app(event.app_id)
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

    def stored_auto_launch(self, app: AppRecord) -> AutoLaunchAuthorizationStatus | None:
        """The user's stored auto-launch answer, or `None` when they must be asked now
        (raises `ExtendedRuntimeSessionError` as Apple's call does)."""
        with self._lock:
            return self.engine.request_auto_launch(app.app_id, self.now)

    def answer_auto_launch(self, app: AppRecord, allow: bool) -> AutoLaunchAuthorizationStatus:
        """The user answered the auto-launch question (asked by the app's process)."""
        self._command(lambda: self.engine.answer_auto_launch(app.app_id, allow, self.now))
        return self.engine.auto_launch_status(app.app_id)

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
        self._handed_to[event.session_id] = (peer, event.app_id)
        peer.push(event)

    def _can_launch(self, app: AppRecord) -> bool:
        return app.launch is not None

    def _launch(self, app: AppRecord, session_id: str) -> None:
        """Start the app's declared command (runs on the launch channel). It connects, says
        which session it was launched for, and the engine hands that session over; one that
        sets no delegate in time ends (`Policy.relaunch_delegate_timeout`)."""
        if app.launch is None:
            raise CannotLaunch(f"{app.app_id} declares no launch command")
        env = dict(os.environ, XRS_APP_ID=app.app_id, XRS_HOST="daemon")
        env[LAUNCHED_FOR] = session_id
        if app.mode is not None:
            env["XRS_BACKGROUND_MODE"] = app.mode.value
        try:
            subprocess.Popen(
                app.launch,
                cwd=self._cwd.get(app.app_id),
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a signal to the daemon's group does not reach it
            )
        except OSError as error:
            raise CannotLaunch(
                f"launching {app.app_id} ({list(app.launch)}) failed: {error}"
            ) from None
        log.info("launched %s for session %s", app.app_id, session_id)

    def _stop_engine(self, message: str) -> None:
        """Sessions outlive the daemon: they wait in the store for the next one."""
        with self._unclaimed:
            self._unclaimed.notify_all()
        log.info("the daemon stops (%s); its sessions wait in the store", message)


def _newest(holders: set[Peer], session_id: str) -> Peer:
    """The connection that receives a handed-over session: the one the daemon launched for
    it, else the one registered last."""
    for peer in holders:
        if peer.launched_for == session_id:
            return peer
    return max(holders, key=lambda peer: peer.serial)


def _resumable(record: SessionRecord) -> bool:
    """Whether a session that ran can run on under the next daemon (its start is known)."""
    return (
        record.state is SessionState.RUNNING
        and record.started_at is not None
        and record.session_type is not None
    )


def _ended_by_restart(record: SessionRecord, now: datetime) -> SessionInvalidated:
    """A session that ran when the previous daemon stopped, and that no process claimed back,
    ends as DESIGN.md's "App exits" row says: a frontmost one with RESIGNED_FRONTMOST, another
    with ERROR, UNKNOWN."""
    frontmost = record.session_type in FRONTMOST_TYPES
    message = (
        "the daemon stopped while it ran, and its app did not claim it back from the next one "
        f"(pid {os.getpid()})"
    )
    return SessionInvalidated(
        at=now,
        app_id=record.app_id,
        session_id=record.session_id,
        state=SessionState.INVALID,
        session_type=record.session_type,
        previous_state=record.state,
        reason=InvalidationReason.RESIGNED_FRONTMOST if frontmost else InvalidationReason.ERROR,
        error_code=None if frontmost else ErrorCode.UNKNOWN,
        message=None if frontmost else message,
    )


@dataclass(frozen=True, slots=True)
class Manifest:
    """An app as the user declares it to the daemon (`xrs apps register`)."""

    app_id: str
    mode: SessionType | None
    launch: tuple[str, ...] | None = None
    cwd: str | None = None


def _manifest(app_id: str, body: dict[str, Any]) -> Manifest:
    """The manifest in a store's body of an app (fields of the wrong type are left out)."""
    launch, cwd = body.get("launch"), body.get("cwd")
    return Manifest(
        app_id,
        _MODES.get(body.get("mode")),  # type: ignore[arg-type]
        tuple(str(part) for part in launch) if isinstance(launch, list) and launch else None,
        cwd if isinstance(cwd, str) else None,
    )


#: What a store's body says of an app: mode, launch command, working folder, and the user's
#: answers as `KeptApp` takes them after its first three fields.
_Body = tuple[
    SessionType | None,
    tuple[str, ...] | None,
    str | None,
    tuple[AutoLaunchAuthorizationStatus, bool, bool, int, tuple[Undelivered, ...]],
]


def _read_body(app_id: str, body: dict[str, Any]) -> _Body:
    """A store's body of an app, read (fields of the wrong type are left out)."""
    manifest = _manifest(app_id, body)
    silent = body.get("silent", 0)
    answers = (
        _AUTO.get(body.get("auto_launch"), AutoLaunchAuthorizationStatus.UNKNOWN),  # type: ignore[arg-type]
        body.get("approved", True) is not False,
        body.get("alarms_disabled", False) is True,
        silent if type(silent) is int and silent >= 0 else 0,
        _read_undelivered(app_id, body.get("undelivered")),
    )
    return manifest.mode, manifest.launch, manifest.cwd, answers


def _encode_undelivered(kept: Undelivered) -> dict[str, Any]:
    """An ending the app has not heard, as its body in the store keeps it (JSON)."""
    started, expires = kept.started_at, kept.expires_at
    return {
        "session_id": kept.session_id,
        "session_type": kept.session_type.value,
        "started_at": None if started is None else started.isoformat(),
        "expires_at": None if expires is None else expires.isoformat(),
        "missed": [encode_event(event) for event in kept.missed],
    }


def _read_undelivered(app_id: str, kept: object) -> tuple[Undelivered, ...]:
    """The endings a store's body says the app has not heard; one that cannot be read is
    logged and left out (the app then misses it, as it would have without a store)."""
    if not isinstance(kept, list) or not kept:
        return ()
    read: list[Undelivered] = []
    for item in kept:
        try:
            read.append(_undelivered(item))
        except (KeyError, TypeError, ValueError) as error:
            log.warning("an ending kept for %s cannot be read, and is dropped: %r", app_id, error)
    return tuple(read)


def _undelivered(item: dict[str, Any]) -> Undelivered:
    started, expires = item["started_at"], item["expires_at"]
    missed = tuple(decode_event(data) for data in item["missed"])
    return Undelivered(
        str(item["session_id"]),
        SessionType(item["session_type"]),
        None if started is None else as_utc(datetime.fromisoformat(started), "started_at"),
        None if expires is None else as_utc(datetime.fromisoformat(expires), "expires_at"),
        tuple(event for event in missed if isinstance(event, SessionEvent)),
    )


def _ids(backlog: tuple[Undelivered, ...]) -> tuple[str, ...]:
    return tuple(kept.session_id for kept in backlog)


#: The values a store's body may hold, read without calling the enums (a restart reads one
#: body per app it knows).
_MODES = {kind.value: kind for kind in SessionType}
_AUTO = {int(status): status for status in AutoLaunchAuthorizationStatus}
