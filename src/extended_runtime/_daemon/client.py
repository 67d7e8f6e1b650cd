"""The daemon's client: the `HostPort` of an app whose sessions live in the per-user daemon.

Theory
------
The client holds one connection to the daemon and implements the same port as the in-process
hosts, so `App` and `ExtendedRuntimeSession` cannot tell them apart. Each call is one request and
its reply. The daemon pushes every event a request causes before the reply, and one reader thread
reads both in order: it *mirrors* each pushed event into its session object at once and posts the
delegate call to a `Delivery` (the session's asyncio loop, else one delegate thread), exactly as
the embedded host does; then it hands the reply to the caller. So `state` has changed when
`start()` returns, and delegate calls arrive the same way on every host.

Repeat handlers run here, in the app: an `AlertPlayed` that awaits an answer is pushed, the
handler runs on the delivery thread, and its answer goes back as `NextAlert`. Sessions the daemon
hands to this process (a relaunch, Apple's `handle(_:)`) arrive as `SessionHandedOver` and get
fresh session objects through `App.on_session`, as on the embedded host.

When the connection is lost (the daemon stopped or crashed) the client says so once, in the log.
Sessions that were running end here with ERROR, UNKNOWN, as the next daemon will record them;
scheduled ones are kept by the daemon's store and ring when their date comes. Calls made after
the loss fail with an `ExtendedRuntimeSessionError` saying to start the daemon again.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import select
import socket
import threading
from datetime import datetime
from functools import partial
from typing import Any

import msgspec

from .._api.port import AppRecord, SessionLink
from .._api.session import adopt
from .._backends.threads import start_thread
from .._core.clock import SystemClock
from .._core.codec import decode_event
from .._core.enums import (
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
)
from .._core.errors import ExtendedRuntimeSessionError, SessionUsageError
from .._core.events import (
    AlertPlayed,
    SessionEvent,
    SessionHandedOver,
    SessionInvalidated,
)
from .._hosts.delivery import Delivery
from . import protocol as p
from .status import PROTOCOL_VERSION

__all__ = ["DaemonClient", "DaemonUnavailable"]

log = logging.getLogger("extended_runtime")

#: How long a call waits for the daemon's reply before it fails (seconds).
REPLY_TIMEOUT = 10.0
#: How long the interpreter's exit waits for delegate calls still queued (seconds).
EXIT_TIMEOUT = 2.0


class DaemonUnavailable(ExtendedRuntimeSessionError):
    """The daemon cannot be reached, or stopped answering."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNKNOWN, message)


class _Waiting:
    """A caller waiting for the reply to its request."""

    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: p.Reply | p.Error | None = None


