"""The daemon's client: the `HostPort` of an app whose sessions live in the per-user daemon.

Theory
------
The client holds one connection to the daemon and implements the same port as the in-process
hosts, so `App` and `ExtendedRuntimeSession` cannot tell them apart. Each call is one request and
its reply. The daemon pushes every event a request causes before the reply, and the caller reads
both in order itself (no thread hand-off on the way): it *mirrors* each pushed event into its
session object at once and posts the delegate call to a `Delivery` (the session's asyncio loop,
else one delegate thread), exactly as the embedded host does, until its reply comes. So `state`
has changed when `start()` returns, and delegate calls arrive the same way on every host.

Events nobody's call reads (a timer's, between calls) are read by one reader thread, which
stands aside while the app is calling: from the first frame it sees while a call is in flight
until `READER_LINGER` after the last call ended, it leaves the socket to the callers (the last
call to end tells it so). A burst of calls then wakes it about twice per `READER_LINGER`, not
twice per call (a thread woken in the middle of every call costs the app more than the call's
own work), and a timer's event that comes right after a call waits at most that long.

Repeat handlers run here, in the app: an `AlertPlayed` that awaits an answer is pushed, the
handler runs on the delivery thread, and its answer goes back as `NextAlert`. Sessions the daemon
hands to this process (a relaunch, Apple's `handle(_:)`) arrive as `SessionHandedOver` and get
fresh session objects through `App.on_session`, as on the embedded host.

When the connection is lost (the daemon stopped or crashed) the client says so in the log and
looks for the next daemon for `RECONNECT` seconds (systemd restarts it within about two). When
one serves, the client registers its apps again and claims each of its live sessions back
(`Reclaim`): a running one runs on, its budget counted all along, a scheduled one waits for its
date as this process's own; the session objects, their delegates and their state are the same
ones as before. If no daemon comes back in time, running sessions end here with ERROR, UNKNOWN,
as the next daemon records them; scheduled ones wait in its store. Calls made while the client
is without a connection fail with an `ExtendedRuntimeSessionError` saying so.
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
from .._backends.threads import held_in_main_thread, start_thread
from .._core.clock import SystemClock
from .._core.codec import decode_event
from .._core.enums import (
    ENDED_BY_EXIT,
    FRONTMOST_TYPES,
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
    SessionWillExpire,
)
from .._hosts.delivery import Delivery
from .._hosts.event_log import log_event, logs
from . import protocol as p
from .status import PROTOCOL_VERSION

__all__ = ["DaemonClient", "DaemonUnavailable"]

log = logging.getLogger("extended_runtime")

#: How long a call waits for the daemon's reply before it fails (seconds).
REPLY_TIMEOUT = 10.0
#: How long a client whose daemon went away looks for the next one (seconds): a restart by
#: systemd takes about two.
RECONNECT = 8.0
#: How often it looks (seconds).
RECONNECT_POLL = 0.1
#: How long the interpreter's exit waits for delegate calls still queued (seconds).
EXIT_TIMEOUT = 2.0
#: How long after the last call the reader thread takes the socket back (seconds).
READER_LINGER = 0.002


class DaemonUnavailable(ExtendedRuntimeSessionError):
    """The daemon cannot be reached, or stopped answering."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNKNOWN, message)


class _Waiting:
    """A caller waiting for the reply to its request. Whoever reads the reply (or loses the
    connection) sets `done`; the caller looks at it each time it holds the read lock, which
    the reading thread gives back at once, so no event object is needed to wake it."""

    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = False
        self.reply: p.Reply | p.Error | None = None


