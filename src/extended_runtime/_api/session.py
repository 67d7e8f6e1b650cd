"""`ExtendedRuntimeSession`: the object an app holds.

Theory
------
A session object is a thin, thread-safe face over whichever host its app is bound to. It owns
no rules: `start()`, `start_at()`, `invalidate()` and `notify_user()` check their arguments and
the one thing only the object knows (its own state, for usage errors), then hand the call to the
host through the port, which asks the engine.

The host sees the object only through its `_Link` (a `port.SessionLink`): it *mirrors* each event
into the object at once, under its lock, so `state` and `expiration_date` are right as soon as a
call returns, and *delivers* the delegate call later, serially, on the session's asyncio loop or
the host's delegate thread. A session the app did not create (a relaunch, Apple's `handle(_:)`)
is built by `adopt`; it keeps what it missed in a backlog until the app sets its delegate.

`running()` is a context manager for both worlds: `with session.running():` and
`async with session.running():` start the session, wait until it runs, and invalidate it on the
way out. Neither polls: they watch the same mirrored state changes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from .._core.clock import as_utc
from .._core.enums import (
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from .._core.errors import ExtendedRuntimeSessionError, SessionUsageError
from .app import App
from .port import AppRecord, SessionLink

if TYPE_CHECKING:
    from .._core.events import (
        ExpirationMoved,
        SessionEvent,
        SessionHandedOver,
        SessionInvalidated,
        SessionStarted,
        SessionWillExpire,
    )

__all__ = ["ExtendedRuntimeSession", "RepeatHandler", "SessionDelegate", "adopt"]

#: What `with session:` says: the block is `session.running()`, which starts the session, waits
#: until it runs and ends it on the way out.
_NOT_A_CONTEXT = (
    "`{0}with session:` does not run a session: use `{0}with session.running():`, which starts "
    "it, waits until it runs and ends it when the block ends"
)

log = logging.getLogger("extended_runtime")

#: A repeat handler gets the haptic just played and returns the seconds until the next one,
#: or `(seconds, next_haptic)`; `None` or a value <= 0 stops the repetition.
RepeatHandler = Callable[[HapticType], "float | tuple[float, HapticType] | None"]


class SessionDelegate(Protocol):
    """What a session's delegate may implement (every method is optional at run time)."""

    def did_start(self, session: ExtendedRuntimeSession) -> None: ...

    def will_expire(self, session: ExtendedRuntimeSession) -> None: ...

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None: ...


