"""The status file a running daemon writes, how a client decides whether to trust it, and the lock
that keeps one daemon per user.

Theory
------
A daemon that is up writes `daemon.json` in its runtime folder (`paths.status_path`): its pid,
its socket, the protocol it speaks, its package version and when it started. The file's format
belongs to the protocol, so `protocol` is also the file's version. It is written atomically with
mode 0600 (`paths.write_atomically`), after the socket is bound, so a client that finds the file
finds a socket; and the daemon removes it on the way out, but only while it still names the
daemon's own pid (`remove_status`), so a daemon that exits late never removes a newer one's file.

A client calls `find_daemon` at start-up, so it must be quick: it reads one small file and makes
a few system calls, imports nothing beyond `os`, `json`, `stat`, `dataclasses`, `datetime` and
`pathlib` (and `paths`, which imports the same), and starts no process. It believes the file
only when every check passes, in this order, and otherwise returns the first failure as a
sentence a user can act on:

1. the file exists, is a regular file (not a link), belongs to this user and no other user can
   write it: whoever can write it chooses where the client connects;
2. it parses (`DaemonStatus.from_json` is strict about keys and types);
3. its pid is alive (`kill(pid, 0)`); a pid that belongs to another user (EPERM) is not ours: the
   daemon died and its pid was reused;
4. its socket exists, is a socket and belongs to this user;
5. its protocol is the client's own `PROTOCOL_VERSION`.

A pid that is alive but reused by an unrelated process of the same user still passes; the
connection settles it (refused: stale), and the socket's peer credentials are checked there.

One daemon per user: the daemon takes an exclusive `flock` on `daemon.lock` for its lifetime
(`claim_single_instance`). The kernel drops the lock when the daemon's last descriptor of it
closes, so a crash never leaves it held and no pid file has to be guessed about. The descriptor
is close-on-exec, so the apps the daemon launches do not inherit the lock and cannot keep it
after the daemon is gone. The daemon takes the lock before anything else, so it owns the status
file and the socket from then on.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import LOCK_NAME, STATUS_NAME, status_path, write_atomically

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "PROTOCOL_VERSION",
    "DaemonStatus",
    "claim_single_instance",
    "find_daemon",
    "package_version",
    "remove_status",
    "write_status",
]

#: The version of the daemon's protocol, and so of its status file. A client speaks to a daemon
#: of the same version only.
PROTOCOL_VERSION = 2

_FIELDS = ("pid", "socket", "protocol", "version", "started_at")
_MAX_BYTES = 64 * 1024  # far above any real status file; a bigger one is not ours


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """Who the running daemon is and where it listens. `started_at` is aware, in UTC."""

    pid: int
    socket: str
    protocol: int
    version: str
    started_at: datetime

    def __post_init__(self) -> None:
        moment = self.started_at
        if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
            raise ValueError(f"started_at must be an aware datetime, not {moment.isoformat()}")
        object.__setattr__(self, "started_at", moment.astimezone(UTC))

    def to_json(self) -> str:
        """The status as one JSON object, `started_at` in ISO 8601 with its UTC offset."""
        return json.dumps(
            {
                "pid": self.pid,
                "socket": self.socket,
                "protocol": self.protocol,
                "version": self.version,
                "started_at": self.started_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> DaemonStatus:
        """Parse a status; a missing key or a value of the wrong type raises `ValueError`.

        Keys it does not know are ignored, so a newer daemon can add some and still be told
        apart by its `protocol`.
        """
        try:
            data = json.loads(text)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"the daemon status is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(f"the daemon status must be a JSON object, not {type(data).__name__}")
        missing = [key for key in _FIELDS if key not in data]
        if missing:
            raise ValueError(f"the daemon status lacks {', '.join(missing)}")
        pid = _integer(data, "pid")
        if pid <= 0:  # kill(0, ...) and kill(-1, ...) mean groups, never a daemon
            raise ValueError(f"the daemon status's pid must be positive, not {pid}")
        socket = _text(data, "socket")
        if not Path(socket).is_absolute():
            raise ValueError(f"the daemon status's socket must be an absolute path: {socket!r}")
        return cls(
            pid=pid,
            socket=socket,
            protocol=_integer(data, "protocol"),
            version=_text(data, "version"),
            started_at=_instant(data["started_at"]),
        )


def _integer(data: dict[str, object], key: str) -> int:
    value = data[key]
    if type(value) is not int:  # bool is an int to isinstance, and never a pid
        raise ValueError(f"the daemon status's {key} must be an integer, not {value!r}")
    return value


def _text(data: dict[str, object], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"the daemon status's {key} must be a non-empty string, not {value!r}")
    return value


def _instant(value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(
            f"the daemon status's started_at must be an ISO 8601 instant with a UTC offset, "
            f"not {value!r}"
        )
    return moment


def package_version() -> str:
    """The installed version of this package, for `DaemonStatus.version`.

    Read from the distribution's metadata, which carries the same number as
    `extended_runtime.__version__` (a test holds them together): this layer may not import the
    package's top, and the metadata is read only by the daemon, never on a client's path.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("extended-runtime")
    except PackageNotFoundError:
        return "unknown"


