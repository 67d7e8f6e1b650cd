"""D-Bus for the Linux backends: calls built as values, run by one small adapter.

Theory
------
A backend builds each call as a value: a jeepney `Message` made by `method(...)`, which a test
can read without a bus. A `Bus` performs it. The adapter is small on purpose:

* one connection per bus, opened on first use and opened again after the bus daemon or the
  connection went away (a restarted logind is the same system bus; a dead session bus is not,
  and reopening then fails with `BusUnavailable` saying why);
* several backends may share one `Bus` (`share()`): each closes it when done, and the
  connection closes with the last of them;
* jeepney's threaded router receives on one thread and hands each reply to the thread waiting
  for it, so any host thread may `call`, each with a timeout: a service that never answers costs
  that call its timeout and nothing else;
* a signal subscription (`subscribe`) registers the match rule with the bus daemon and calls a
  function with each matching message, on the receiving thread. That function must return at
  once and must not call the same bus (its reply could only arrive on that very thread);
* the system bus connection negotiates file-descriptor passing, because logind's `Inhibit`
  answers with one: without it the call hangs with no error.

Errors come back as exceptions: `BusUnavailable` (no bus, no such service), `CallFailed` (the
service answered with a D-Bus error, whose name it carries, such as
`org.freedesktop.DBus.Error.AccessDenied`) and `TimeoutError`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from jeepney import DBusAddress, MatchRule, Message, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.common import RouterClosed
from jeepney.io.threading import DBusRouter, open_dbus_connection
from jeepney.low_level import HeaderFields
from jeepney.wrappers import DBusErrorResponse, unwrap_msg

from ..threads import signals_held

__all__ = ["Bus", "BusUnavailable", "CallFailed", "HeaderFields", "MatchRule", "Signal", "method"]

#: How long a call waits for its answer unless told otherwise (seconds).
CALL_TIMEOUT = 2.0


class BusUnavailable(OSError):
    """The bus cannot be reached, or the service is not on it."""


class CallFailed(RuntimeError):
    """The service answered a call with a D-Bus error; `name` is the error's name."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}" if message else name)


def method(
    service: str, path: str, interface: str, member: str, signature: str = "", *body: Any
) -> Message:
    """A method call, as a value."""
    address = DBusAddress(path, bus_name=service, interface=interface)
    return new_method_call(address, member, signature or None, body)


class Signal:
    """A signal subscription: the match rule and the function called with each message."""

    def __init__(self, rule: MatchRule, handler: Callable[[Message], None]) -> None:
        self.rule = rule
        self.handler = handler

    def put_nowait(self, message: Message) -> None:
        """Called by the router's receiving thread for each matching message."""
        self.handler(message)


class _Router(DBusRouter):  # type: ignore[misc]
    """jeepney's threaded router, whose receiving thread ends quietly when the connection
    does (the bus daemon went away): calls waiting then get `RouterClosed`, and the next call
    connects again."""

    def _receiver(self) -> None:
        with contextlib.suppress(OSError, EOFError, ValueError):
            super()._receiver()


class Bus:
    """One connection to the system or a session bus, shared by the backends on it."""

    def __init__(self, address: str = "SYSTEM", *, fds: bool = True) -> None:
        self.address = address
        self._fds = fds
        self._lock = threading.Lock()
        self._router: DBusRouter | None = None
        self._signals: list[Signal] = []
        self._users = 1

    @classmethod
    def system(cls) -> Bus:
        """The system bus, with file-descriptor passing (logind answers with descriptors)."""
        return cls("SYSTEM", fds=True)

    @classmethod
    def session(cls) -> Bus:
        """The user's session bus (`DBUS_SESSION_BUS_ADDRESS`)."""
        return cls("SESSION", fds=False)

    def call(self, message: Message, timeout: float = CALL_TIMEOUT) -> tuple[Any, ...]:
        """Send a call and return the body of its answer (one reconnection if the connection
        was lost since the last call)."""
        try:
            reply = self._send(message, timeout)
        except RouterClosed:
            reply = self._send(message, timeout)
        try:
            body: tuple[Any, ...] = unwrap_msg(reply)
        except DBusErrorResponse as error:
            raise CallFailed(error.name, " ".join(map(str, error.data))) from error
        return body

    def subscribe(self, rule: MatchRule, handler: Callable[[Message], None]) -> Signal:
        """Call `handler` with every message matching `rule` (on the receiving thread)."""
        signal = Signal(rule, handler)
        router = self._connected()
        self.call(message_bus.AddMatch(rule))
        router.filter(rule, queue=signal)
        self._signals.append(signal)
        return signal

    def share(self) -> Bus:
        """This bus, for one more user, who closes it when done (see `close`)."""
        with self._lock:
            self._users += 1
        return self

    def close(self) -> None:
        """Close the connection (it opens again on the next call); a shared bus closes it
        when its last user does."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users:
                return
            router, self._router = self._router, None
        if router is not None:
            _close(router)

    def _send(self, message: Message, timeout: float) -> Message:
        router = self._connected()
        try:
            return router.send_and_get_reply(message, timeout=timeout)
        except RouterClosed:
            self._drop(router)
            raise
        except (OSError, EOFError) as error:
            self._drop(router)
            raise BusUnavailable(f"the {self._name()} bus went away: {error}") from error

    def _connected(self) -> DBusRouter:
        with self._lock:
            if self._router is not None:
                return self._router
            try:
                connection = open_dbus_connection(bus=self.address, enable_fds=self._fds)
            except (OSError, KeyError, ValueError) as error:
                raise BusUnavailable(f"cannot reach the {self._name()} bus: {error}") from error
            with signals_held():  # its receiving thread must not take the app's signals
                router = _Router(connection)
            self._router = router
            signals = list(self._signals)
        for signal in signals:  # a reconnection keeps what was subscribed
            router.send(message_bus.AddMatch(signal.rule))
            router.filter(signal.rule, queue=signal)
        return router

    def _drop(self, router: DBusRouter) -> None:
        with self._lock:
            if self._router is router:
                self._router = None
        _close(router)

    def _name(self) -> str:
        return self.address.lower() if self.address in ("SYSTEM", "SESSION") else self.address


def _close(router: DBusRouter) -> None:
    try:
        router.close()
        router.conn.close()
    except OSError:
        pass
