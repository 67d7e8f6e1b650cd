"""What the backends that watch D-Bus signals share: a bus, a worker thread, and an end.

Theory
------
A signal arrives on the bus adapter's receiving thread, where nothing may wait and the same bus
may not be called (its reply could only arrive on that very thread). So a watching backend does
two things with a signal: it reads the values the message carries (pure, at once), and it hands
what must happen next (call the host, take a lock over the bus) to its own worker thread, which
runs those jobs one at a time, in the order the signals came.

A source subscribes first and then reads the current state, in `watch`, so a host knows the
machine's conditions once it is made; its worker starts only after that report (`start`):
signals that arrive in between wait in the queue, so a change is never overtaken by the older
state read before it. A backend with nothing to report at once (the sleep source) may instead
make subscribing its worker's first job. A job that raises is logged and the next one runs.

`close` drops the jobs still queued, waits a moment for the one running, and closes the bus
(the connection closes with its last user, which drops the match rules at the bus daemon):
nothing is reported after it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from jeepney import MatchRule, Message

from ..threads import start_thread
from .dbus import Bus, method

__all__ = [
    "Watch",
    "Watching",
    "changed_values",
    "get_all",
    "get_property",
    "properties_changed",
    "signal_rule",
]

log = logging.getLogger("extended_runtime.backends")

_PROPERTIES = "org.freedesktop.DBus.Properties"
#: How long `close` waits for the worker to finish its queued jobs (seconds).
_CLOSE_WAIT = 1.0


def signal_rule(interface: str, member: str, path: str, arg0: str | None = None) -> MatchRule:
    """A match rule for one signal.

    It names no sender: the adapter filters received messages by the rule too, and a message's
    sender is the service's unique name (":1.42"), never its well-known one."""
    rule = MatchRule(type="signal", interface=interface, member=member, path=path)
    if arg0 is not None:
        rule.add_arg_condition(0, arg0)
    return rule


def properties_changed(path: str, interface: str) -> MatchRule:
    """The rule for `PropertiesChanged` of `interface` on the object at `path`."""
    return signal_rule(_PROPERTIES, "PropertiesChanged", path, arg0=interface)


def get_property(service: str, path: str, interface: str, name: str) -> Message:
    """`org.freedesktop.DBus.Properties.Get`, as a value."""
    return method(service, path, _PROPERTIES, "Get", "ss", interface, name)


def get_all(service: str, path: str, interface: str) -> Message:
    """`org.freedesktop.DBus.Properties.GetAll`, as a value."""
    return method(service, path, _PROPERTIES, "GetAll", "s", interface)


def changed_values(message: Message) -> tuple[dict[str, Any], list[str]]:
    """The new values (unwrapped from their variants) and the names only invalidated, of a
    `PropertiesChanged` message."""
    _, changed, invalidated = message.body
    return {name: value for name, (_, value) in changed.items()}, list(invalidated)


class Watch:
    """A backend's bus (the system bus unless one is given; closed with the watch) and its
    worker thread."""

    def __init__(self, bus: Bus | None, thread_name: str) -> None:
        self.bus = bus if bus is not None else Bus.system()
        self._thread_name = thread_name
        self._jobs: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self, rule: MatchRule, handler: Callable[[Message], None]) -> None:
        """Call `handler` on the receiving thread with each matching signal (it must return at
        once: read the message, `submit` the rest)."""
        self.bus.subscribe(rule, handler)

    def submit(self, job: Callable[[], object]) -> None:
        """Run `job` on the worker thread, after the jobs submitted before it (once started)."""
        if not self._closed:
            self._jobs.put(job)

    def start(self) -> None:
        """Start running the jobs, those submitted so far first."""
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = start_thread(self._run, name=self._thread_name)

    def wait(self, timeout: float) -> bool:
        """Wait until the jobs submitted so far have run (False if `timeout` ran out, or the
        worker was not started); after `close` nothing more runs, and this returns True."""
        if self._closed:
            return True
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Drop the queued jobs, wait a moment for the running one, and close the bus."""
        self._closed = True
        self._jobs.put(None)
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_CLOSE_WAIT)
        self.bus.close()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None and not self._closed:
            try:
                job()
            except Exception:
                log.exception("%s: a job failed; the next one runs", self._thread_name)


class Watching:
    """What a watching backend gets from its `Watch`: closing, and catching up."""

    _watch: Watch

    def close(self) -> None:
        """Stop watching: nothing is reported after this returns."""
        self._watch.close()

    def caught_up(self, timeout: float = 2.0) -> bool:
        """Wait until what the backend has seen so far is reported (a sleep source subscribes
        after `watch` returns): False if `timeout` seconds ran out first."""
        return self._watch.wait(timeout)