def write_status(path: Path, status: DaemonStatus) -> None:
    """Write `status` to `path` atomically, mode 0600."""
    write_atomically(path, (status.to_json() + "\n").encode(), 0o600)


def remove_status(path: Path, pid: int) -> bool:
    """Remove the status file if it still names `pid`; say whether it did.

    A file of another pid (a newer daemon's) or one that does not parse is left alone.
    """
    try:
        named = DaemonStatus.from_json(_read_small(path)).pid
    except (OSError, ValueError):
        return False
    if named != pid:
        return False
    path.unlink(missing_ok=True)
    return True


class _Unusable(Exception):
    """A check of `find_daemon` failed; the message is the sentence for the user."""


def find_daemon(
    env: Mapping[str, str] | None = None,
) -> tuple[DaemonStatus | None, str]:
    """The running daemon of this user, or why there is none to use.

    Returns `(status, "... reachable at SOCKET")` when every check of the module's list passes,
    else `(None, reason)`. Never raises for what it finds on the disk.
    """
    path = status_path(env)
    try:
        status = _trusted_status(path)
        _check_alive(status, path)
        _check_socket(status)
        _check_protocol(status)
    except _Unusable as unusable:
        return None, str(unusable)
    return status, (
        f"the daemon (pid {status.pid}, version {status.version}) is reachable at {status.socket}"
    )


