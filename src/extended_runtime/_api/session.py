"""`ExtendedRuntimeSession`: the object an app holds.

Theory
------
A session object is a thin, thread-safe face over whichever host its app is bound to. It owns
no rules: `start()`, `start_at()`, `invalidate()` and `notify_user()` check the arguments and
the one thing only the object knows (its own state, for usage errors), then hand the call to the
host, which asks the engine. The host writes the results back into the object synchronously
(`_apply_event`), so `state` and `expiration_date` are correct as soon as a call returns, and
posts the delegate calls (`_dispatch`) to run later, serially.

The async helpers (`running()`, `wait_invalidated()`) watch the same state changes; they never
poll.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .._core.events import SessionEvent, SessionHandedOver
    from .app import App
    from .delegate import SessionDelegate

__all__ = ["ExtendedRuntimeSession", "RepeatHandler"]

log = logging.getLogger("extended_runtime")

#: A repeat handler gets the haptic just played and returns the seconds until the next one,
#: or `(seconds, next_haptic)`; `None` or a value <= 0 stops the repetition.
RepeatHandler = Callable[[HapticType], "float | tuple[float, HapticType] | None"]


class ExtendedRuntimeSession:
    """A typed, time-limited session that keeps the app running (WKExtendedRuntimeSession).

    The type comes from the app's declared background mode. Create the object, set a delegate,
    then `start()` (or `start_at(when)` for a smart alarm). A session runs at most once.
    """

    def __init__(self, app: App | None = None, delegate: SessionDelegate | None = None) -> None:
        if app is None:
            from .app import App

            app = App.current()
        self._app = app
        self._delegate = delegate
        self._id = os.urandom(16).hex()  # 128 random bits, like a UUID4
        self._state = SessionState.NOT_STARTED
        self._expiration: datetime | None = None
        self._reason: InvalidationReason | None = None
        self._error: ExtendedRuntimeSessionError | None = None
        self._loop = _running_loop()
        self._repeat_handler: RepeatHandler | None = None
        self._held: list[SessionEvent] | None = None
        self._dead = False
        self._watchers: list[Callable[[], None]] = []

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
        if delegate is not None and self._held is not None and not self._dead:
            self._app.host.delegate_set(self)

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
        self._app.host.start(self)

    def start_at(self, when: datetime) -> None:
        """Schedule a smart-alarm session to start at `when` (aware; at most 36 h ahead)."""
        self._require_not_started("start_at()")
        self._app.host.start_at(self, as_utc(when, "when"))

    def invalidate(self) -> None:
        """End the session (cancel it if scheduled). No effect once INVALID.

        Raises `ExtendedRuntimeSessionError(MUST_BE_ACTIVE_TO_START_OR_SCHEDULE)` for a
        smart-alarm session while the app is not ACTIVE.
        """
        if self._state is SessionState.INVALID:
            return
        self._require_alive("invalidate()")
        self._app.host.invalidate(self)

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
        self._app.host.notify_user(self, kind)

    def _require_not_started(self, call: str) -> None:
        self._require_alive(call)
        if self._state is not SessionState.NOT_STARTED:
            raise SessionUsageError(
                f"{call} on a session that is {self._state.name}: a session runs at most once; "
                "create a new ExtendedRuntimeSession"
            )

    def _require_alive(self, call: str) -> None:
        if self._dead:
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
        if app is None:
            from .app import App

            app = App.current()
        return app.host.request_auto_launch(app)

    @staticmethod
    async def request_auto_launch_authorization_status_async(
        app: App | None = None,
    ) -> AutoLaunchAuthorizationStatus:
        """The async twin of `request_auto_launch_authorization_status`."""
        import asyncio

        call = ExtendedRuntimeSession.request_auto_launch_authorization_status
        return await asyncio.get_running_loop().run_in_executor(None, call, app)

    # ------------------------------------------------------------------ async helpers

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ExtendedRuntimeSession]:
        """Start (unless already started), wait until RUNNING, and invalidate on exit.

        Raises `ExtendedRuntimeSessionError` if the session ends instead of running.
        """
        await self._wait_for(self._start_and_wait)
        if self._state is SessionState.INVALID:
            raise self._failure()
        try:
            yield self
        finally:
            self._end_quietly()

    async def wait_invalidated(
        self,
    ) -> tuple[InvalidationReason, ExtendedRuntimeSessionError | None]:
        """Wait until the session is INVALID; return its reason and error."""
        await self._wait_for(lambda: None, (SessionState.INVALID,))
        assert self._reason is not None
        return self._reason, self._error

    def _start_and_wait(self) -> None:
        if self._state is SessionState.NOT_STARTED:
            self.start()

    async def _wait_for(
        self,
        begin: Callable[[], None],
        states: tuple[SessionState, ...] = (SessionState.RUNNING, SessionState.INVALID),
    ) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def check() -> None:
            if self._state in states:
                loop.call_soon_threadsafe(_settle, done)

        self._watchers.append(check)
        try:
            begin()
            check()
            await done
        finally:
            self._watchers.remove(check)

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

    # ------------------------------------------------------------------ host side

    @classmethod
    def _adopt(cls, app: App, event: SessionHandedOver) -> ExtendedRuntimeSession:
        """A fresh object for a session the app's process did not create (relaunch)."""
        session = cls(app)
        session._id = event.session_id
        session._state = event.state
        session._expiration = event.expiration_date
        session._loop = None
        session._held = list(event.missed)
        from .._core.events import SessionInvalidated  # here: events load with the first host

        for missed in event.missed:
            if isinstance(missed, SessionInvalidated):
                session._reason, session._error = missed.reason, missed.error
        return session

    def _drain_held(self) -> None:
        """Deliver, in order, what a handed-over session heard before it had a delegate."""
        while self._held and not self._dead:
            self._dispatch_now(self._held.pop(0))
        self._held = None

    def _apply_event(self, event: SessionEvent) -> None:
        """Mirror a state change from the engine (called by the host, under its lock)."""
        from .._core.events import SessionInvalidated, SessionStarted, SessionWillExpire

        if isinstance(event, SessionStarted):
            self._state = SessionState.RUNNING
            self._expiration = event.expiration_date
        elif isinstance(event, SessionInvalidated):
            self._state = SessionState.INVALID
            self._reason = event.reason
            self._error = event.error
        elif not isinstance(event, SessionWillExpire):
            self._state = SessionState.SCHEDULED
        for watcher in list(self._watchers):
            watcher()

    def _dispatch(self, event: SessionEvent) -> None:
        """Make the delegate call for `event` (posted by the host; runs serially).

        A handed-over session keeps its events until its delegate's backlog is delivered.
        """
        if self._held is not None:
            self._held.append(event)
        else:
            self._dispatch_now(event)

    def _dispatch_now(self, event: SessionEvent) -> None:
        from .._core.events import SessionInvalidated, SessionStarted, SessionWillExpire

        delegate = self._delegate
        if delegate is None or self._dead:
            return
        if isinstance(event, SessionStarted):
            _call(delegate, "did_start", self)
        elif isinstance(event, SessionWillExpire):
            _call(delegate, "will_expire", self)
        elif isinstance(event, SessionInvalidated):
            _call(delegate, "did_invalidate", self, event.reason, event.error)

    def _ask_repeat_handler(
        self, played: HapticType, default: float
    ) -> tuple[float | None, HapticType]:
        """Call the repeat handler; any failure stops the repetition and is logged."""
        handler = self._repeat_handler
        if self._dead:
            return None, played
        if handler is None:
            return default, played
        try:
            result = handler(played)
        except Exception:
            log.exception(
                "repeat handler of session %s raised; the alert stops repeating", self._id
            )
            return None, played
        return _parse_repeat(result, played, self._id)


def _parse_repeat(
    result: object, played: HapticType, session_id: str
) -> tuple[float | None, HapticType]:
    """Read a repeat handler's answer: seconds, or (seconds, next haptic), or None."""
    haptic: object = played
    answer = result
    if isinstance(result, tuple) and len(result) == 2:
        result, haptic = result
    if result is None:
        return None, played
    valid_number = isinstance(result, int | float) and not isinstance(result, bool)
    try:
        next_haptic = _haptic(haptic, "next haptic")
    except (TypeError, ValueError):
        valid_number = False
    if not valid_number:
        log.warning(
            "repeat handler of session %s returned %r; expected seconds or "
            "(seconds, HapticType): the alert stops repeating",
            session_id,
            answer,
        )
        return None, played
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
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        loop: object = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop
