"""`App`: who asks for sessions, and how an app declares itself.

An app has an id (reverse-DNS style, like a bundle id), at most one background mode (its
session type, Apple's `WKBackgroundModes`), and optionally the command that launches it, which
a host uses to relaunch the app into a scheduled alarm. `App.current()` reads the declaration
of the running program, first found of:

1. `extended-runtime.toml` (top-level keys) in the working directory or a parent;
2. the `[tool.extended-runtime]` table of a `pyproject.toml` there;
3. the environment: `XRS_APP_ID`, `XRS_BACKGROUND_MODE`, `XRS_LAUNCH` (hosts set these when
   they launch an app, with `XRS_LAUNCHED_FOR_SESSION=1`, which makes it start BACKGROUND).

Keys: `app-id` (required), `background-mode` (one of the `SessionType` values), `launch` (a
list of strings, or one string split like a shell would). Unknown keys and wrong types are
refused with a `ManifestError` naming the file and the key.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core.enums import ApplicationState, SessionType
from .._core.errors import ManifestError, SessionUsageError

if TYPE_CHECKING:
    from .._hosts.base import Host
    from .session import ExtendedRuntimeSession

__all__ = ["App", "SessionHandler"]

log = logging.getLogger("extended_runtime")

SessionHandler = Callable[["ExtendedRuntimeSession"], object]

_APP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_KEYS = frozenset({"app-id", "background-mode", "launch"})
_current: list[App] = []  # the app of this process, once read
_current_lock = threading.Lock()


class App:
    """An app that asks for sessions: its id, its session type and its launch command."""

    def __init__(
        self,
        app_id: str,
        background_mode: SessionType | str | None = None,
        launch: Sequence[str] | str | None = None,
        *,
        state: ApplicationState = ApplicationState.ACTIVE,
    ) -> None:
        self.app_id = _check_app_id(app_id)
        self.background_mode = _check_mode(background_mode)
        self.launch = _check_launch(launch)
        self._state = ApplicationState(state)
        self._handlers: list[SessionHandler] = []
        self._host: Host | None = None

    def __repr__(self) -> str:
        mode = self.background_mode.value if self.background_mode else None
        return f"App({self.app_id!r}, background_mode={mode!r}, state={self._state.name})"

    # ------------------------------------------------------------------ declaration

    @classmethod
    def current(cls) -> App:
        """The app of this process, from its declaration (read once, then shared)."""
        with _current_lock:
            if not _current:
                _current.append(cls.from_environment(Path.cwd(), os.environ))
            return _current[0]

    @classmethod
    def from_environment(cls, directory: Path, environ: Mapping[str, str]) -> App:
        """The app declared in `directory` (or a parent), else in `environ`."""
        for folder in (directory, *directory.parents):
            manifest = folder / "extended-runtime.toml"
            if manifest.is_file():
                return cls.from_file(manifest)
            pyproject = folder / "pyproject.toml"
            if pyproject.is_file() and _has_table(pyproject):
                return cls.from_file(pyproject)
        return cls._from_env(environ)

    @classmethod
    def from_file(cls, path: Path) -> App:
        """Read `extended-runtime.toml` or the `[tool.extended-runtime]` table of a pyproject."""
        import tomllib

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ManifestError(f"{path}: cannot read the app declaration: {error}") from error
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("extended-runtime")
            if not isinstance(data, dict):
                raise ManifestError(f"{path}: no [tool.extended-runtime] table")
        return cls._from_table(data, str(path))

    @classmethod
    def _from_table(cls, data: Mapping[str, Any], where: str) -> App:
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ManifestError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}"
            )
        if "app-id" not in data:
            raise ManifestError(f'{where}: app-id is missing, e.g. app-id = "org.example.app"')
        try:
            return cls(data["app-id"], data.get("background-mode"), data.get("launch"))
        except (TypeError, ValueError) as error:
            raise ManifestError(f"{where}: {error}") from error

    @classmethod
    def _from_env(cls, environ: Mapping[str, str]) -> App:
        app_id = environ.get("XRS_APP_ID")
        if not app_id:
            raise ManifestError(
                "no app declaration found: add a [tool.extended-runtime] table with app-id and "
                "background-mode to pyproject.toml, write an extended-runtime.toml, or set "
                "XRS_APP_ID and XRS_BACKGROUND_MODE"
            )
        state = ApplicationState.ACTIVE
        if environ.get("XRS_LAUNCHED_FOR_SESSION") == "1":
            state = ApplicationState.BACKGROUND
        try:
            mode = environ.get("XRS_BACKGROUND_MODE") or None
            return cls(app_id, mode, environ.get("XRS_LAUNCH") or None, state=state)
        except (TypeError, ValueError) as error:
            raise ManifestError(f"environment: {error}") from error

    # ------------------------------------------------------------------ host binding

    @property
    def host(self) -> Host:
        """The host this app's sessions run on (the default host unless bound to another)."""
        if self._host is None:
            from .._hosts.select import default_host

            default_host().register_app(self)
            self._host = default_host()
        return self._host

    def _bind(self, host: Host) -> None:
        if self._host is not None and self._host is not host:
            raise SessionUsageError(f"app {self.app_id!r} is already bound to another host")
        host.register_app(self)
        self._host = host

    # ------------------------------------------------------------------ state and relaunch

    @property
    def state(self) -> ApplicationState:
        """ACTIVE, INACTIVE or BACKGROUND; setting it acts at once."""
        return self._state

    @state.setter
    def state(self, state: ApplicationState) -> None:
        if isinstance(state, bool) or not isinstance(state, int):
            raise TypeError(f"state must be an ApplicationState, not {state!r}")
        self._state = ApplicationState(state)
        if self._host is not None:
            self._host.set_app_state(self, self._state)

    def on_session(self, handler: SessionHandler) -> SessionHandler:
        """Register a relaunch handler (Apple's `handle(_:)`); usable as a decorator.

        The host calls it with a session this process did not create: one it was launched for
        (already RUNNING; set a delegate within 10 s or it ends), or one that ended while the
        app was not running (set a delegate to hear `did_invalidate`).
        """
        if not callable(handler):
            raise TypeError(f"on_session needs a callable, not {handler!r}")
        self._handlers.append(handler)
        return handler

    def _hand_over(self, session: ExtendedRuntimeSession) -> None:
        """Give a handed-over session to the relaunch handlers (posted by the host)."""
        if not self._handlers:
            log.warning(
                "%s received session %s but has no on_session handler",
                self.app_id,
                session.session_id,
            )
        for handler in list(self._handlers):
            try:
                handler(session)
            except Exception:
                log.exception("on_session handler of %s raised", self.app_id)


