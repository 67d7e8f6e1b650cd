"""The quick path of `xrs run`: the command starts before the engine is even imported.

Theory
------
Most of a plain `xrs run`'s start-up is importing: the command line library, the engine, the
hosts, the backends, tens of milliseconds before a command that may itself take one. Scripts
run short commands many times (`xrs run -q -- make -q`), so for them the quick path takes
what the session would hold first, runs the command at once, and loads the engine only if the
command is still running after a moment:

1. it understands one form only: `xrs run -q|--quiet [--type physical-therapy] [--] COMMAND...`.
   Anything else (another option or type, `--help`, a command not on the `PATH`) goes to the
   full path (`run`), which says what is wrong;
2. in one round of pipelined calls on the system bus it asks whether anything would suppress
   a physical-therapy session (logind preparing to shut down, power-saver mode, the machine on
   battery) and takes logind's idle and sleep block, labelled as the session's would be
   (`keep_awake_why`). Any doubt goes to the full path, which decides and says why: a condition
   that might suppress the session, a refused or partial block, no bus. The quick path never
   refuses a session; it only declines to be quick. (On battery it declines whatever the
   charge: the battery threshold is the policy's, and the full path applies it.)
3. with the block held it starts the command and waits up to `QUICK_WINDOW`, forwarding
   signals exactly as the full path does (`child.Signals`);
4. a command that ends within the window ends the run: the block goes and `xrs` exits with the
   command's status, having held the machine awake for all of the command's life. A command
   still running is handed to the full path (`run.continue_in_session`), which starts the
   session with its limit shortened by the time already run and lets the quick block go once
   the session's own is held, so the machine is never unguarded in between.

Only physical therapy, `xrs run`'s default type: the frontmost types follow the terminal (Ctrl-Z
ends them), which needs the engine from the start. Only with `-q`: otherwise `xrs run` prints the
session's events, and those come from the engine.

The bus names and paths here are the backends' (`logind`, `power`); a test keeps them equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core.clock import SystemClock
from .._core.enums import SessionType
from .._core.limits import DEFAULT_LIMITS, keep_awake_why
from .child import (
    Inbox,
    Signals,
    default_app_id,
    first_caught,
    shell_status,
    spawn,
    unrunnable,
    watch_child,
)

if TYPE_CHECKING:
    import subprocess

    from jeepney import Message
    from jeepney.io.blocking import DBusConnection

__all__ = ["QUICK_WINDOW", "parse", "quick_run"]

#: How long the quick path waits for the command before it hands it to a session (seconds).
QUICK_WINDOW = 0.2
#: How long the bus may take to answer the quick path's calls (seconds); slower is declined.
BUS_TIMEOUT = 2.0

_TYPE = SessionType.PHYSICAL_THERAPY
_QUIET = frozenset({"-q", "--quiet"})

_LOGIND = ("org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager")
_UPOWER = ("org.freedesktop.UPower", "/org/freedesktop/UPower", "org.freedesktop.UPower")
_PROFILES = ("net.hadess.PowerProfiles", "/net/hadess/PowerProfiles", "net.hadess.PowerProfiles")
_FULL_BLOCK = ("idle:sleep", "block")
_POWER_SAVER = "power-saver"
#: A service that is not on the bus: the backends then do without it, and so does this path.
_ABSENT = frozenset(
    {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}
)


def parse(args: list[str]) -> tuple[str, ...] | None:
    """The command of `xrs run ARGS` in the one form the quick path takes, else `None`."""
    quiet = False
    kind = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _QUIET:
            quiet = True
        elif arg == "--type" and index + 1 < len(args):
            index += 1
            kind = args[index]
        elif arg.startswith("--type="):
            kind = arg.partition("=")[2]
        elif arg == "--":
            index += 1
            break
        elif arg.startswith("-"):
            return None
        else:
            break
        index += 1
    command = tuple(args[index:])
    if not quiet or kind not in (None, _TYPE.value) or not command:
        return None
    return command


def quick_run(args: list[str]) -> int | None:
    """Run `xrs run ARGS` the quick way; its exit status, or `None` to take the full path.

    `None` is only ever answered before the command started."""
    command = parse(args)
    if command is None or unrunnable(command[0]) is not None:
        return None
    clock = SystemClock()
    app_id = default_app_id(command[0])
    limit = DEFAULT_LIMITS[_TYPE]
    expires = None if limit is None else clock.now() + limit
    with Inbox() as inbox, Signals(inbox) as signals:
        block = _Block.take(app_id, keep_awake_why(_TYPE, expires))
        if block is None:
            return None
        taken = clock.monotonic()
        handed = False
        try:
            caught = first_caught(inbox)
            if caught is not None:  # as the full path: a signal before the command stops it
                return 128 + caught.signum
            child = spawn(command)
            if isinstance(child, int):
                return child
            signals.child_exists = True
            watch_child(child, inbox)
            deadline = taken + QUICK_WINDOW
            while child.poll() is None and (left := deadline - clock.monotonic()) > 0:
                note = inbox.get_within(left)
                if note is not None:
                    signals.forward(note, child)
            if child.poll() is not None:
                return shell_status(child.wait())
            handed = True
            elapsed = clock.monotonic() - taken
            return _hand_over(
                command, child, inbox=inbox, signals=signals, block=block, elapsed=elapsed
            )
        finally:
            if not handed:
                block.release()


def _hand_over(
    command: tuple[str, ...],
    child: subprocess.Popen[bytes],
    *,
    inbox: Inbox,
    signals: Signals,
    block: _Block,
    elapsed: float,
) -> int:
    """The command runs on: the full path's session takes it over, its limit shortened by the
    `elapsed` seconds the command has run already."""
    from .run import Adopted, RunOptions, continue_in_session, session_policy

    limit = DEFAULT_LIMITS[_TYPE]
    left = None if limit is None else max(limit.total_seconds() - elapsed, 0.001)
    options = RunOptions(
        session_type=_TYPE,
        command=command,
        policy=session_policy(_TYPE, left),
        quiet=True,
    )
    return continue_in_session(options, Adopted(child, inbox, signals, block.release))


class _Block:
    """logind's idle and sleep block, held as a file descriptor, with its bus connection."""

    def __init__(self, connection: DBusConnection, lock: Any) -> None:
        self._connection: DBusConnection | None = connection
        self._lock: Any = lock

    @classmethod
    def take(cls, who: str, why: str) -> _Block | None:
        """The block, when nothing would suppress the session and logind grants it fully;
        else `None` (nothing is held then)."""
        try:
            from jeepney.io.blocking import open_dbus_connection

            connection = open_dbus_connection(bus="SYSTEM", enable_fds=True)
        except (ImportError, OSError, KeyError, ValueError):
            return None
        try:
            replies = _ask(connection, _questions(who, why))
        except (OSError, TimeoutError, ValueError):
            connection.close()
            return None
        lock = _granted(replies[-1])
        block = cls(connection, lock)
        if lock is None or not _clear(replies[:-1]):
            block.release()
            return None
        return block

    def release(self) -> None:
        """Let go of the block and the connection (again: nothing)."""
        lock, self._lock = self._lock, None
        connection, self._connection = self._connection, None
        if lock is not None:
            lock.close()
        if connection is not None:
            connection.close()


