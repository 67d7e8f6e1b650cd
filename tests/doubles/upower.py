"""A stand-in UPower, as `org.freedesktop.UPower` on a private bus the test starts.

Why: a test machine has no battery, so the real upowerd cannot report a low one, and a stand-in
must not take the real daemon's name on the system bus. So a test starts its own bus daemon
(`PrivateBus`, a `dbus-daemon` with the session policy on a socket in a temporary folder) and
runs this stand-in there under UPower's real name and object paths. The backend under test is
given that bus and cannot tell the difference: the stand-in answers what the backend asks
(`Get` of `OnBattery` on the daemon, `GetAll` of the display device) and emits
`PropertiesChanged` with the new values whenever the test changes them (`set`), the way upowerd
does.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.UPower"
DAEMON = ("/org/freedesktop/UPower", "org.freedesktop.UPower")
DISPLAY = ("/org/freedesktop/UPower/devices/DisplayDevice", "org.freedesktop.UPower.Device")
PROPERTIES = "org.freedesktop.DBus.Properties"
#: D-Bus signatures of the properties the stand-in has.
SIGNATURES = {"OnBattery": "b", "IsPresent": "b", "Percentage": "d", "State": "u", "Type": "u"}


class PrivateBus:
    """A bus daemon of the test's own, on a socket under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.address = f"unix:path={folder / 'bus'}"
        self._process = subprocess.Popen(
            [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--print-address",
                f"--address={self.address}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self._process.stdout.readline()  # the address: the bus is ready

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(5)
        if self._process.stdout is not None:
            self._process.stdout.close()


class StandInUPower:
    """UPower's daemon and display device, with values the test sets."""

    def __init__(self, address: str, **values: Any) -> None:
        self.values: dict[str, Any] = {
            "OnBattery": False, "IsPresent": False, "Percentage": 0.0, "State": 0, "Type": 2,
        }  # fmt: skip
        self.values.update(values)
        self._connection = open_dbus_connection(bus=address)
        self._sending = threading.Lock()
        reply = self._connection.send_and_get_reply(message_bus.RequestName(NAME, 4))
        assert reply.body == (1,), f"cannot own {NAME} on the private bus: {reply.body}"
        self._stop = False
        self._thread = threading.Thread(target=self._serve, name="stand-in-upower", daemon=True)
        self._thread.start()

    def set(self, **values: Any) -> None:
        """Change properties and emit `PropertiesChanged` with their new values."""
        self._changed(values, with_values=True)

    def invalidate(self, **values: Any) -> None:
        """Change properties and emit `PropertiesChanged` naming them only (the client must
        ask for the values), as a service may."""
        self._changed(values, with_values=False)

    def _changed(self, values: dict[str, Any], *, with_values: bool) -> None:
        self.values.update(values)
        for path, interface in (DAEMON, DISPLAY):
            names = [name for name in values if (name == "OnBattery") == (path == DAEMON[0])]
            if not names:
                continue
            changed = {name: self._variant(name) for name in names} if with_values else {}
            invalidated = [] if with_values else names
            emitter = DBusAddress(path, interface=PROPERTIES)
            body: tuple[Any, ...] = (interface, changed, invalidated)
            self._send(new_signal(emitter, "PropertiesChanged", "sa{sv}as", body))

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._connection.close()

    def __enter__(self) -> StandInUPower:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                message = self._connection.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:
                return
            if message.header.message_type == MessageType.method_call:
                self._send(self._answer(message))

    def _answer(self, call: Any) -> Any:
        fields = call.header.fields
        path, member = fields[HeaderFields.path], fields[HeaderFields.member]
        if member == "Get" and path == DAEMON[0] and call.body == (DAEMON[1], "OnBattery"):
            return new_method_return(call, "v", (self._variant("OnBattery"),))
        if member == "GetAll" and path == DISPLAY[0] and call.body == (DISPLAY[1],):
            names = [name for name in self.values if name != "OnBattery"]
            return new_method_return(call, "a{sv}", ({n: self._variant(n) for n in names},))
        if member == "GetDisplayDevice":
            return new_method_return(call, "o", (DISPLAY[0],))
        return new_error(call, "org.freedesktop.DBus.Error.UnknownMethod")

    def _variant(self, name: str) -> tuple[str, Any]:
        return SIGNATURES[name], self.values[name]

    def _send(self, message: Any) -> None:
        with self._sending:
            self._connection.send(message)