class DaemonClient:
    """A host for this process's apps, served by the per-user daemon at `path`."""

    def __init__(self, path: str, *, launched_for: str | None = None) -> None:
        self.path = path
        self._sock = _connected(path)
        self._clock = SystemClock()
        self._read_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        #: Calls in flight, and when the last one ended: the reader stands aside meanwhile.
        self._calls = 0
        self._last_call = 0.0
        self._aside = threading.Condition(self._lock)
        self._reader_aside = False  # the reader waits for the calls in flight to end
        self._waiting: dict[int, _Waiting] = {}
        self._apps: dict[str, AppRecord] = {}
        self._links: dict[str, SessionLink] = {}
        self._delivery = Delivery()
        self._lost: str | None = None
        self._closed = False
        self._closing = threading.Event()
        self._reconnecting = False
        #: Sessions whose `will_expire` was heard (a session claimed back is not warned twice).
        self._warned: set[str] = set()
        self._reader = start_thread(partial(self._read_loop, self._sock), name="xrs-client")
        hello = p.Hello(id=0, protocol=PROTOCOL_VERSION, pid=os.getpid(), launched_for=launched_for)
        self._call(hello)
        atexit.register(self.close)

    # ------------------------------------------------------------------ the port

    def register_app(self, app: AppRecord) -> AppRecord:
        with self._lock:
            known = self._apps.get(app.app_id)
        if known is not None:
            return known.join(app, "the daemon")
        register = _registration(app)
        app.host = self
        with self._lock:  # known before the reply: the sessions handed over come before it
            self._apps[app.app_id] = app
        try:
            self._call(register)
        except BaseException:
            with self._lock:
                del self._apps[app.app_id]
            app.host = None
            raise
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
        """The stored answer; asked once, here, when the daemon has none (DESIGN.md)."""
        value = self._call(p.AutoLaunch(id=0, app_id=app.app_id))
        if value == p.ASK:
            allow = ask_auto_launch(app.app_id)
            value = self._call(p.AutoLaunch(id=0, app_id=app.app_id, answer=allow))
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

    def declare(
        self, app_id: str, mode: str | None, launch: list[str] | None, cwd: str | None
    ) -> None:
        """`xrs apps register`."""
        self._call(p.Declare(id=0, app_id=app_id, mode=mode, launch=launch, cwd=cwd))

    def forget(self, app_id: str) -> bool:
        """`xrs apps remove`: whether the app was declared."""
        return bool(self._call(p.Forget(id=0, app_id=app_id)))

    def app_policy(self, app_id: str, action: p.PolicyAction) -> None:
        """`xrs apps allow|deny|disable-alarms|reset`."""
        self._call(p.AppPolicy(id=0, app_id=app_id, action=action))

    def apps(self) -> list[dict[str, Any]]:
        """`xrs apps list`."""
        value = self._call(p.Apps(id=0))
        assert isinstance(value, list)
        return value

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

    def _call(self, request: Any, timeout: float = REPLY_TIMEOUT) -> Any:
        """Send `request` with a fresh id and wait for its reply; raise what an error says.

        The caller reads the connection itself while it waits (whoever holds the read lock
        reads the next frame, and hands each reply to its waiter), so a round trip costs no
        thread switch; the reader thread reads only what comes while nobody waits. In the main
        thread a Ctrl-C waits until the call is whole (at most `REPLY_TIMEOUT`): one landing
        mid-frame would leave the connection unreadable, and the request done but unknown."""
        with held_in_main_thread():
            return self._round_trip(request, timeout)

    def _round_trip(self, request: Any, timeout: float) -> Any:
        waiting = _Waiting()
        with self._lock:
            if self._lost is not None:
                raise DaemonUnavailable(self._lost)
            request_id = next(self._ids)
            self._waiting[request_id] = waiting
            self._calls += 1
        try:
            return self._exchange(request, request_id, waiting, timeout)
        finally:
            with self._lock:
                self._calls -= 1
                self._last_call = self._clock.monotonic()
                if not self._calls and self._reader_aside:
                    self._aside.notify()

    def _exchange(self, request: Any, request_id: int, waiting: _Waiting, timeout: float) -> Any:
        """Send the request, then read the connection until its reply has come."""
        data = p.frame(_with_id(request, request_id))
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as error:
            self._lose(f"the connection to the daemon broke: {error}", self._sock)
        deadline = self._clock.monotonic() + timeout
        while not waiting.done:
            left = deadline - self._clock.monotonic()
            if left <= 0 or not self._read_lock.acquire(timeout=left):
                with self._lock:
                    self._waiting.pop(request_id, None)
                raise DaemonUnavailable(
                    f"the daemon did not answer a {type(request).__name__} within "
                    f"{timeout:g} s: see `xrs status`, or restart it"
                )
            try:
                if not waiting.done:
                    self._read_one(self._sock)
            finally:
                self._read_lock.release()
        return _result(waiting.reply, self._lost)

    # ------------------------------------------------------------------ reading

    def _read_loop(self, sock: socket.socket) -> None:
        """Read what the daemon sends on `sock` while no caller waits (timers' events)."""
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while self._sock is sock and self._lost is None:
            poller.poll()
            if not self._stand_aside(sock):
                return
            with self._read_lock:
                if self._sock is not sock or self._lost is not None:
                    return
                if poller.poll(0):
                    self._read_one(sock)

    def _stand_aside(self, sock: socket.socket) -> bool:
        """Wait while a call is in flight and for `READER_LINGER` after the last one; False
        once `sock` is no longer the connection."""
        with self._lock:
            while self._sock is sock and self._lost is None and not self._closed:
                if self._calls:  # the last call to end says so (a lost word: 1 s at most)
                    self._reader_aside = True
                    self._aside.wait(1.0)
                    self._reader_aside = False
                    continue
                wait = self._last_call + READER_LINGER - self._clock.monotonic()
                if wait <= 0:
                    return True
                self._aside.wait(wait)
        return False

    def _read_one(self, sock: socket.socket) -> None:
        """Read one frame and act on it (the read lock held); a failure loses the connection."""
        try:
            message = p.decode_reply(p.read_frame(sock))
        except (EOFError, OSError, ValueError) as error:
            detail = str(error)
            why = (
                f"the connection to the daemon broke: {detail}"
                if detail
                else ("the daemon closed the connection")
            )
            self._lose(why, sock)
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
            waiting.done = True

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
        if isinstance(event, SessionWillExpire):
            self._warned.add(event.session_id)
        elif isinstance(event, SessionInvalidated):
            self._warned.discard(event.session_id)
        link.mirror(event)
        if logs(event):  # a refusal or an error ending says why here too, as in-process
            log_event(event)
        self._delivery.post(partial(link.deliver, event), link.loop)

    def _handed_over(self, event: SessionHandedOver) -> None:
        with self._lock:
            app = self._apps.get(event.app_id)
            held = self._links.get(event.session_id)
        if held is not None:
            # a session this process holds, handed back after the daemon restarted: the same
            # object runs on; the daemon hears that it has its delegate already
            held.mirror(event)
            self._delivery.post(partial(self._acknowledge, held), None)
            return
        if app is None:
            return
        link = adopt(app, event)
        if event.state is not SessionState.INVALID:
            self._attach(link)
        self._delivery.post(partial(_hand_over, app, link), None)

    def _acknowledge(self, link: SessionLink) -> None:
        try:
            self._call(p.DelegateSet(id=0, session_id=link.session_id))
        except ExtendedRuntimeSessionError as error:
            log.warning("could not take session %s back: %s", link.session_id, error)

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

    def _lose(self, reason: str, sock: socket.socket) -> None:
        """Connection `sock` is gone: fail the calls waiting on it, and look for the daemon
        again (it may be restarting) to take this process's sessions back."""
        with self._lock:
            if self._lost is not None or sock is not self._sock:
                return
            self._lost = f"{reason}: start it again (`xrs daemon`), or run without it"
            waiting, self._waiting = self._waiting, {}
            self._aside.notify_all()
            links = [link for link in self._links.values() if _live(link)]
        for slot in waiting.values():
            slot.done = True
        if self._closed:
            return
        log.warning("%s; looking for it for %g s to take its sessions back", reason, RECONNECT)
        with self._lock:
            if self._reconnecting:
                return  # the one reconnecting goes on, and sees this connection fail
            self._reconnecting = True
        start_thread(partial(self._reconnect, reason, links), name="xrs-reconnect")

    def _reconnect(self, reason: str, links: list[SessionLink]) -> None:
        """Connect to the daemon again (the next one, after a restart) and claim this
        process's apps and sessions back; running ones end here if none comes in time."""
        from .status import find_daemon

        try:
            deadline = self._clock.monotonic() + RECONNECT
            while not self._closed and self._clock.monotonic() < deadline:
                found, _ = find_daemon()
                if found is not None:
                    try:
                        self._reattach(found.socket, links)
                    except (OSError, ExtendedRuntimeSessionError) as error:
                        log.debug("reconnecting to the daemon failed: %s", error)
                    else:
                        return
                self._closing.wait(RECONNECT_POLL)
        finally:
            with self._lock:
                self._reconnecting = False
        if not self._closed:
            log.warning("%s; no daemon came back: running sessions end", reason)
            for link in links:
                self._end_here(link, reason)

    def _reattach(self, path: str, links: list[SessionLink]) -> None:
        sock = _connected(path)
        with self._read_lock, self._lock:
            old, self._sock, self._lost = self._sock, sock, None
        with contextlib.suppress(OSError):
            old.shutdown(socket.SHUT_RDWR)  # its reader thread sees the end and leaves
        old.close()
        self._reader = start_thread(partial(self._read_loop, sock), name="xrs-client")
        self._call(p.Hello(id=0, protocol=PROTOCOL_VERSION, pid=os.getpid()))
        with self._lock:
            apps = list(self._apps.values())
        for app in apps:
            self._call(_registration(app))
        for link in links:
            warned = link.session_id in self._warned
            claim = p.Reclaim(
                id=0, app_id=link.app.app_id, session_id=link.session_id, warned=warned
            )
            if self._call(claim) == "gone":
                self._end_here(link, "the daemon restarted and no longer knew it")
        log.info("reconnected to the daemon at %s; %d sessions taken back", path, len(links))

    def _end_here(self, link: SessionLink, reason: str, *, exiting: bool = False) -> None:
        """End a running session here, as the daemon would have: ERROR, UNKNOWN, or (the
        process `exiting`) as an exit ends it."""
        with self._lock:
            self._links.pop(link.session_id, None)
        ended = _lost_session(link, reason, exiting=exiting)
        if ended is not None:
            link.mirror(ended)
            self._delivery.post(partial(link.deliver, ended), link.loop)

    def close(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Close the connection (the daemon treats this process's apps as exited) and deliver
        the delegate calls still queued. A session the exit ends whatever happens ends first,
        so its delegate hears it before the process goes, as on the embedded host: a frontmost
        one with RESIGNED_FRONTMOST, a physical-therapy one with ERROR, UNKNOWN. Alarms live
        on in the daemon (it rings them, or hands them to the app's next process)."""
        if self._closed:
            return
        self._closed = True  # from here on, a lost connection is not looked for again
        self._closing.set()
        self._say_exiting(timeout / 2)
        with self._lock:
            self._aside.notify_all()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout)
        self._sock.close()
        self._delivery.close(timeout)
        atexit.unregister(self.close)

    def _say_exiting(self, budget: float) -> None:
        """Tell the daemon this process exits, for each app with a session its exit ends, so
        the session ends there while its delegate can still hear it. What the daemon is not
        told within `budget` seconds (it is gone, or does not answer) ends here the same way,
        as the daemon itself will end it when it sees the connection close."""
        with self._lock:
            lost = self._lost is not None
            ending = [
                link
                for link in self._links.values()
                if getattr(link.owner, "session_type", None) in ENDED_BY_EXIT and _live(link)
            ]
        if not ending:
            return
        if not lost:
            deadline = self._clock.monotonic() + budget
            with contextlib.suppress(OSError):
                self._sock.settimeout(budget)  # an exit does not wait out `REPLY_TIMEOUT`
            for app_id in sorted({link.app.app_id for link in ending}):
                left = max(0.0, deadline - self._clock.monotonic())
                try:
                    self._call(p.Exiting(id=0, app_id=app_id), left)
                except ExtendedRuntimeSessionError as error:
                    log.warning("could not tell the daemon that %s exits: %s", app_id, error)
        for link in ending:  # those the daemon ended are no longer running: left alone
            self._end_here(link, "the app exited; the daemon did not answer", exiting=True)

    @property
    def closed(self) -> bool:
        return self._closed


def _connected(path: str) -> socket.socket:
    """A socket connected to the daemon at `path`, or `DaemonUnavailable`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as error:
        sock.close()
        raise DaemonUnavailable(f"cannot connect to the daemon at {path}: {error}") from None
    sock.settimeout(REPLY_TIMEOUT)  # a daemon that stops mid-frame is lost, not waited for
    return sock


def _registration(app: AppRecord) -> p.RegisterApp:
    mode = None if app.mode is None else app.mode.value
    launch = None if app.launch is None else list(app.launch)
    return p.RegisterApp(id=0, app_id=app.app_id, mode=mode, launch=launch, state=int(app.state))


def _live(link: SessionLink) -> bool:
    """Whether the session of `link` is scheduled or running (worth claiming back)."""
    return getattr(link.owner, "state", None) in (SessionState.SCHEDULED, SessionState.RUNNING)


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
    raise DaemonUnavailable(f"the daemon refused the request: {reply.message}")


def _lost_session(
    link: SessionLink, reason: str, *, exiting: bool = False
) -> SessionInvalidated | None:
    """The ending a running session gets here when the daemon is gone (ERROR, UNKNOWN; a
    frontmost one of an `exiting` process resigns, as its exit ends it); `None` for others."""
    owner = link.owner
    if getattr(owner, "state", None) is not SessionState.RUNNING:
        return None
    session_type = getattr(owner, "session_type", None)
    resigned = exiting and session_type in FRONTMOST_TYPES
    return SessionInvalidated(
        at=SystemClock().now(),
        app_id=link.app.app_id,
        session_id=link.session_id,
        state=SessionState.INVALID,
        session_type=session_type,
        previous_state=SessionState.RUNNING,
        reason=InvalidationReason.RESIGNED_FRONTMOST if resigned else InvalidationReason.ERROR,
        error_code=None if resigned else ErrorCode.UNKNOWN,
        message=None if resigned else reason,
    )


def _hand_over(app: AppRecord, link: SessionLink) -> None:
    if not link.detached:
        app.hand_over(link.owner)


def ask_auto_launch(app_id: str) -> bool:
    """Ask the user once whether the daemon may launch the app for its alarms: on the
    terminal when this process has one, else on the desktop (a notification with Allow and
    Deny). No answer is no (logged, with how to say yes)."""
    import sys

    if sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty():
        prompt = (
            f"Allow extended-runtime to start {app_id} when its alarm is due, if it is not "
            "running? [y/N] "
        )
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return sys.stdin.readline().strip().lower() in ("y", "yes")
    from .._backends.linux.question import ask_on_desktop

    answer = ask_on_desktop(
        app_id,
        f"Allow {app_id} to start for its alarms?",
        f"extended-runtime can start {app_id} when one of its alarms is due and it is not "
        "running, so that it can wake you its own way.",
    )
    if answer is None:
        log.warning(
            "auto-launch for %s: no terminal to ask the user on, and no answer on the desktop, "
            "so it is declined; allow it with `xrs apps allow-launch %s`",
            app_id,
            app_id,
        )
    return answer is True
