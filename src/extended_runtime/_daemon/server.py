"""The daemon's server: a Unix socket, one reader and one writer per connection.

Theory
------
The socket lives in the user's private runtime folder (0700) and is itself 0600, and every
connection is checked again when it is accepted: the peer's credentials (`SO_PEERCRED`, which
the kernel fills in and the peer cannot forge) must name this user, or the connection is closed
before a byte is read. So another user can neither connect, nor see, nor touch these sessions.

Each connection has a *reader* thread that reads one frame at a time and answers it, and a
*writer* that sends what the connection's outbox holds. Frames are bounded (`protocol.MAX_FRAME`)
before they are read; a body that does not decode as a request gets an `Error` reply and changes
nothing; a broken frame (a bad length, a connection dropped mid-frame) closes that connection
only. Requests go through an explicit table from request class to handler, each a small method
calling the `DaemonHost`; an error a handler raises becomes an `Error` reply of the right kind.

Pushes (session events) are queued in the outbox under the host's lock and never block it: the
outbox is bounded, and a client that stops reading until it overflows is disconnected rather
than allowed to hold the daemon. A reply is queued after the events its request caused, and the
reader sends the outbox itself before reading on (the writer thread serves the pushes that
timers cause between requests), so a round trip costs no thread hand-off in the daemon.

When a connection closes, for whatever reason, the apps it registered have exited unless
another connection still holds them (`DaemonHost.disconnect`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from .._api.app import check_app_id
from .._api.port import AppRecord, SessionLink
from .._backends.threads import start_thread
from .._core.codec import encode_event
from .._core.enums import ApplicationState, HapticType, SessionType
from .._core.errors import ExtendedRuntimeSessionError, SessionUsageError
from .._core.events import SessionEvent
from . import protocol as p
from .host import DaemonHost, Manifest

__all__ = ["Connection", "Server"]

log = logging.getLogger("extended_runtime")

#: The most sessions one status reply lists (each is about 150 bytes of the frame's 1 MiB).
MAX_STATUS_ROWS = 5000
#: Frames a slow client may have queued before it is disconnected.
MAX_OUTBOX = 10_000
_CRED = struct.Struct("3i")


class Closed(Exception):
    """The connection is over (end of stream, a broken frame, or the server closing)."""


class Connection:
    """One client: its socket, the apps it registered, its outbox."""

    _serials = itertools.count(1)

    def __init__(self, sock: socket.socket, pid: int, server: Server) -> None:
        self.sock = sock
        self.pid = pid
        self.serial = next(self._serials)
        self.launched_for: str | None = None
        self.apps: dict[str, AppRecord] = {}
        self._server = server
        self._hello = False
        self._outbox: deque[bytes] = deque()
        self._send_lock = threading.Lock()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False
        #: The thread answering this connection's requests (it sends what they push).
        self._reader_ident = 0

    # ------------------------------------------------------------------ sending

    def push(self, event: SessionEvent) -> None:
        """Send or queue a session event (under the host's lock: never blocks). While the
        reader answers a request, it sends the outbox itself after the reply. Otherwise (a
        timer's event) the event goes out at once if the socket takes it without waiting,
        else the writer is woken to send it."""
        data = p.frame(p.Push(event=encode_event(event)))
        if threading.get_ident() == self._reader_ident:
            self._queue(data)
            return
        if not self._send_now(data):
            with self._ready:
                self._ready.notify()

    def _send_now(self, data: bytes) -> bool:
        """Send `data` without blocking, if nothing is queued before it and nobody is
        sending; what the socket did not take is queued first. Whether all of it went."""
        if not self._send_lock.acquire(blocking=False):
            self._queue(data)
            return False
        try:
            if self._outbox:
                self._queue(data)
                return False
            sent = self.sock.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._shutdown()
            return True
        finally:
            self._send_lock.release()
        if sent == len(data):
            return True
        self._queue(data[sent:])
        return False

    def _queue(self, data: bytes) -> None:
        if self._closed:
            return
        if len(self._outbox) >= MAX_OUTBOX:
            log.warning("client pid %d does not read its events: disconnected", self.pid)
            self._shutdown()
            self._outbox.clear()
            return
        self._outbox.append(data)

    def _send_queued(self) -> None:
        """Send what the outbox holds, in order (the reader after a reply, or the writer)."""
        with self._send_lock:
            chunks: list[bytes] = []
            while self._outbox:
                chunks.append(self._outbox.popleft())
            if chunks:
                try:
                    self.sock.sendall(b"".join(chunks))
                except OSError:
                    self._shutdown()

    def _write_loop(self) -> None:
        while not self._closed:
            with self._ready:
                if not self._outbox and not self._closed:
                    self._ready.wait()
            self._send_queued()

    def reply(self, message: p.Reply | p.Error) -> None:
        self._queue(p.frame(message))
        self._send_queued()

    # ------------------------------------------------------------------ reading

    def serve(self) -> None:
        """Read and answer requests until the connection ends, then let its apps go."""
        self._reader_ident = threading.get_ident()
        writer = start_thread(self._write_loop, name=f"xrs-conn-{self.serial}-out")
        try:
            while True:
                body = self._read_frame()
                self._answer(body)
        except Closed:
            pass
        except Exception:
            log.exception("connection of pid %d failed", self.pid)
        finally:
            self._shutdown()
            writer.join(1.0)
            self._server.forget(self)

    def _read_frame(self) -> bytes:
        try:
            return p.read_frame(self.sock)
        except p.FrameError as error:
            log.warning("client pid %d sent a bad frame (%s): disconnected", self.pid, error)
            raise Closed from None
        except (EOFError, OSError):
            raise Closed from None

    def _answer(self, body: bytes) -> None:
        try:
            request = p.decode_request(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self.reply(p.Error(id=p.request_id(body), kind="protocol", message=str(error)))
            return
        except RecursionError:
            message = "the request nests too deeply to be one"
            self.reply(p.Error(id=p.request_id(body), kind="protocol", message=message))
            return
        if not self._hello and not isinstance(request, p.Hello):
            self.reply(p.Error(id=request.id, kind="protocol", message="say hello first"))
            raise Closed
        self.reply(self._server.handle(self, request))

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with self._ready:
            self._ready.notify_all()

    def greeted(self, launched_for: str | None) -> None:
        self._hello = True
        self.launched_for = launched_for


Handler = Callable[[Connection, Any], Any]


class Server:
    """Accepts this user's clients on a Unix socket and serves them from one `DaemonHost`."""

    def __init__(self, host: DaemonHost, path: str) -> None:
        self.host = host
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._handlers: dict[type[Any], Handler] = {
            p.Hello: self._hello,
            p.RegisterApp: self._register,
            p.SetAppState: self._app_state,
            p.Exiting: self._exiting,
            p.Start: self._start,
            p.StartAt: self._start_at,
            p.Invalidate: self._invalidate,
            p.NotifyUser: self._notify,
            p.NextAlert: self._next_alert,
            p.DelegateSet: self._delegate_set,
            p.AutoLaunch: self._auto_launch,
            p.Status: self._status,
            p.Stop: self._stop,
            p.Pause: self._pause,
            p.AllowAlarms: self._allow,
            p.Declare: self._declare,
            p.Forget: self._forget,
            p.AppPolicy: self._policy,
            p.Apps: self._apps,
            p.Reclaim: self._reclaim,
        }

    # ------------------------------------------------------------------ lifetime

    def listen(self) -> None:
        """Bind the socket (0600, replacing a stale one) and start accepting."""
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()
        old = os.umask(0o177)
        try:
            self._listener.bind(self.path)
        finally:
            os.umask(old)
        self._listener.listen(128)
        self._thread = start_thread(self._accept_loop, name="xrs-accept")

    def close(self) -> None:
        """Stop accepting, close every connection (their apps exit), remove the socket."""
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection._shutdown()
        if self._thread is not None:
            self._thread.join(2.0)
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                if self._closing:
                    return
                log.exception("accepting a client failed; the daemon goes on")
                continue
            self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
        pid, uid, _ = _CRED.unpack(credentials)
        if uid != os.getuid():
            log.warning("refused a connection from uid %d (pid %d): not this user", uid, pid)
            sock.close()
            return
        connection = Connection(sock, pid, self)
        with self._lock:
            self._connections.add(connection)
        start_thread(connection.serve, name=f"xrs-conn-{connection.serial}")

    def forget(self, connection: Connection) -> None:
        """A connection ended: its apps exit unless another connection holds them."""
        with self._lock:
            self._connections.discard(connection)
        with contextlib.suppress(OSError):
            connection.sock.close()
        if connection.apps:
            self.host.disconnect(connection, list(connection.apps))

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._connections)

    # ------------------------------------------------------------------ requests

    def handle(self, connection: Connection, request: Any) -> p.Reply | p.Error:
        """Answer one request through the handler table; errors become `Error` replies."""
        handler = self._handlers[type(request)]
        try:
            return p.Reply(id=request.id, value=handler(connection, request))
        except ExtendedRuntimeSessionError as error:
            return p.Error(id=request.id, kind="session", message=str(error), code=int(error.code))
        except SessionUsageError as error:
            return p.Error(id=request.id, kind="usage", message=str(error))
        except (ValueError, KeyError, TypeError) as error:
            return p.Error(id=request.id, kind="protocol", message=_describe(error))
        except Exception as error:
            log.exception("a %s request failed", type(request).__name__)
            return p.Error(id=request.id, kind="internal", message=_describe(error))

    def _hello(self, connection: Connection, request: p.Hello) -> dict[str, Any]:
        if request.protocol != p.PROTOCOL_VERSION:
            raise ValueError(
                f"this daemon speaks protocol {p.PROTOCOL_VERSION}, the client "
                f"{request.protocol}: upgrade extended-runtime so both match, or restart the "
                "daemon"
            )
        connection.greeted(request.launched_for)
        return {"protocol": p.PROTOCOL_VERSION, "pid": os.getpid()}

    def _app(self, connection: Connection, app_id: str) -> AppRecord:
        app = connection.apps.get(app_id)
        if app is None:
            raise ValueError(f"app {app_id!r} is not registered on this connection")
        return app

    def _register(self, connection: Connection, request: p.RegisterApp) -> None:
        record = AppRecord(
            check_app_id(request.app_id),
            None if request.mode is None else SessionType(request.mode),
            None if request.launch is None else tuple(request.launch),
            ApplicationState(request.state),
        )
        connection.apps[request.app_id] = self.host.connect_app(record, connection)

    def _app_state(self, connection: Connection, request: p.SetAppState) -> None:
        app = self._app(connection, request.app_id)
        self.host.set_app_state(app, ApplicationState(request.state))

    def _exiting(self, connection: Connection, request: p.Exiting) -> None:
        self.host.exiting(self._app(connection, request.app_id), connection)

    def _start(self, connection: Connection, request: p.Start) -> None:
        app = self._app(connection, request.app_id)
        self.host.start(self.host.link_for(request.session_id, app, connection))

    def _start_at(self, connection: Connection, request: p.StartAt) -> str | None:
        """Scheduled, then committed before the reply: `None`, or why it is not on disk."""
        app = self._app(connection, request.app_id)
        link = self.host.link_for(request.session_id, app, connection)
        self.host.start_at(link, request.when)
        return self.host.durable()

    def _invalidate(self, connection: Connection, request: p.Invalidate) -> None:
        app = self._app(connection, request.app_id)
        self.host.invalidate(self.host.link_for(request.session_id, app, connection))

    def _notify(self, connection: Connection, request: p.NotifyUser) -> None:
        app = self._app(connection, request.app_id)
        link = self.host.link_for(request.session_id, app, connection)
        self.host.notify_user(link, HapticType(request.haptic), handler=request.handler)

    def _next_alert(self, connection: Connection, request: p.NextAlert) -> None:
        self._own_link(connection, request.session_id)
        haptic = HapticType(request.haptic)
        self.host.answer_alert(request.session_id, request.sequence, request.delay, haptic)

    def _delegate_set(self, connection: Connection, request: p.DelegateSet) -> None:
        self.host.delegate_set_by(connection, request.session_id)

    def _own_link(self, connection: Connection, session_id: str) -> SessionLink:
        """The link of a live session this connection holds; else the request is refused."""
        link = self.host.link_of(session_id)
        if link is None or getattr(link, "peer", None) is not connection:
            raise ValueError(f"session {session_id!r} is not a live session of this connection")
        return link

    def _auto_launch(self, connection: Connection, request: p.AutoLaunch) -> int:
        """The stored answer, or `ASK`; with an answer, record it and return the status."""
        app = self._app(connection, request.app_id)
        if request.answer is None:
            status = self.host.stored_auto_launch(app)
            return p.ASK if status is None else int(status)
        return int(self.host.answer_auto_launch(app, request.answer))

    def _status(self, connection: Connection, request: p.Status) -> dict[str, Any]:
        rows = self.host.sessions()
        limit = max(0, min(request.limit, MAX_STATUS_ROWS))
        return {
            "pid": os.getpid(),
            "sessions": rows[:limit],
            "running": sum(1 for row in rows if row["start_date"] is None),
            "scheduled": sum(1 for row in rows if row["start_date"] is not None),
            "paused": self.host.engine.conditions.paused,
            "keep_awake": self.host.engine.keep_awake_held,
            "apps": dict(self.host.pids),
        }

    def _stop(self, connection: Connection, request: p.Stop) -> bool:
        """Whether a live session had that id (and now ended)."""
        return self.host.user_stop(request.session_id)

    def _pause(self, connection: Connection, request: p.Pause) -> None:
        self.host.set_suppressed(request.paused)

    def _allow(self, connection: Connection, request: p.AllowAlarms) -> None:
        self.host.allow(request.app_id)

    # the user's word about an app is on disk before it is acknowledged, like a schedule

    def _declare(self, connection: Connection, request: p.Declare) -> str | None:
        launch = None if not request.launch else tuple(request.launch)
        mode = None if request.mode is None else SessionType(request.mode)
        manifest = Manifest(check_app_id(request.app_id), mode, launch, request.cwd)
        self.host.declare(manifest)
        return self.host.durable()

    def _forget(self, connection: Connection, request: p.Forget) -> bool:
        forgotten = self.host.forget(request.app_id)
        self.host.durable()
        return forgotten

    def _policy(self, connection: Connection, request: p.AppPolicy) -> str | None:
        self.host.set_policy(request.app_id, request.action)
        return self.host.durable()

    def _apps(self, connection: Connection, request: p.Apps) -> list[dict[str, Any]]:
        return self.host.apps()

    def _reclaim(self, connection: Connection, request: p.Reclaim) -> str:
        app = self._app(connection, request.app_id)
        return self.host.reclaim(connection, app, request.session_id, warned=request.warned)


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"unknown key {error}"
    return str(error)