class ExtendedRuntimeSession:
    """A typed, time-limited session that keeps the app running (WKExtendedRuntimeSession).

    The type comes from the app's declared background mode. Create the object, set a delegate,
    then `start()` (or `start_at(when)` for a smart alarm). A session runs at most once.
    """

    def __init__(self, app: App | None = None, delegate: SessionDelegate | None = None) -> None:
        self._app = app if app is not None else App.current()
        self._delegate = delegate
        self._id = os.urandom(16).hex()  # 128 random bits, like a UUID4
        self._state = SessionState.NOT_STARTED
        self._expiration: datetime | None = None
        self._reason: InvalidationReason | None = None
        self._error: ExtendedRuntimeSessionError | None = None
        self._repeat_handler: RepeatHandler | None = None
        self._link = _Link(self, _running_loop())

    # ------------------------------------------------------------------ properties

    @property
    def app(self) -> App:
        """The app this session belongs to."""
        return self._app

    @property
    def session_id(self) -> str:
        """A unique id, the same in events, logs and the store."""
        return self._id

    @property
    def session_type(self) -> SessionType | None:
        """The app's declared background mode (`None`: it declares none)."""
        return self._app.background_mode

    @property
    def state(self) -> SessionState:
        """NOT_STARTED, SCHEDULED, RUNNING or INVALID; changes inside the calls that change it."""
        return self._state

    @property
    def expiration_date(self) -> datetime | None:
        """When the running session expires (aware UTC); `None` until it runs."""
        return self._expiration

    @property
    def delegate(self) -> SessionDelegate | None:
        """The object that hears `did_start`, `will_expire` and `did_invalidate` (held strongly)."""
        return self._delegate

    @delegate.setter
    def delegate(self, delegate: SessionDelegate | None) -> None:
        self._delegate = delegate
        link = self._link
        if delegate is not None and link.backlog is not None and not link.detached:
            self._app.host.delegate_set(link)

    @property
    def invalidation_reason(self) -> InvalidationReason | None:
        """Why the session ended, once INVALID."""
        return self._reason

    @property
    def error(self) -> ExtendedRuntimeSessionError | None:
        """The error it ended with, when the reason is ERROR."""
        return self._error

    def __repr__(self) -> str:
        """Apple's `description` layout, so logs read the same on both sides."""
        expiry = "(null)"
        if self._expiration is not None:
            expiry = self._expiration.strftime("%Y-%m-%d %H:%M:%S +0000")
        return (
            f"<ExtendedRuntimeSession: {self._app.app_id}> state={int(self._state)}, "
            f"sessionID={self._id}, expirationDate={expiry}"
        )

    # ------------------------------------------------------------------ commands

    def start(self) -> None:
        """Start now. The outcome reaches the delegate: `did_start` or `did_invalidate`."""
        self._require_not_started("start()")
        self._app.host.start(self._link)

    def start_at(self, when: datetime) -> None:
        """Schedule a smart-alarm session to start at `when` (aware; at most 36 h ahead)."""
        self._require_not_started("start_at()")
        self._app.host.start_at(self._link, as_utc(when, "when"))

    def invalidate(self) -> None:
        """End the session (cancel it if scheduled). No effect once INVALID.

        Raises `ExtendedRuntimeSessionError(MUST_BE_ACTIVE_TO_START_OR_SCHEDULE)` for a
        smart-alarm session while the app is not ACTIVE.
        """
        if self._state is SessionState.INVALID:
            return
        self._require_alive("invalidate()")
        self._app.host.invalidate(self._link)

    def notify_user(
        self, haptic: HapticType | int, repeat_handler: RepeatHandler | None = None
    ) -> None:
        """Alert the user now and repeat (every 3 s, or as `repeat_handler` says).

        Valid on a RUNNING smart-alarm session; otherwise ignored with a logged warning.
        """
        kind = _haptic(haptic, "haptic")
        if repeat_handler is not None and not callable(repeat_handler):
            raise TypeError(f"repeat_handler must be callable or None, not {repeat_handler!r}")
        self._require_alive("notify_user()")
        self._repeat_handler = repeat_handler
        self._app.host.notify_user(self._link, kind, handler=repeat_handler is not None)

    def _require_not_started(self, call: str) -> None:
        self._require_alive(call)
        if self._state is not SessionState.NOT_STARTED:
            raise SessionUsageError(
                f"{call} on a session that is {self._state.name}: a session runs at most once; "
                "create a new ExtendedRuntimeSession"
            )

    def _require_alive(self, call: str) -> None:
        if self._link.detached:
            raise SessionUsageError(
                f"{call} on a session of a process of {self._app.app_id} that has exited"
            )

    # ------------------------------------------------------------------ auto-launch

    @staticmethod
    def request_auto_launch_authorization_status(
        app: App | None = None,
    ) -> AutoLaunchAuthorizationStatus:
        """Whether the host may launch the app for its scheduled sessions; asks once.

        Raises `ExtendedRuntimeSessionError`: UNSUPPORTED_SESSION_TYPE unless the app is a
        smart-alarm app, MUST_BE_ACTIVE_TO_PROMPT when never asked and the app is not ACTIVE.
        """
        app = app if app is not None else App.current()
        return app.host.request_auto_launch(app.record)

    @staticmethod
    async def request_auto_launch_authorization_status_async(
        app: App | None = None,
    ) -> AutoLaunchAuthorizationStatus:
        """The async twin of `request_auto_launch_authorization_status`."""
        import asyncio

        call = ExtendedRuntimeSession.request_auto_launch_authorization_status
        return await asyncio.get_running_loop().run_in_executor(None, call, app)

    # ------------------------------------------------------------------ running

    def __enter__(self) -> NoReturn:
        raise TypeError(_NOT_A_CONTEXT.format(""))

    def __exit__(self, *exc: object) -> None:
        """Never reached: `__enter__` refuses (a `with` needs both to say why)."""

    async def __aenter__(self) -> NoReturn:
        raise TypeError(_NOT_A_CONTEXT.format("async "))

    async def __aexit__(self, *exc: object) -> None:
        """Never reached: `__aenter__` refuses."""

    def running(self) -> _Running:
        """Start (unless started), wait until RUNNING, and invalidate on the way out.

        Use `with session.running():` or `async with session.running():`. Raises
        `ExtendedRuntimeSessionError` if the session ends instead of running. A scheduled
        session is waited for until its date.
        """
        return _Running(self)

    async def wait_invalidated(
        self,
    ) -> tuple[InvalidationReason, ExtendedRuntimeSessionError | None]:
        """Wait until the session has ended and `did_invalidate` has been delivered; return
        its reason and error."""
        await self._until(lambda: self._link.ended)
        assert self._reason is not None
        return self._reason, self._error

    def _start_if_new(self) -> None:
        if self._state is SessionState.NOT_STARTED:
            self.start()

    def _running_or_over(self) -> bool:
        return self._state in (SessionState.RUNNING, SessionState.INVALID)

    def _wait(self, reached: Callable[[], bool]) -> None:
        """Block until `reached()` (interruptible by Ctrl-C)."""
        event = threading.Event()

        def check() -> None:
            if reached():
                event.set()

        with self._link.watching(check):
            check()
            event.wait()

    async def _until(self, reached: Callable[[], bool]) -> None:
        """Wait on the running loop until `reached()`."""
        import asyncio

        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def check() -> None:
            if reached():
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                    loop.call_soon_threadsafe(_settle, done)

        with self._link.watching(check):
            check()
            await done

    def _failure(self) -> ExtendedRuntimeSessionError:
        if self._error is not None:
            return self._error
        reason = self._reason.name if self._reason is not None else "unknown"
        return ExtendedRuntimeSessionError(
            ErrorCode.UNKNOWN,
            f"the session of {self._app.app_id} did not run: {reason}",
            reason=self._reason,
        )

    def _end_quietly(self) -> None:
        try:
            self.invalidate()
        except ExtendedRuntimeSessionError as error:
            log.warning("session %s left running: %s", self._id, error)


