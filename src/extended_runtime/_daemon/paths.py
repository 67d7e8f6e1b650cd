"""Where the per-user daemon keeps its files, and how its folders are kept private.

Theory
------
Three places, one per lifetime, after the XDG Base Directory specification:

- the **runtime** folder holds what lives as long as the daemon: its socket, the status file
  clients read to find it, and the lock that keeps it single. `$XDG_RUNTIME_DIR` is that place: a
  per-user folder of mode 0700 that logind creates at login and empties at logout. Without it (a
  container, cron, `su`) the folder is `/tmp/extended-runtime-<uid>`: the uid keeps users apart,
  and it is `/tmp` itself rather than `$TMPDIR` because a daemon started by systemd and a client
  started from a shell must compute the same path, and they often see different `TMPDIR`s;
- the **state** folder holds what must survive a reboot: the daemon's database;
- the **config** file holds the user's settings, and the config home holds systemd's user units.

Each path is computed here and nowhere else, from an environment mapping (`os.environ` unless one
is given), so a test or a client can ask where a daemon of another environment would live.
`XRS_RUNTIME_DIR`, `XRS_STATE_DIR` and `XRS_CONFIG` override the computed places (tests use them;
so can an unusual installation); they must be absolute, since a daemon and its clients run in
different working folders. An XDG variable that is empty or relative is ignored, as the
specification says. Linux is the only platform today: `_layout` is the one place where another
platform's folders (macOS's `~/Library`, Windows' `%LOCALAPPDATA%`) would be chosen.

Trust
-----
Whoever controls the runtime folder controls where clients connect. A name under `/tmp` can be
taken by anyone first, and a symbolic link there can point the daemon's files elsewhere. So
`ensure_private_dir` creates the folder with mode 0700 and, when it exists, accepts only a real
folder (not a link) that belongs to the current user, and takes group and other users' access
away. It checks and tightens through one descriptor opened with `O_NOFOLLOW | O_DIRECTORY`, so the
folder it changes is the folder it checked, even if the name is swapped in between. Once checked,
the name stays put: `/tmp` is sticky (only the owner may remove or rename an entry) and
`$XDG_RUNTIME_DIR` is the user's own.

`write_atomically` writes a file the way a reader must see it: whole or not at all. The bytes go
to a new file beside the target (created exclusively, never through a link, with its final mode),
are flushed to the disk, and the new file replaces the old in one `rename`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "APP_FOLDER",
    "DATABASE_NAME",
    "LOCK_NAME",
    "SOCKET_NAME",
    "STATUS_NAME",
    "config_path",
    "database_path",
    "ensure_private_dir",
    "lock_path",
    "runtime_dir",
    "socket_path",
    "state_dir",
    "status_path",
    "user_unit_dir",
    "write_atomically",
]

#: The folder of this package inside each XDG base folder.
APP_FOLDER = "extended-runtime"
SOCKET_NAME = "daemon.sock"
STATUS_NAME = "daemon.json"
LOCK_NAME = "daemon.lock"
DATABASE_NAME = "daemon.sqlite3"

_PRIVATE = 0o700


@dataclass(frozen=True, slots=True)
class _Layout:
    """The base folders of one platform, before the overrides."""

    runtime: Path
    state: Path
    config_home: Path


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _xdg(env: Mapping[str, str], name: str) -> Path | None:
    """An XDG base folder from the environment; empty or relative values do not count."""
    value = env.get(name, "")
    return Path(value) if value and Path(value).is_absolute() else None


def _override(env: Mapping[str, str], name: str) -> Path | None:
    """An `XRS_*` override: absolute, or a mistake worth saying so."""
    value = env.get(name, "")
    if not value:
        return None
    if not Path(value).is_absolute():
        raise ValueError(
            f"{name}={value!r} is a relative path: the daemon and its clients run in different "
            f"folders, so set {name} to an absolute path"
        )
    return Path(value)


def _home(env: Mapping[str, str]) -> Path:
    home = _xdg(env, "HOME")
    if home is not None:
        return home
    import pwd

    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def _xdg_layout(env: Mapping[str, str]) -> _Layout:
    """The XDG Base Directory places (Linux and other free desktops)."""
    runtime = _xdg(env, "XDG_RUNTIME_DIR")
    state = _xdg(env, "XDG_STATE_HOME")
    config = _xdg(env, "XDG_CONFIG_HOME")
    return _Layout(
        runtime=(runtime / APP_FOLDER) if runtime else Path(f"/tmp/{APP_FOLDER}-{os.getuid()}"),
        state=(state or _home(env) / ".local" / "state") / APP_FOLDER,
        config_home=config or _home(env) / ".config",
    )


def _layout(env: Mapping[str, str]) -> _Layout:
    """The platform's places: the one function another platform's layout would be chosen in."""
    return _xdg_layout(env)


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder of the daemon's socket, status file and lock (not created here)."""
    environ = _environ(env)
    return _override(environ, "XRS_RUNTIME_DIR") or _layout(environ).runtime


