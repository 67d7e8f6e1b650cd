"""The child of `xrs run` and the notes that wake the main thread, light enough to start fast.

Both ways of running a command share this module: the quick path (`quick`), which starts the
command before anything of the engine is imported, and the full one (`run`), which may take the
child over from it. So it imports nothing of the package but `_backends.threads`, and nothing
heavier than `subprocess`.

Everything that wakes the main thread is a note in one inbox (`Inbox`): a session event, the
child's exit, a caught signal. The signal handler only puts a note there; the main thread alone
acts on notes, so a signal is forwarded exactly once, and a handler never interrupts anything
half done. The main thread sleeps in `select` on the inbox's pipe, which is also the
interpreter's signal wakeup fd, so a signal wakes it whichever thread the kernel delivers it to.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import string
import subprocess
import sys
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from select import select
from types import FrameType, TracebackType
from typing import Any, NamedTuple

from .._backends.threads import start_thread

__all__ = [
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
    "Caught",
    "Inbox",
    "Note",
    "Signals",
    "Woke",
    "default_app_id",
    "error",
    "first_caught",
    "shell_status",
    "spawn",
    "unrunnable",
    "watch_child",
]

#: `xrs run` exits with these when the command cannot be executed, as shells do.
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Woke(enum.Enum):
    """Why the main thread was woken, besides a signal."""

    SESSION = "a session event"
    CHILD = "the child exited"


class Caught(NamedTuple):
    """A signal `xrs` caught, and whether the child existed at that moment."""

    signum: int
    child_existed: bool


Note = Woke | Caught


class Inbox:
    """Notes for the main thread, put from any thread or from a signal handler.

    A note goes into a `SimpleQueue` (whose `put` is reentrant, so safe in a signal handler),
    then a byte into a pipe. The main thread sleeps in `select` on that pipe, which is also the
    interpreter's signal wakeup fd: a signal the kernel hands to another thread still wakes the
    main thread, which then runs the Python handler, which puts its note. (A plain blocking
    `get` would sleep on through a signal delivered to another thread.)
    """

    def __init__(self) -> None:
        self._notes: SimpleQueue[Note] = SimpleQueue()
        self.wakeup_fd: int = -1
        self._read_fd: int = -1

    def __enter__(self) -> Inbox:
        self._read_fd, self.wakeup_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._read_fd)
        os.close(self.wakeup_fd)

    def put(self, note: Note) -> None:
        self._notes.put(note)
        with contextlib.suppress(BlockingIOError):  # full: the reader is awake anyway
            os.write(self.wakeup_fd, b"\0")

    def get(self) -> Note:
        """The next note, sleeping until there is one."""
        while (note := self.get_nowait()) is None:
            self._sleep(None)
        return note

    def get_within(self, seconds: float) -> Note | None:
        """The next note, or `None` when none comes within about `seconds` (a wake-up without
        a note, such as a signal with no handler of ours, ends the wait early)."""
        note = self.get_nowait()
        if note is None and seconds > 0:
            self._sleep(seconds)
            note = self.get_nowait()
        return note

    def get_nowait(self) -> Note | None:
        try:
            return self._notes.get_nowait()
        except Empty:
            return None

    def _sleep(self, timeout: float | None) -> None:
        select([self._read_fd], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 4096)


#: What `signal.signal` returns and takes back.
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Signals:
    """Catches SIGTERM, SIGHUP and SIGINT while in use; restores the previous handlers after.

    Handlers can only be set from the main thread; elsewhere (an embedding program's worker
    thread) nothing is caught and signals keep their previous effect.
    """

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._previous: dict[int, _Handler] = {}
        self._previous_wakeup_fd: int | None = None
        #: Set by the main thread once `Popen` has returned.
        self.child_exists = False
        #: Whether `xrs` is in its terminal's foreground process group (Ctrl-C reaches both).
        self.from_terminal = False

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            self.from_terminal = in_terminal_foreground()
            self._previous_wakeup_fd = signal.set_wakeup_fd(
                self._inbox.wakeup_fd, warn_on_full_buffer=False
            )
            for signum in FORWARDED:
                self._previous[signum] = signal.signal(signum, self._caught)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        self._inbox.put(Caught(signum, self.child_exists))

    def should_forward(self, caught: Caught) -> bool:
        """Forward all but a terminal's Ctrl-C that the existing child received itself."""
        from_terminal = caught.signum == signal.SIGINT and self.from_terminal
        return not (from_terminal and caught.child_existed)

    def forward(self, note: Note, child: subprocess.Popen[bytes]) -> None:
        """Pass a caught signal on to the child, if it should be."""
        if isinstance(note, Caught) and self.should_forward(note) and child.poll() is None:
            child.send_signal(note.signum)


