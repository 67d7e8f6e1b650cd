"""The alarm's desktop notification, through org.freedesktop.Notifications on the session bus.

Theory
------
DESIGN.md's "Alarm alert on the desktop": one notification per session, with Stop and Open
actions, urgency critical (byte 2) and no expiry (timeout 0). Each repetition of the alert
*updates* it (`Notify` with `replaces_id`), so the user sees one card, not a pile. When the
session ends it is withdrawn (`CloseNotification`).

What the user does comes back as signals, which the server sends to our connection:

* `ActionInvoked(id, "stop")` is Stop, and `NotificationClosed(id, 2)` (the user dismissed it)
  is too: the session ends with NONE;
* `ActionInvoked(id, "open")` is Open: the app becomes ACTIVE. So is `"default"`, which some
  servers send for a click on the notification itself;
* `NotificationClosed` for any other reason (expired, closed by a call, undefined) only forgets
  the notification: the next repetition shows a new one.

A notification acted on is forgotten at once, so the close that some servers send after an
action (dunst sends reason 1 about a second later) means nothing, and the next repetition
shows a fresh one. Our own `CloseNotification` forgets first for the same reason, and so does a
`Notify` that fails (the server went away): a restarted server gets a new card.

Signals arrive on the bus's receiving thread, which must not wait for anything: the user's
action is handed to a dispatcher thread that tells the listener (the host), which may then call
back into this backend (withdraw the notification) without deadlocking the bus. The signals are
subscribed to before the first notification is shown, and the connection is closed after a
probe while nothing is subscribed: a host that never alerts keeps no connection or thread.

Servers such as dunst ignore `sound-name`; the host plays sound itself, so each notification asks
servers that do play sounds not to (`suppress-sound`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Literal

from ...abc import Probe, UserAction
from ..threads import start_thread
from .dbus import Bus, BusUnavailable, CallFailed, HeaderFields, MatchRule, method

__all__ = ["NOTIFICATIONS", "DesktopNotifications", "close_notification", "notify"]

log = logging.getLogger("extended_runtime.backends")

#: The notification server's bus name, object path and interface.
NOTIFICATIONS = (
    "org.freedesktop.Notifications",
    "/org/freedesktop/Notifications",
    "org.freedesktop.Notifications",
)
#: The actions offered: key, label.
ACTIONS = ("stop", "Stop", "open", "Open")
#: What each action key the server may send means ("default": a click on the notification).
_MEANING: dict[str, Literal["stop", "open"]] = {"stop": "stop", "open": "open", "default": "open"}
#: `NotificationClosed` reason: the user dismissed it.
DISMISSED = 2
#: How long a call to the notification server may take (seconds): a hung server costs this.
CALL_TIMEOUT = 1.0

Owner = tuple[str, str]  # app id, session id


def notify(app_id: str, replaces: int, summary: str, body: str) -> Any:
    """The `Notify` call of an alarm alert, as a value."""
    hints = {
        "urgency": ("y", 2),
        "category": ("s", "x-extended-runtime.alarm"),
        "suppress-sound": ("b", True),
    }
    return method(
        *NOTIFICATIONS, "Notify", "susssasa{sv}i",
        app_id, replaces, "", summary, body, list(ACTIONS), hints, 0,
    )  # fmt: skip


def close_notification(notification: int) -> Any:
    """The `CloseNotification` call, as a value."""
    return method(*NOTIFICATIONS, "CloseNotification", "u", notification)


class DesktopNotifications:
    """One notification per alarm session, and what the user does with it."""

    name = "notifications"

    def __init__(self, bus: Bus | None = None) -> None:
        self._bus = bus if bus is not None else Bus.session()
        self._lock = threading.Lock()
        self._shown: dict[str, int] = {}  # session id -> notification id
        self._owners: dict[int, Owner] = {}  # notification id -> app id, session id
        self._listener: Callable[[UserAction], None] | None = None
        self._subscribed = False
        self._actions: queue.SimpleQueue[UserAction] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None

    def probe(self) -> Probe:
        try:
            name, vendor, version, _ = self._call(method(*NOTIFICATIONS, "GetServerInformation"))
            (capabilities,) = self._call(method(*NOTIFICATIONS, "GetCapabilities"))
        except (BusUnavailable, CallFailed, TimeoutError) as error:
            return Probe(self.name, False, f"no notification server: {error}")
        finally:
            self._idle()
        server = f"{name} {version.split()[0]} by {vendor}"
        if "actions" not in capabilities:
            return Probe(self.name, True, f"{server}, without actions: dismiss it to stop")
        return Probe(self.name, True, f"{server}, with Stop and Open")

    def show(self, app_id: str, session_id: str, by_host: bool) -> None:
        """Show the session's notification, or update the one shown."""
        self._subscribe()
        with self._lock:
            replaces = self._shown.get(session_id, 0)
        body = f"Alarm of {app_id}" + (" (the app is not running)" if by_host else "")
        try:
            (shown,) = self._call(notify(app_id, replaces, "Wake up", body))
        except (BusUnavailable, CallFailed, TimeoutError):
            if replaces:  # the server may be gone with it: the next attempt shows a new one
                self._forget(replaces)
            raise
        with self._lock:
            if replaces and replaces != shown:
                self._owners.pop(replaces, None)
            self._shown[session_id] = shown
            self._owners[shown] = (app_id, session_id)

    def withdraw(self, session_id: str) -> None:
        """Close the session's notification, if one is shown."""
        with self._lock:
            shown = self._shown.pop(session_id, None)
            if shown is not None:
                self._owners.pop(shown, None)
        if shown is None:
            return
        try:
            self._call(close_notification(shown))
        except CallFailed as error:  # it was closed meanwhile
            log.debug("closing notification %d: %s", shown, error)

    def close(self) -> None:
        """Let go of the session bus (what is still shown was withdrawn with its session)."""
        self._bus.close()

    def listen(self, listener: Callable[[UserAction], None]) -> None:
        """Tell `listener` (from a thread of this backend) what the user does with the
        notifications shown from now on."""
        self._listener = listener

    def shown(self) -> dict[str, int]:
        """The notification id shown for each session."""
        with self._lock:
            return dict(self._shown)

    def _call(self, message: Any) -> tuple[Any, ...]:
        return self._bus.call(message, timeout=CALL_TIMEOUT)

    def _subscribe(self) -> None:
        """Hear the server's signals from before the first notification on (once; again after
        a failed attempt)."""
        with self._lock:
            if self._subscribed or self._listener is None:
                return
            self._subscribed = True
        rule = MatchRule(type="signal", interface=NOTIFICATIONS[2], path=NOTIFICATIONS[1])
        try:
            self._bus.subscribe(rule, self._signal)
        except BaseException:
            self._subscribed = False
            raise

    def _idle(self) -> None:
        """Close the connection while nothing is shown or heard (it opens again when needed),
        so a host that never alerts keeps no connection or thread."""
        if not self._subscribed:
            self._bus.close()

    def _signal(self, message: Any) -> None:
        """A signal from the server (on the bus's receiving thread: return at once)."""
        member = message.header.fields.get(HeaderFields.member)
        if member == "ActionInvoked":
            notification, key = message.body
            owner = self._forget(notification)
            kind = _MEANING.get(key)
            if owner is not None and kind is not None:
                self._hand_on(UserAction(kind, *owner))
        elif member == "NotificationClosed":
            notification, reason = message.body
            owner = self._forget(notification)
            if owner is not None and reason == DISMISSED:
                self._hand_on(UserAction("stop", *owner))

    def _hand_on(self, action: UserAction) -> None:
        """Queue the action for the dispatcher thread (started at the first one)."""
        self._actions.put(action)
        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = start_thread(self._dispatch, name="xrs-alert-actions")

    def _forget(self, notification: int) -> Owner | None:
        with self._lock:
            owner = self._owners.pop(notification, None)
            if owner is not None and self._shown.get(owner[1]) == notification:
                del self._shown[owner[1]]
            return owner

    def _dispatch(self) -> None:
        """Hand each action to the listener, in order, off the bus's receiving thread."""
        while True:
            action = self._actions.get()
            listener = self._listener
            if listener is None:
                continue
            try:
                listener(action)
            except Exception:
                log.exception("the listener of alert actions failed on %s", action)