def _has_table(pyproject: Path) -> bool:
    import tomllib

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(f"{pyproject}: cannot read: {error}") from error
    return isinstance(data.get("tool", {}).get("extended-runtime"), dict)


def _check_app_id(app_id: object) -> str:
    if not isinstance(app_id, str) or not _APP_ID.match(app_id):
        raise ValueError(
            f"app-id must be a string of letters, digits, '.', '-' or '_' (reverse-DNS style, "
            f"e.g. org.example.sleep), not {app_id!r}"
        )
    return app_id


def _check_mode(mode: object) -> SessionType | None:
    if mode is None:
        return None
    if not isinstance(mode, str):
        raise TypeError(f"background-mode must be a string, not {mode!r}")
    try:
        return SessionType(mode)
    except ValueError:
        choices = ", ".join(t.value for t in SessionType)
        raise ValueError(f"background-mode {mode!r} is not one of: {choices}") from None


def _check_launch(launch: object) -> tuple[str, ...] | None:
    if launch is None:
        return None
    if isinstance(launch, str):
        import shlex

        argv = shlex.split(launch)
    elif isinstance(launch, list | tuple) and all(isinstance(a, str) for a in launch):
        argv = list(launch)
    else:
        raise TypeError(f"launch must be a list of strings or a command string, not {launch!r}")
    if not argv:
        raise ValueError("launch must name a command")
    return tuple(argv)
