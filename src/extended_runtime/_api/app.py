"""`App`: who asks for sessions, and how an app declares itself.

An app has an id (reverse-DNS style, like a bundle id), at most one background mode (its
session type, Apple's `WKBackgroundModes`), and optionally the command that launches it, which
a host uses to relaunch the app into a scheduled alarm. `App.current()` reads the declaration
of the running program, first found of:

1. `extended-runtime.toml` (top-level keys) in the working directory or a parent;
2. the `[tool.extended-runtime]` table of a `pyproject.toml` there;
3. the environment: `XRS_APP_ID`, `XRS_BACKGROUND_MODE`, `XRS_LAUNCH` (hosts set these when
   they launch an app, with `XRS_LAUNCHED_FOR` naming the session it is launched for).

A process a host launched for a session (`XRS_LAUNCHED_FOR` set) starts BACKGROUND, as Apple's
apps do when the system launches them, unless it says otherwise (`state=`).

Keys: `app-id` (required), `background-mode` (one of the `SessionType` values), `launch` (a
list of strings, or one string split like a shell would). Unknown keys and wrong types are
refused with a `ManifestError` naming the file and the key.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .._core.enums import ApplicationState, SessionType
from .._core.errors import ManifestError, SessionUsageError
from .port import AppRecord, HostPort, default_host

__all__ = ["App"]

H = TypeVar("H", bound=Callable[..., object])

_APP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_KEYS = frozenset({"app-id", "background-mode", "launch"})
_current: list[App] = []  # the app of this process, once read
_current_lock = threading.Lock()


class App:
    """An app that asks for sessions: its id, its session type and its launch command.

    A plain `App(...)` runs its sessions on the default host (the embedded host in this
    process); `host.app(...)` or `App(..., host=host)` binds it to another. Two `App` objects
    with the same id and declaration on one host are the same app: they share its state and its
    relaunch handlers.
    """

    def __init__(
        self,
        app_id: str,
        background_mode: SessionType | str | None = None,
        launch: Sequence[str] | str | None = None,
        *,
        state: ApplicationState | None = None,
        host: HostPort | None = None,
    ) -> None:
        self._record = AppRecord(
            check_app_id(app_id),
            _check_mode(background_mode),
            _check_launch(launch),
            initial_state(os.environ) if state is None else _check_state(state),
        )
        if host is not None:
            self._bind(host)

    def __repr__(self) -> str:
        mode = self.background_mode.value if self.background_mode else None
        return f"App({self.app_id!r}, background_mode={mode!r}, state={self.state.name})"

    @property
    def app_id(self) -> str:
        """The app's id (reverse-DNS style)."""
        return self._record.app_id

    @property
    def background_mode(self) -> SessionType | None:
        """The session type the app declares (`None`: it declares none)."""
        return self._record.mode

    @property
    def launch(self) -> tuple[str, ...] | None:
        """The command a host runs to launch the app for a scheduled session."""
        return self._record.launch

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
        state = initial_state(environ)
        try:
            mode = environ.get("XRS_BACKGROUND_MODE") or None
            return cls(app_id, mode, environ.get("XRS_LAUNCH") or None, state=state)
        except (TypeError, ValueError) as error:
            raise ManifestError(f"environment: {error}") from error

    # ------------------------------------------------------------------ host binding

    @property
    def host(self) -> HostPort:
        """The host this app's sessions run on (the default host unless bound to another)."""
        host = self._record.host
        if host is None:
            self._bind(default_host())
            host = self._record.host
            assert host is not None
        return host

    @classmethod
    def of(cls, record: AppRecord) -> App:
        """An `App` object for an app its host already keeps (a relaunched process's view)."""
        app = cls.__new__(cls)
        app._record = record
        return app

    @property
    def record(self) -> AppRecord:
        """The app as its host keeps it (shared by every `App` of this app on that host)."""
        return self._record

    def _bind(self, host: HostPort) -> None:
        bound = self._record.host
        if bound is host:
            return
        if bound is not None:
            raise SessionUsageError(f"app {self.app_id!r} is already bound to another host")
        self._record = host.register_app(self._record)

    # ------------------------------------------------------------------ state and relaunch

    @property
    def state(self) -> ApplicationState:
        """ACTIVE, INACTIVE or BACKGROUND; setting it acts at once."""
        return self._record.state

    @state.setter
    def state(self, state: ApplicationState) -> None:
        state = _check_state(state)
        record = self._record
        if record.host is None:
            record.state = state
        else:
            record.host.set_app_state(record, state)

    def on_session(self, handler: H) -> H:
        """Register a relaunch handler (Apple's `handle(_:)`); usable as a decorator.

        The host calls it with a session this process did not create: one it was launched for
        (already RUNNING; set a delegate within 10 s or it ends), or one that ended while the
        app was not running (set a delegate to hear `did_invalidate`). Registering binds the
        app to its host (the default one for a plain `App`: the daemon when it runs), which then
        hands over what it keeps for the app; a session handed over before the first handler
        was registered is given to it then.
        """
        if not callable(handler):
            raise TypeError(f"on_session needs a callable, not {handler!r}")
        self._record.add_handler(handler)
        _ = self.host  # bound now: its host hands over what it keeps for the app
        return handler


def _has_table(pyproject: Path) -> bool:
    import tomllib

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(f"{pyproject}: cannot read: {error}") from error
    return isinstance(data.get("tool", {}).get("extended-runtime"), dict)


#: Set by a host in the environment of an app it launches: the session it is launched for.
LAUNCHED_FOR = "XRS_LAUNCHED_FOR"


def launched_for(environ: Mapping[str, str]) -> str | None:
    """The session a host launched this process for, if it did."""
    return environ.get(LAUNCHED_FOR) or None


def initial_state(environ: Mapping[str, str]) -> ApplicationState:
    """BACKGROUND for a process a host launched for a session, else ACTIVE."""
    if launched_for(environ) is not None:
        return ApplicationState.BACKGROUND
    return ApplicationState.ACTIVE


def check_app_id(app_id: object) -> str:
    """The app id if it is valid (reverse-DNS style), else a `ValueError` saying what is allowed."""
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


def _check_state(state: object) -> ApplicationState:
    if isinstance(state, bool) or not isinstance(state, int):
        raise TypeError(f"state must be an ApplicationState, not {state!r}")
    return ApplicationState(state)


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