def in_terminal_foreground() -> bool:
    """Whether this process group is the foreground group of the controlling terminal."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


def first_caught(inbox: Inbox) -> Caught | None:
    """The first signal among the notes already queued (the others are dropped)."""
    while (note := inbox.get_nowait()) is not None:
        if isinstance(note, Caught):
            return note
    return None


def spawn(command: tuple[str, ...]) -> subprocess.Popen[bytes] | int:
    """Start the command; on failure say why and return the shell's exit status."""
    try:
        return subprocess.Popen(command)
    except FileNotFoundError:
        error(f"command not found: {command[0]}")
        return EXIT_NOT_FOUND
    except PermissionError:
        error(f"command not executable: {command[0]}")
        return EXIT_NOT_EXECUTABLE
    except OSError as failure:
        error(f"cannot execute {command[0]}: {failure.strerror}")
        return EXIT_NOT_EXECUTABLE


def unrunnable(program: str) -> tuple[int, str] | None:
    """Why `program` cannot run, as an exit status and a message; `None` when it looks runnable
    (an executable file, named by its path or found on `PATH`).

    Checked before the session starts, so a typo never holds the machine awake even for a
    moment; `spawn` still handles the program vanishing in between. (`shutil.which` does the
    same, but costs the quick path its imports.)
    """
    if os.sep in program:
        if not os.path.exists(program):  # noqa: PTH110 (pathlib is not loaded on the quick path)
            return EXIT_NOT_FOUND, f"command not found: {program}"
        if not _executable(program):
            return EXIT_NOT_EXECUTABLE, f"command not executable: {program}"
        return None
    folders = os.environ.get("PATH", os.defpath).split(os.pathsep)
    if not any(_executable(os.path.join(f or os.curdir, program)) for f in folders):  # noqa: PTH118
        return EXIT_NOT_FOUND, f"command not found: {program}"
    return None


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)  # noqa: PTH113


def watch_child(child: subprocess.Popen[bytes], inbox: Inbox) -> None:
    """Put `Woke.CHILD` in the inbox when the child exits (from a thread that takes no
    signal, so the main thread's handlers run in the main thread)."""
    start_thread(_wait_child, name="xrs-child", args=(child, inbox))


def _wait_child(child: subprocess.Popen[bytes], inbox: Inbox) -> None:
    child.wait()
    inbox.put(Woke.CHILD)


def error(message: str) -> None:
    """One line on stderr, prefixed `xrs run:`."""
    print(f"xrs run: {message}", file=sys.stderr, flush=True)


def shell_status(returncode: int) -> int:
    """A `Popen` return code as a shell's exit status (128 + N for signal N)."""
    return 128 - returncode if returncode < 0 else returncode


_APP_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._-")


def default_app_id(program: str) -> str:
    """`xrs run`'s app id for a command: `xrs.run.` and the program's file name, made valid."""
    base = os.path.basename(program)  # noqa: PTH119 (pathlib is not loaded on this path)
    name = "".join(c if c in _APP_ID_CHARACTERS else "-" for c in base)
    return f"xrs.run.{name.strip('.-_') or 'command'}"[:255]