def socket_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the daemon listens."""
    return runtime_dir(env) / SOCKET_NAME


def status_path(env: Mapping[str, str] | None = None) -> Path:
    """Where a running daemon says who it is (`status.DaemonStatus`)."""
    return runtime_dir(env) / STATUS_NAME


def lock_path(env: Mapping[str, str] | None = None) -> Path:
    """The file whose lock keeps the daemon single (`status.claim_single_instance`)."""
    return runtime_dir(env) / LOCK_NAME


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder of what the daemon keeps across reboots (not created here)."""
    environ = _environ(env)
    return _override(environ, "XRS_STATE_DIR") or _layout(environ).state


def database_path(env: Mapping[str, str] | None = None) -> Path:
    """The daemon's SQLite database."""
    return state_dir(env) / DATABASE_NAME


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The user's settings file (it need not exist)."""
    environ = _environ(env)
    override = _override(environ, "XRS_CONFIG")
    return override or _layout(environ).config_home / APP_FOLDER / "config.toml"


def user_unit_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder of the user's own systemd units (`$XDG_CONFIG_HOME/systemd/user`)."""
    return _layout(_environ(env)).config_home / "systemd" / "user"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) or check the existing one is a private folder of ours.

    Missing parents are created with the default mode. An existing `path` must be a folder, not
    a symbolic link, and belong to the current user; group and other users' access is taken
    away. Raises `PermissionError` for a link or another user's folder and `NotADirectoryError`
    for anything else, each message saying what to do. Returns `path`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=_PRIVATE)
        created = True
    except FileExistsError:
        created = False
    descriptor = _open_folder(path)
    try:
        info = os.fstat(descriptor)
        _check_owner(path, info)
        # umask may have narrowed a new folder's mode; an old one may be too open
        if created or stat.S_IMODE(info.st_mode) != _PRIVATE:
            os.fchmod(descriptor, _PRIVATE)
    finally:
        os.close(descriptor)
    return path


def _open_folder(path: Path) -> int:
    """A descriptor of the folder `path` itself, never of what a link there points to."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            raise PermissionError(
                f"{path} is a symbolic link to {path.readlink()}, not a folder: refusing it, "
                f"since whoever made the link would choose where the daemon's files go; "
                f"remove it and try again"
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(
                f"{path} exists and is not a folder: remove or rename it, or set "
                f"XRS_RUNTIME_DIR / XRS_STATE_DIR to another place"
            ) from None
        raise


def _check_owner(path: Path, info: os.stat_result) -> None:
    uid = os.getuid()
    if info.st_uid != uid:
        raise PermissionError(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {uid}): another user's "
            f"folder cannot be trusted with the daemon's files; remove it (as uid "
            f"{info.st_uid} or root), or set XRS_RUNTIME_DIR / XRS_STATE_DIR to a folder of "
            f"your own"
        )


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` in one step: a reader sees the old file or the new, whole.

    The new file is created beside `path` with `mode` (whatever the umask), flushed to the disk
    and renamed over `path`; on any failure it is removed and `path` is left as it was.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entries, so the rename itself survives a crash."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
