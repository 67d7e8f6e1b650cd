"""A test double of systemd's manager, `org.freedesktop.systemd1`, on the system bus.

Why: systemd is not PID 1 on these machines, yet systemd-logind hands every suspend and power-off
to it. With this double on the bus (started before logind, by `scripts/services start`), the real
logind's `Suspend(false)` and `PowerOff(false)` run their whole real course: logind emits
`PrepareForSleep(true)` / `PrepareForShutdown(true)`, waits for the delay inhibitors, asks this
double to start `suspend.target` / `poweroff.target`, and when the double reports the job done
(`JobRemoved`), emits `PrepareForSleep(false)` / `PrepareForShutdown(false)`. Nothing is
suspended or powered off: the double only answers.

What it answers, and nothing more:

* `Manager.Subscribe` / `Unsubscribe` (logind subscribes at start-up);
* `Manager.GetUnit` / `LoadUnit` (the unit's object path) and `Properties.Get` / `GetAll` on a
  unit (its `LoadState` is "loaded", which logind checks before it suspends or powers off);
* `Manager.StartUnit` / `StopUnit`: a job path at once, then `JobRemoved(id, job, unit, "done")`
  `JOB_SECONDS` later, the way systemd reports a finished job.

Anything else is answered with `UnknownMethod`, and every call is logged to stderr (the log is
`$XRS_SERVICES_DIR/log/systemd1.log`). logind matches `JobRemoved` from the name's owner when it
starts, so restart logind after (re)starting the double.

It runs on the system's Python with Debian's jeepney (`python3-jeepney`), so it needs nothing
from the project's environment.
"""

from __future__ import annotations

import heapq
import sys
import time
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.systemd1"
ROOT = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
PROPERTIES = "org.freedesktop.DBus.Properties"
#: How long after `StartUnit` the job is reported done (seconds).
JOB_SECONDS = 0.2


def unit_path(name: str) -> str:
    """systemd's object path of a unit: bytes other than [A-Za-z0-9] escaped as _xx."""
    escaped = "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in name)
    return f"{ROOT}/unit/{escaped}"


class Double:
    """The manager's state: the units it was asked about and the jobs it reports later."""

    def __init__(self) -> None:
        self.connection = open_dbus_connection(bus="SYSTEM")
        self.units: dict[str, str] = {}  # path -> name
        self.jobs = 0
        self.later: list[tuple[float, int, Any]] = []  # (when, job id, signal message)

    def own_name(self) -> None:
        reply = self.connection.send_and_get_reply(message_bus.RequestName(NAME, 4))
        if reply.body != (1,):  # 1: primary owner
            sys.exit(f"systemd1 double: cannot own {NAME} (answer {reply.body})")
        log(f"owns {NAME}")

    def run(self) -> None:
        while True:
            self.send_due()
            timeout = max(0.0, self.later[0][0] - time.monotonic()) if self.later else None
            try:
                message = self.connection.receive(timeout=timeout)
            except TimeoutError:
                continue
            if message.header.message_type == MessageType.method_call:
                self.connection.send(self.answer(message))

    def send_due(self) -> None:
        while self.later and self.later[0][0] <= time.monotonic():
            _, job, signal = heapq.heappop(self.later)
            log(f"job {job} done")
            self.connection.send(signal)

    def answer(self, call: Any) -> Any:
        fields = call.header.fields
        interface, member = fields.get(HeaderFields.interface), fields[HeaderFields.member]
        log(f"{interface}.{member}{call.body!r} on {fields[HeaderFields.path]}")
        if interface in (MANAGER, None):
            return self.manager(call, member)
        if interface == PROPERTIES:
            return self.properties(call, member, fields[HeaderFields.path])
        return unknown(call)

    def manager(self, call: Any, member: str) -> Any:
        if member in ("Subscribe", "Unsubscribe", "Reload"):
            return new_method_return(call)
        if member in ("GetUnit", "LoadUnit"):
            return new_method_return(call, "o", (self.unit(call.body[0]),))
        if member in ("StartUnit", "StopUnit"):
            return new_method_return(call, "o", (self.job(call.body[0]),))
        return unknown(call)

    def properties(self, call: Any, member: str, path: str) -> Any:
        name = self.units.get(path, path.rsplit("/", 1)[-1])
        values = {"Id": ("s", name), "LoadState": ("s", "loaded"), "ActiveState": ("s", "inactive")}
        if member == "Get" and call.body[1] in values:
            return new_method_return(call, "v", (values[call.body[1]],))
        if member == "GetAll":
            return new_method_return(call, "a{sv}", (values if call.body[0] == UNIT else {},))
        return new_error(call, "org.freedesktop.DBus.Error.UnknownProperty")

    def unit(self, name: str) -> str:
        path = unit_path(name)
        self.units[path] = name
        return path

    def job(self, unit: str) -> str:
        self.jobs += 1
        path = f"{ROOT}/job/{self.jobs}"
        emitter = DBusAddress(ROOT, interface=MANAGER)
        signal = new_signal(emitter, "JobRemoved", "uoss", (self.jobs, path, unit, "done"))
        heapq.heappush(self.later, (time.monotonic() + JOB_SECONDS, self.jobs, signal))
        return path


def unknown(call: Any) -> Any:
    return new_error(call, "org.freedesktop.DBus.Error.UnknownMethod")


def log(line: str) -> None:
    print(f"systemd1 double: {line}", file=sys.stderr, flush=True)


def main() -> None:
    double = Double()
    double.own_name()
    double.run()


if __name__ == "__main__":
    main()