def _questions(who: str, why: str) -> list[Message]:
    """Shutting down? On battery? Power saver? And logind's block, in that order."""
    from jeepney import DBusAddress, Properties, new_method_call

    def address(name: str, path: str, interface: str) -> DBusAddress:
        return DBusAddress(path, bus_name=name, interface=interface)

    return [
        Properties(address(*_LOGIND)).get("PreparingForShutdown"),
        Properties(address(*_UPOWER)).get("OnBattery"),
        Properties(address(*_PROFILES)).get("ActiveProfile"),
        new_method_call(
            address(*_LOGIND), "Inhibit", "ssss", (_FULL_BLOCK[0], who, why, _FULL_BLOCK[1])
        ),
    ]


def _ask(connection: DBusConnection, questions: list[Message]) -> list[Message]:
    """Send every call at once, then read their answers: one round trip, not four."""
    from jeepney import HeaderFields

    clock = SystemClock()
    serials = []
    for question in questions:
        serial = next(connection.outgoing_serial)
        connection.send(question, serial=serial)
        serials.append(serial)
    answers: dict[int, Message] = {}
    deadline = clock.monotonic() + BUS_TIMEOUT
    while len(answers) < len(serials):
        answer = connection.receive(timeout=max(deadline - clock.monotonic(), 0.0))
        reply_to = answer.header.fields.get(HeaderFields.reply_serial)
        if reply_to in serials:
            answers[reply_to] = answer
    return [answers[serial] for serial in serials]


def _granted(answer: Message) -> Any:
    """The lock's descriptor from logind's answer, or `None` if it refused."""
    if _failed(answer):
        return None
    return answer.body[0]


def _clear(answers: list[Message]) -> bool:
    """Whether nothing in the answers could suppress a physical-therapy session."""
    shutdown, battery, profile = answers
    if _failed(shutdown) or _value(shutdown) is not False:
        return False
    if not _absent(battery) and (_failed(battery) or _value(battery) is not False):
        return False
    return _absent(profile) or (not _failed(profile) and _value(profile) != _POWER_SAVER)


def _failed(answer: Message) -> bool:
    from jeepney import MessageType

    return answer.header.message_type is MessageType.error


def _absent(answer: Message) -> bool:
    from jeepney import HeaderFields

    return _failed(answer) and answer.header.fields.get(HeaderFields.error_name) in _ABSENT


def _value(answer: Message) -> object:
    """The value of a `Properties.Get` answer (a variant: signature, value)."""
    (variant,) = answer.body
    return variant[1]
