"""A stand-in for xdg-desktop-portal's Inhibit and org.freedesktop.ScreenSaver.

Both belong to a desktop session (GNOME, KDE, ...), which a test machine does not run. This
process takes both names on the bus given as its first argument and answers as they do:
portal `Inhibit(window, flags, options)` with a request handle that `Request.Close` releases,
ScreenSaver `Inhibit(application, reason)` with a cookie that `UnInhibit` releases. It writes one
JSON line per call to the file given as its second argument, and a `disconnected` line when a
caller holding an inhibition leaves the bus (which is how the real services release them).

Run: python tests/doubles/desktop.py BUS_ADDRESS LOG_FILE
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from jeepney import MatchRule, Message, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

NAMES = ("org.freedesktop.portal.Desktop", "org.freedesktop.ScreenSaver")


class Stand:
    """The inhibitions held, by caller."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.serial = itertools.count(1)
        self.held: dict[str, str] = {}  # token -> caller

    def note(self, **entry: Any) -> None:
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    def answer(self, message: Message) -> Message:
        member, sender = message.header.fields.get(3), message.header.fields.get(7)
        body = list(message.body)
        self.note(call=member, sender=sender, args=body, path=message.header.fields.get(1))
        if member == "Inhibit" and len(body) == 3:  # the portal
            token = f"/org/freedesktop/portal/desktop/request/{next(self.serial)}"
            self.held[token] = str(sender)
            return new_method_return(message, "o", (token,))
        if member == "Inhibit":  # the screen saver
            cookie = next(self.serial)
            self.held[str(cookie)] = str(sender)
            return new_method_return(message, "u", (cookie,))
        if member in ("Close", "UnInhibit"):
            token = str(body[0]) if body else str(message.header.fields.get(1))
            self.held.pop(token, None)
            return new_method_return(message)
        return new_error(message, "org.freedesktop.DBus.Error.UnknownMethod")

    def left(self, message: Message) -> None:
        name, _, new = message.body
        if new == "" and name in self.held.values():
            self.note(disconnected=name)
            self.held = {t: c for t, c in self.held.items() if c != name}


def serve(connection: DBusConnection, stand: Stand) -> None:
    while True:
        message = connection.receive()
        kind = message.header.message_type
        if kind is MessageType.method_call:
            connection.send(stand.answer(message))
        elif kind is MessageType.signal and message.header.fields.get(3) == "NameOwnerChanged":
            stand.left(message)


def main() -> None:
    address, log_file = sys.argv[1], sys.argv[2]
    connection = open_dbus_connection(bus=address)
    for name in NAMES:
        connection.send_and_get_reply(message_bus.RequestName(name))
    rule = MatchRule(type="signal", interface="org.freedesktop.DBus", member="NameOwnerChanged")
    connection.send_and_get_reply(message_bus.AddMatch(rule))
    with Path(log_file).open("a", encoding="utf-8") as log:
        stand = Stand(log)
        stand.note(ready=True)
        serve(connection, stand)


if __name__ == "__main__":
    main()
