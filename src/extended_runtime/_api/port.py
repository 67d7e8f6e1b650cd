"""The port: the one small interface between the objects an app holds and their host.

Theory
------
`App` and `ExtendedRuntimeSession` own no rules; a host does. Between them runs one interface,
in both directions, and nothing else: neither side reaches into the other's private attributes.

* `HostPort` is what the API objects ask of a host: register an app, change its foreground
  state, start, schedule, invalidate, alert, say a delegate was set, ask about auto-launch. Every
  host (virtual, embedded, and later the daemon's client) implements it.
* `SessionLink` is what a host asks of a session object: mirror an event into its state at once
  (so `state` changes inside the call that changed it), deliver a delegate call later, ask its
  repeat handler, and stop hearing anything once its process has exited. Each session object has
  one link; the host holds links, never sessions.
* `AppRecord` is an app as a host keeps it: its declaration, its foreground state and its
  relaunch handlers. Every `App` object with the same id on one host shares one record, which is
  what makes a second `App` with the same declaration the same app.

Hosts sit above this layer and import it; this layer knows a host only as a `HostPort`. The one
host the API finds by itself, the default host of a plain `App(...)`, is supplied from the top of
the package (`use_default_host`), so no import here points upward.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # this module is imported with the package: it keeps to what it must run
    import logging
    from datetime import datetime

    from .._core.enums import (
        ApplicationState,
        AutoLaunchAuthorizationStatus,
        HapticType,
        SessionType,
    )
    from .._core.events import SessionEvent

__all__ = ["AppRecord", "HostPort", "SessionLink", "default_host", "use_default_host"]


def _log() -> logging.Logger:
    import logging

    return logging.getLogger("extended_runtime")


#: A relaunch handler (Apple's `handle(_:)`); it receives the `ExtendedRuntimeSession`.
SessionHandler = Callable[..., object]


class AppRecord:
    """An app as its host keeps it: declaration, foreground state, relaunch handlers."""

    __slots__ = ("app_id", "handlers", "host", "launch", "mode", "pending", "state")

    def __init__(
        self,
        app_id: str,
        mode: SessionType | None,
        launch: tuple[str, ...] | None,
        state: ApplicationState,
    ) -> None:
        self.app_id = app_id
        self.mode = mode
        self.launch = launch
        self.state = state
        self.handlers: list[SessionHandler] = []
        #: Sessions handed over before the app registered a handler.
        self.pending: list[object] = []
        self.host: HostPort | None = None

    def declaration(self) -> str:
        """The declaration, as a message names it."""
        mode = self.mode.value if self.mode is not None else None
        return f"background-mode={mode!r}, launch={list(self.launch) if self.launch else None!r}"

    def same_declaration(self, other: AppRecord) -> bool:
        """Whether `other` declares the same app (id, mode and launch command)."""
        return (self.app_id, self.mode, self.launch) == (other.app_id, other.mode, other.launch)

    def join(self, other: AppRecord, where: str) -> AppRecord:
        """`other` is a second record of this app, known to `where`: the same declaration
        shares this record (and adds its handlers); another one is a usage error naming both."""
        if not self.same_declaration(other):
            from .._core.errors import SessionUsageError

            raise SessionUsageError(
                f"app {other.app_id!r} is already registered with {where} as "
                f"{self.declaration()}; this App declares {other.declaration()}: "
                "use one declaration per app id"
            )
        self.handlers.extend(h for h in other.handlers if h not in self.handlers)
        return self

    def hand_over(self, session: object) -> None:
        """Give a session this process did not create to the relaunch handlers (posted); with
        none registered yet, it waits for the first (`add_handler`)."""
        if not self.handlers:
            if len(self.pending) >= MAX_PENDING:
                _log().warning("%s has no on_session handler: a session handed over is dropped",
                            self.app_id)  # fmt: skip
                return
            self.pending.append(session)
            return
        for handler in list(self.handlers):
            _run_handler(self.app_id, handler, session)

    def add_handler(self, handler: SessionHandler) -> None:
        """Register a relaunch handler; the sessions handed over before any was registered
        go to the first one now."""
        self.handlers.append(handler)
        pending, self.pending = self.pending, []
        for session in pending:
            _run_handler(self.app_id, handler, session)


#: Sessions a record keeps for its first handler at most (an app that never registers one).
MAX_PENDING = 32


def _run_handler(app_id: str, handler: SessionHandler, session: object) -> None:
    try:
        handler(session)
    except Exception:
        _log().exception("on_session handler of %s raised", app_id)


class SessionLink(Protocol):
    """A session object as its host sees it."""

    @property
    def session_id(self) -> str:
        """The session's id."""
        ...

    @property
    def app(self) -> AppRecord:
        """The app the session belongs to."""
        ...

    @property
    def loop(self) -> object | None:
        """The asyncio loop its delegate calls run on, or `None` for the delegate thread."""
        ...

    @property
    def owner(self) -> object:
        """The `ExtendedRuntimeSession` itself, for the app's relaunch handlers."""
        ...

    @property
    def detached(self) -> bool:
        """Whether its process has exited (it hears nothing more)."""
        ...

    def mirror(self, event: SessionEvent) -> None:
        """Take the state `event` leads to, at once (called under the host's lock)."""

    def deliver(self, event: SessionEvent) -> None:
        """Make the delegate call for `event` (posted by the host; calls run serially)."""

    def deliver_backlog(self) -> None:
        """A handed-over session got a delegate: deliver what it missed, in order."""

    def repeat_answer(self, played: HapticType, default: float) -> tuple[float | None, HapticType]:
        """Ask the repeat handler for the delay and haptic after the alert `played`."""
        ...

    def detach(self) -> None:
        """Its process has exited: hear nothing more; its state still reads true."""


class HostPort(Protocol):
    """What `App` and `ExtendedRuntimeSession` ask of the host they run on."""

    def register_app(self, app: AppRecord) -> AppRecord:
        """Make the app known; returns the record every object of that app shares."""
        ...

    def set_app_state(self, app: AppRecord, state: ApplicationState) -> None:
        """The app's foreground state changed."""

    def start(self, link: SessionLink) -> None:
        """`start()`."""

    def start_at(self, link: SessionLink, when: datetime) -> None:
        """`start_at(when)` (`when` aware UTC)."""

    def invalidate(self, link: SessionLink) -> None:
        """`invalidate()`."""

    def notify_user(self, link: SessionLink, haptic: HapticType, *, handler: bool) -> None:
        """`notify_user(haptic)`; `handler`: the session has a repeat handler to ask."""

    def delegate_set(self, link: SessionLink) -> None:
        """A handed-over session got a delegate."""

    def request_auto_launch(self, app: AppRecord) -> AutoLaunchAuthorizationStatus:
        """Apple's `requestAutoLaunchAuthorizationStatus`."""
        ...


_default: list[Callable[[], HostPort]] = []
_default_lock = threading.Lock()


def use_default_host(factory: Callable[[], HostPort]) -> None:
    """Say where a plain `App(...)` runs (called once, by the package's `__init__`)."""
    with _default_lock:
        _default[:] = [factory]


def default_host() -> HostPort:
    """The host of apps not bound to another (created on first use by the factory)."""
    with _default_lock:
        if not _default:
            raise RuntimeError("no default host: import extended_runtime, not its parts")
        factory = _default[0]
    return factory()