class DaemonClient:
    """A host for this process's apps, served by the per-user daemon at `path`."""

    def __init__(self, path: str, *, launched_for: str | None = None) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(path)
        except OSError as error:
            self._sock.close()
            raise DaemonUnavailable(f"cannot connect to the daemon at {path}: {error}") from None
        self._sock.settimeout(REPLY_TIMEOUT)  # a daemon that stops mid-frame is lost, not waited
        self._clock = SystemClock()
        self._read_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: dict[int, _Waiting] = {}
        self._apps: dict[str, AppRecord] = {}
        self._links: dict[str, SessionLink] = {}
        self._delivery = Delivery()
        self._lost: str | None = None
        self._closed = False
        self._reader = start_thread(self._read_loop, name="xrs-client")
        hello = p.Hello(id=0, protocol=PROTOCOL_VERSION, pid=os.getpid(), launched_for=launched_for)
        self._call(hello)
        atexit.register(self.close)

    # ------------------------------------------------------------------ the port

    def register_app(self, app: AppRecord) -> AppRecord:
        with self._lock:
            known = self._apps.get(app.app_id)
        if known is not None:
            return known.join(app, "the daemon")
        mode = None if app.mode is None else app.mode.value
        launch = None if app.launch is None else list(app.launch)
        self._call(
            p.RegisterApp(id=0, app_id=app.app_id, mode=mode, launch=launch, state=int(app.state))
        )
        app.host = self
        with self._lock:
            self._apps[app.app_id] = app
        return app

    def set_app_state(self, app: AppRecord, state: ApplicationState) -> None:
        app.state = state
        self._call(p.SetAppState(id=0, app_id=app.app_id, state=int(state)))

    def start(self, link: SessionLink) -> None:
        self._attach(link)
        self._call(p.Start(id=0, app_id=link.app.app_id, session_id=link.session_id))

    def start_at(self, link: SessionLink, when: datetime) -> None:
        self._attach(link)
        message = self._call(
            p.StartAt(id=0, app_id=link.app.app_id, session_id=link.session_id, when=when)
        )
        if message is not None:
            log.warning(
                "session %s is scheduled but the daemon could not save it (%s): it rings only "
                "if the daemon keeps running until its date",
                link.session_id,
                message,
            )

    def invalidate(self, link: SessionLink) -> None:
        self._attach(link)
        self._call(p.Invalidate(id=0, app_id=link.app.app_id, session_id=link.session_id))

    def notify_user(self, link: SessionLink, haptic: HapticType, *, handler: bool) -> None:
        self._call(
            p.NotifyUser(
                id=0,
                app_id=link.app.app_id,
                session_id=link.session_id,
                haptic=int(haptic),
                handler=handler,
            )
        )

    def delegate_set(self, link: SessionLink) -> None:
        self._call(p.DelegateSet(id=0, session_id=link.session_id))
        self._delivery.post(link.deliver_backlog, link.loop)

    def request_auto_launch(self, app: AppRecord) -> AutoLaunchAuthorizationStatus:
        value = self._call(p.AutoLaunch(id=0, app_id=app.app_id))
        return AutoLaunchAuthorizationStatus(value)

    # ------------------------------------------------------------------ the user's tools

    def status(self, limit: int = 1000) -> dict[str, Any]:
        """What runs and what is scheduled (`xrs status`): the first `limit` sessions, and
        how many run and are scheduled in all."""
        value = self._call(p.Status(id=0, limit=limit))
        assert isinstance(value, dict)
        return value

    def stop(self, session_id: str) -> bool:
        """The user stops a session; whether one had that id."""
        return bool(self._call(p.Stop(id=0, session_id=session_id)))

    def pause(self, paused: bool) -> None:
        self._call(p.Pause(id=0, paused=paused))

    def allow_alarms(self, app_id: str) -> None:
        self._call(p.AllowAlarms(id=0, app_id=app_id))

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every event the daemon sent so far has been mirrored and its delegate
        call delivered (one round trip: replies come after the pushes before them). For tests,
        with `EmbeddedHost.settle` on the daemon's side. False if `timeout` ran out."""
        self._call(p.Status(id=0, limit=0))
        return self._delivery.drain(timeout)

    # ------------------------------------------------------------------ requests

    def _attach(self, link: SessionLink) -> None:
        with self._lock:
            self._links[link.session_id] = link

    def _call(self, request: Any) -> Any:
        """Send `request` with a fresh id and wait for its reply; raise what an error says.

        The caller reads the connection itself while it waits (whoever holds the read lock
        reads the next frame, and hands each reply to its waiter), so a round trip costs no
        thread switch; the reader thread reads only what comes while nobody waits."""
        waiting = _Waiting()
        with self._lock:
            if self._lost is not None:
                raise DaemonUnavailable(self._lost)
            request_id = next(self._ids)
            self._waiting[request_id] = waiting
        data = p.frame(_with_id(request, request_id))
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as error:
            self._lose(f"the connection to the daemon broke: {error}")
        deadline = self._clock.monotonic() + REPLY_TIMEOUT
        while not waiting.done.is_set():
            left = deadline - self._clock.monotonic()
            if left <= 0 or not self._read_lock.acquire(timeout=left):
                with self._lock:
                    self._waiting.pop(request_id, None)
                raise DaemonUnavailable(
                    f"the daemon did not answer a {type(request).__name__} within "
                    f"{REPLY_TIMEOUT:g} s: see `xrs status`, or restart it"
                )
            try:
                if not waiting.done.is_set():
                    self._read_one()
            finally:
                self._read_lock.release()
        return _result(waiting.reply, self._lost)

    # ------------------------------------------------------------------ reading

    def _read_loop(self) -> None:
        """Read what the daemon sends while no caller waits (timers' events)."""
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        while self._lost is None:
            poller.poll()
            with self._read_lock:
                if self._lost is not None:
                    return
                if poller.poll(0):
                    self._read_one()

    def _read_one(self) -> None:
        """Read one frame and act on it (the read lock held); a failure loses the connection."""
        try:
            message = p.decode_reply(p.read_frame(self._sock))
        except (EOFError, OSError, ValueError) as error:
            detail = str(error)
            self._lose(
                f"the connection to the daemon broke: {detail}"
                if detail
                else "the daemon closed the connection"
            )
            return
        if isinstance(message, p.Push):
            try:
                self._pushed(message.event)
            except Exception:
                log.exception("an event from the daemon could not be applied")
        else:
            self._replied(message)

    def _replied(self, message: p.Reply | p.Error) -> None:
        with self._lock:
            waiting = self._waiting.pop(message.id, None)
        if waiting is not None:
            waiting.reply = message
            waiting.done.set()

    def _pushed(self, data: dict[str, Any]) -> None:
        event = decode_event(data)
        if not isinstance(event, SessionEvent):
            return
        if isinstance(event, SessionHandedOver):
            self._handed_over(event)
            return
        with self._lock:
            link = self._links.get(event.session_id)
            if isinstance(event, SessionInvalidated):
                self._links.pop(event.session_id, None)
        if link is None:
            return
        if isinstance(event, AlertPlayed):
            self._delivery.post(partial(self._answer_alert, link, event), link.loop)
            return
        link.mirror(event)
        self._delivery.post(partial(link.deliver, event), link.loop)

    def _handed_over(self, event: SessionHandedOver) -> None:
        with self._lock:
            app = self._apps.get(event.app_id)
        if app is None:
            return
        link = adopt(app, event)
        if event.state is not SessionState.INVALID:
            self._attach(link)
        self._delivery.post(partial(_hand_over, app, link), None)

    def _answer_alert(self, link: SessionLink, event: AlertPlayed) -> None:
        delay, haptic = link.repeat_answer(event.haptic, 3.0)
        answer = p.NextAlert(
            id=0, session_id=event.session_id, sequence=event.sequence, delay=delay,
            haptic=int(haptic),
        )  # fmt: skip
        try:
            self._call(answer)
        except ExtendedRuntimeSessionError as error:
            log.warning("could not answer the alert of session %s: %s", event.session_id, error)

    # ------------------------------------------------------------------ losing and closing

    def _lose(self, reason: str) -> None:
        """The connection is gone: fail waiting calls, end running sessions here, say so."""
        with self._lock:
            if self._lost is not None:
                return
            self._lost = f"{reason}: start it again (`xrs daemon`), or run without it"
            waiting, self._waiting = self._waiting, {}
            links = list(self._links.values())
            self._links.clear()
        for slot in waiting.values():
            slot.done.set()
        if self._closed:
            return
        log.warning("%s; running sessions end, scheduled ones wait in the daemon", reason)
        for link in links:
            ended = _lost_session(link, reason)
            if ended is not None:
                link.mirror(ended)
                self._delivery.post(partial(link.deliver, ended), link.loop)

    def close(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Close the connection (the daemon treats this process's apps as exited) and deliver
        the delegate calls still queued."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout)
        self._sock.close()
        self._delivery.close(timeout)
        atexit.unregister(self.close)

    @property
    def closed(self) -> bool:
        return self._closed


def _with_id(request: Any, request_id: int) -> Any:
    return msgspec.structs.replace(request, id=request_id)


def _result(reply: p.Reply | p.Error | None, lost: str | None) -> Any:
    if reply is None:
        raise DaemonUnavailable(lost or "the connection to the daemon was lost")
    if isinstance(reply, p.Reply):
        return reply.value
    if reply.kind == "usage":
        raise SessionUsageError(reply.message)
    if reply.kind == "session" and reply.code is not None:
        raise ExtendedRuntimeSessionError(ErrorCode(reply.code), reply.message)
    raise DaemonUnavailable(f"the daemon refused the request ({reply.kind}): {reply.message}")


def _lost_session(link: SessionLink, reason: str) -> SessionInvalidated | None:
    """The ending a running session gets here when the daemon is gone; `None` for others."""
    owner = link.owner
    state = getattr(owner, "state", None)
    if state is not SessionState.RUNNING:
        return None
    return SessionInvalidated(
        at=SystemClock().now(),
        app_id=link.app.app_id,
        session_id=link.session_id,
        state=SessionState.INVALID,
        session_type=getattr(owner, "session_type", None),
        previous_state=SessionState.RUNNING,
        reason=InvalidationReason.ERROR,
        error_code=ErrorCode.UNKNOWN,
        message=reason,
    )


def _hand_over(app: AppRecord, link: SessionLink) -> None:
    if not link.detached:
        app.hand_over(link.owner)