def _trusted_status(path: Path) -> DaemonStatus:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _Unusable(f"no daemon running: there is no status file at {path}") from None
    except OSError as error:
        if path.is_symlink():
            raise _Unusable(
                f"the daemon status file {path} is a symbolic link, which a daemon never "
                f"writes: refusing it; remove it and start the daemon"
            ) from None
        raise _Unusable(f"cannot read the daemon status file {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as file:
        _check_file(path, os.fstat(descriptor))
        data = file.read(_MAX_BYTES + 1)
    try:
        if len(data) > _MAX_BYTES:
            raise ValueError(f"it is over {_MAX_BYTES} bytes long")
        return DaemonStatus.from_json(data)
    except ValueError as error:
        raise _Unusable(
            f"the daemon status file {path} is unreadable ({error}): remove it and start the daemon"
        ) from None


def _check_file(path: Path, info: os.stat_result) -> None:
    """The status file is a regular file of ours that nobody else can rewrite."""
    if not stat.S_ISREG(info.st_mode):
        raise _Unusable(f"the daemon status file {path} is not a regular file: refusing it")
    uid = os.getuid()
    if info.st_uid != uid:
        raise _Unusable(
            f"the daemon status file {path} is owned by another user (uid {info.st_uid}, you "
            f"are uid {uid}): refusing it; remove it, or set XRS_RUNTIME_DIR to a folder of "
            f"your own"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _Unusable(
            f"the daemon status file {path} is writable by other users "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): refusing it; remove it and restart the "
            f"daemon"
        )


def _check_alive(status: DaemonStatus, path: Path) -> None:
    try:
        os.kill(status.pid, 0)
    except ProcessLookupError:
        raise _Unusable(
            f"no daemon running: stale status file of dead pid {status.pid} at {path} "
            f"(the daemon did not exit cleanly; the next daemon replaces the file)"
        ) from None
    except PermissionError:
        raise _Unusable(
            f"no daemon running: the status file {path} names pid {status.pid}, which belongs "
            f"to another user (the daemon died and its pid was reused); the file is stale"
        ) from None


def _check_socket(status: DaemonStatus) -> None:
    try:
        info = os.lstat(status.socket)
    except FileNotFoundError:
        raise _Unusable(
            f"the daemon (pid {status.pid}) has no socket at {status.socket}: it is starting "
            f"up, or its status file is stale; restart the daemon if this persists"
        ) from None
    except OSError as error:
        raise _Unusable(
            f"cannot check the daemon's socket {status.socket}: {error.strerror}"
        ) from None
    if not stat.S_ISSOCK(info.st_mode):
        raise _Unusable(
            f"{status.socket}, named by the daemon status file, is not a socket: the file is "
            f"stale or was tampered with; remove it and restart the daemon"
        )
    uid = os.getuid()
    if info.st_uid != uid:
        raise _Unusable(
            f"the daemon's socket {status.socket} is owned by another user (uid {info.st_uid}, "
            f"you are uid {uid}): refusing to connect to it"
        )


def _check_protocol(status: DaemonStatus) -> None:
    if status.protocol == PROTOCOL_VERSION:
        return
    advice = (
        "restart the daemon so that it runs the version installed now"
        if status.protocol < PROTOCOL_VERSION
        else "upgrade extended-runtime here, or restart the daemon with this version"
    )
    raise _Unusable(
        f"the daemon (pid {status.pid}, version {status.version}) speaks protocol "
        f"{status.protocol} but this client speaks {PROTOCOL_VERSION}: {advice}"
    )


def claim_single_instance(runtime: Path) -> int:
    """Lock `runtime/daemon.lock` for this process and return the descriptor to keep open.

    `runtime` must exist (`paths.ensure_private_dir`). The file is created with mode 0600 and
    holds the pid of the daemon that has the lock. Closing the descriptor, or exiting, releases
    the lock. Raises `RuntimeError` naming the running daemon when another holds it.
    """
    import fcntl

    path = runtime / LOCK_NAME
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(path, flags, 0o600)
    try:
        info = os.fstat(descriptor)
        if info.st_uid != os.getuid() or not stat.S_ISREG(info.st_mode):
            raise PermissionError(f"{path} is not a regular file of yours: remove it")
        os.fchmod(descriptor, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise RuntimeError(_already_running(runtime)) from None
    except BaseException:
        os.close(descriptor)
        raise
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


def _already_running(runtime: Path) -> str:
    """Say that a daemon runs, with its pid from its status file or, failing that, its lock."""
    pid: int | None
    try:
        pid = DaemonStatus.from_json(_read_small(runtime / STATUS_NAME)).pid
    except (OSError, ValueError):
        try:
            pid = int(_read_small(runtime / LOCK_NAME))
        except (OSError, ValueError):
            pid = None
    who = f"a daemon already runs for this user (pid {pid})" if pid else "a daemon already runs"
    return (
        f"{who}: it holds {runtime / LOCK_NAME}; use it, or stop it first "
        f"(systemctl --user stop extended-runtime, or end that process)"
    )


def _read_small(path: Path) -> bytes:
    """A small file's bytes, never through a link."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        return file.read(_MAX_BYTES)