class _Running:
    """What `session.running()` returns: a sync and async context manager."""

    __slots__ = ("_session",)

    def __init__(self, session: ExtendedRuntimeSession) -> None:
        self._session = session

    def __enter__(self) -> ExtendedRuntimeSession:
        session = self._session
        session._start_if_new()
        session._wait(session._running_or_over)
        return self._entered()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._session._end_quietly()

    async def __aenter__(self) -> ExtendedRuntimeSession:
        session = self._session
        session._start_if_new()
        await session._until(session._running_or_over)
        return self._entered()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._session._end_quietly()

    def _entered(self) -> ExtendedRuntimeSession:
        session = self._session
        if session.state is SessionState.INVALID:
            raise session._failure()
        return session


class _Link:
    """The session as its host sees it (`port.SessionLink`)."""

    __slots__ = ("__weakref__", "_session", "_watchers", "backlog", "detached", "ended", "loop")

    def __init__(self, session: ExtendedRuntimeSession, loop: object | None) -> None:
        self._session = session
        self.loop = loop
        #: For a handed-over session, what it heard before it had a delegate.
        self.backlog: list[SessionEvent] | None = None
        self.detached = False
        #: Whether `did_invalidate` has been delivered (or there was nobody to deliver it to).
        self.ended = False
        self._watchers: list[Callable[[], None]] = []

    @property
    def session_id(self) -> str:
        return self._session._id

    @property
    def app(self) -> AppRecord:
        return self._session._app.record

    @property
    def owner(self) -> object:
        return self._session

    def mirror(self, event: SessionEvent) -> None:
        started, _, invalidated, moved = _kinds()
        session = self._session
        session._state = event.state
        if isinstance(event, started | moved):
            session._expiration = event.expiration_date
        elif isinstance(event, invalidated):
            session._reason, session._error = event.reason, event.error
        for watcher in list(self._watchers):
            watcher()

    def deliver(self, event: SessionEvent) -> None:
        if self.backlog is not None:
            self.backlog.append(event)
        else:
            self._dispatch(event)

    def deliver_backlog(self) -> None:
        while self.backlog and not self.detached:
            self._dispatch(self.backlog.pop(0))
        self.backlog = None

    def repeat_answer(self, played: HapticType, default: float) -> tuple[float | None, HapticType]:
        handler = self._session._repeat_handler
        if self.detached:
            return None, played
        if handler is None:
            return default, played
        try:
            result = handler(played)
        except Exception:
            log.exception(
                "repeat handler of session %s raised; the alert goes on every %g s",
                self.session_id,
                default,
            )
            return default, played
        return _parse_repeat(result, played, default, self.session_id)

    def detach(self) -> None:
        self.detached = True

    def watching(self, watcher: Callable[[], None]) -> _Watching:
        """Call `watcher` at every mirrored change while the returned context is open."""
        return _Watching(self._watchers, watcher)

    def _dispatch(self, event: SessionEvent) -> None:
        started, warned, invalidated, _ = _kinds()
        session = self._session
        delegate = session._delegate
        if delegate is not None and not self.detached:
            if isinstance(event, started):
                _call(delegate, "did_start", session)
            elif isinstance(event, warned):
                _call(delegate, "will_expire", session)
            elif isinstance(event, invalidated):
                _call(delegate, "did_invalidate", session, event.reason, event.error)
        if isinstance(event, invalidated):
            self.ended = True
            for watcher in list(self._watchers):
                watcher()


