"""A yes-or-no question to the user, as a desktop notification with two actions.

Theory
------
An app that asks `request_auto_launch_authorization_status` may have no terminal (started from
the desktop, or by systemd): the question then goes to the desktop, as DESIGN.md says, through
org.freedesktop.Notifications on the session bus. One notification carries the question, with a
*yes* and a *no* action (Allow and Deny), no expiry, and normal urgency; the asking thread waits
for the user's answer, which the server sends as signals:

* `ActionInvoked(id, "yes")` is yes, `ActionInvoked(id, "no")` is no;
* `NotificationClosed(id, 2)`, the user dismissing it, is no: they saw it and did not allow;
* a click on the notification itself (`"default"`) decides nothing, and the wait goes on;
* `NotificationClosed` for any other reason (the server closed it), or no answer within the
  timeout, is *no answer* (`None`), and the caller decides what an unanswered question means.

Whatever the answer, the notification is then withdrawn (`CloseNotification`; one the server
closed already is left as it is), so no stale question stays on the screen.

No session bus, no notification server, or a server that fails the call is also no answer, at
once. The connection is the asking call's own (a blocking jeepney connection, closed when it
returns): the question is rare, and nothing else of the process has to stay connected for it.
The signals are subscribed to before the notification is shown, so an answer cannot come
before we listen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._core.clock import SystemClock

__all__ = ["QUESTION_TIMEOUT", "ask_on_desktop"]

#: How long the user has to answer before the question counts as unanswered (seconds).
QUESTION_TIMEOUT = 120.0


def ask_on_desktop(
    app_name: str,
    summary: str,
    body: str,
    *,
    yes: str = "Allow",
    no: str = "Deny",
    timeout: float = QUESTION_TIMEOUT,
    shown: Callable[[int], None] | None = None,
) -> bool | None:
    """The user's answer to a notification with `yes` and `no` actions: True, False, or `None`
    when nobody answered (see the module's theory). `shown` hears the notification's id."""
    from jeepney import MatchRule, MessageType
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    from .notify import CALL_TIMEOUT, NOTIFICATIONS, close_notification

    try:
        connection = open_dbus_connection(bus="SESSION")
    except (OSError, KeyError, ValueError):
        return None  # no session bus here
    _, path, interface = NOTIFICATIONS
    rule = MatchRule(type="signal", interface=interface, path=path)
    try:
        connection.send_and_get_reply(message_bus.AddMatch(rule), timeout=CALL_TIMEOUT)
        with connection.filter(rule) as signals:
            reply = connection.send_and_get_reply(
                _notify(app_name, summary, body, yes, no), timeout=CALL_TIMEOUT
            )
            if reply.header.message_type is MessageType.error:
                return None  # no notification server, or it refused
            (notification,) = reply.body
            if shown is not None:
                shown(notification)
            answer = _answer(connection, signals, notification, timeout)
            connection.send(close_notification(notification))  # answered or not, it goes
            return answer
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        connection.close()


def _answer(connection: Any, signals: Any, notification: int, timeout: float) -> bool | None:
    """Wait for the user's action on `notification`, at most `timeout` seconds."""
    from jeepney.low_level import HeaderFields

    from .notify import DISMISSED

    clock = SystemClock()
    deadline = clock.monotonic() + timeout
    while (left := deadline - clock.monotonic()) > 0:
        try:
            message = connection.recv_until_filtered(signals, timeout=left)
        except TimeoutError:
            return None
        member = message.header.fields.get(HeaderFields.member)
        if not message.body or message.body[0] != notification:
            continue  # another notification's
        if member == "ActionInvoked" and message.body[1] in ("yes", "no"):
            return bool(message.body[1] == "yes")
        if member == "NotificationClosed":
            return False if message.body[1] == DISMISSED else None
    return None


def _notify(app_name: str, summary: str, body: str, yes: str, no: str) -> Any:
    from .dbus import method
    from .notify import NOTIFICATIONS

    hints = {"urgency": ("y", 1), "category": ("s", "x-extended-runtime.question")}
    actions = ["yes", yes, "no", no]
    return method(
        *NOTIFICATIONS, "Notify", "susssasa{sv}i",
        app_name, 0, "", summary, body, actions, hints, 0,
    )  # fmt: skip