class _Watching:
    """A watcher registered for the duration of a `with` block."""

    __slots__ = ("_watcher", "_watchers")

    def __init__(self, watchers: list[Callable[[], None]], watcher: Callable[[], None]) -> None:
        self._watchers = watchers
        self._watcher = watcher

    def __enter__(self) -> None:
        self._watchers.append(self._watcher)

    def __exit__(self, *exc: object) -> None:
        self._watchers.remove(self._watcher)


def adopt(app: AppRecord, event: SessionHandedOver) -> SessionLink:
    """A fresh session object for a session the app's process did not create (relaunch)."""
    from .._core.events import SessionInvalidated

    session = ExtendedRuntimeSession(App.of(app))
    session._id = event.session_id
    session._state = event.state
    session._expiration = event.expiration_date
    link = session._link
    link.loop = None
    link.backlog = list(event.missed)
    for missed in event.missed:
        if isinstance(missed, SessionInvalidated):
            session._reason, session._error = missed.reason, missed.error
    return link


@functools.cache
def _kinds() -> tuple[
    type[SessionStarted], type[SessionWillExpire], type[SessionInvalidated], type[ExpirationMoved]
]:
    """The event classes a session mirrors, loaded once, on first use: `import extended_runtime`
    does not need them, and an import statement per event would cost more than the event."""
    from .._core.events import (
        ExpirationMoved,
        SessionInvalidated,
        SessionStarted,
        SessionWillExpire,
    )

    return SessionStarted, SessionWillExpire, SessionInvalidated, ExpirationMoved


def _parse_repeat(
    result: object, played: HapticType, default: float, session_id: str
) -> tuple[float | None, HapticType]:
    """Read a repeat handler's answer: seconds, or (seconds, next haptic), or `None`.

    `None` and NaN stop the repetition (so do <= 0, which the engine reads); anything that is
    not a number goes on at `default`, with a warning, so a bug never silences an alarm.
    """
    answer = result
    haptic: object = played
    if isinstance(result, tuple) and len(result) == 2:
        result, haptic = result
    if result is None:
        return None, played
    try:
        valid = isinstance(result, int | float) and not isinstance(result, bool)
        next_haptic = _haptic(haptic, "next haptic")
    except (TypeError, ValueError):
        valid = False
    if not valid:
        log.warning(
            "repeat handler of session %s returned %r; expected seconds or (seconds, HapticType):"
            " the alert goes on every %g s",
            session_id,
            answer,
            default,
        )
        return default, played
    seconds = float(result)  # type: ignore[arg-type]
    return (None if math.isnan(seconds) else seconds), next_haptic


def _haptic(value: object, name: str) -> HapticType:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a HapticType, not {value!r}")
    try:
        return HapticType(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a HapticType: use one of "
            + ", ".join(f"{h.name} ({int(h)})" for h in HapticType)
        ) from None


def _call(delegate: object, method: str, *args: Any) -> None:
    function = getattr(delegate, method, None)
    if function is None:
        return
    try:
        function(*args)
    except Exception:
        log.exception("delegate %s.%s raised; the session is not affected", delegate, method)


def _settle(future: Any) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> object | None:
    """This thread's running asyncio loop, if any, without importing asyncio.

    asyncio may be absent (then no loop runs), or half imported right now by another thread
    (a library loading it lazily): then it is not this thread's, so no loop runs here either,
    and reading an attribute it does not have yet must not fail the session.
    """
    get_running_loop = getattr(sys.modules.get("asyncio"), "get_running_loop", None)
    if get_running_loop is None:
        return None
    try:
        loop: object = get_running_loop()
    except RuntimeError:
        return None
    return loop
