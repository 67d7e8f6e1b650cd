"""The extension points, each with its contract.

Theory
------
A host performs what the engine asks through a small set of backends. Each contract below is
the whole promise a backend makes; the memory and logging implementations in this package are
the reference ones, and `extended_runtime.testing` publishes contract test suites that every
implementation (OS backends, third-party backends) can run.

Every backend can `probe()` itself: it answers whether it can work on this machine and, if not,
why, so `xrs doctor` can show each candidate.

A host calls backends outside its lock, each kind on a channel of its own, in order, so a slow or
hanging backend delays only later calls to that same backend, never a timer, a command or another
backend. A call that raises or does not return within the host's effect timeout is logged,
recorded as an `EffectFailed` event, and the host goes on: a session never fails because a
speaker is missing. Backends should still not raise for conditions of the machine (a dead sound
server, a missing service): they log, report through their next probe, and return.

A host that closes calls each backend's `close()` once, so a process that makes many hosts does
not pile up bus connections, threads or locks.

Keep-awake and the wake alarm are *levels*: the host may apply the same level again (after a
failure, or a call that returned late), so `hold`, `release` and `arm` must be idempotent.

The store keeps session records written from the engine's events; every record carries a schema
version and a store refuses records newer than it understands. Its writes are *staged*: `save`
returns at once and reads see the record at once, and `flush` returns once everything staged
before it is durable, so a daemon can acknowledge a request only after its record is on disk
while many requests share one disk write.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from ._core.conditions import Conditions
from ._core.enums import ApplicationState, HapticType, SessionState
from ._core.events import Event
from ._core.records import SessionRecord

__all__ = [
    "AlertBackend",
    "AppStateSource",
    "Backend",
    "ConditionsChange",
    "CpuSource",
    "EventSink",
    "KeepAwakeBackend",
    "Probe",
    "SleepSource",
    "Store",
    "SuppressionSource",
    "UserAction",
    "WakeAlarmBackend",
]


@dataclass(frozen=True, slots=True)
class Probe:
    """The result of a backend's self-check."""

    name: str
    available: bool
    detail: str


class Backend(ABC):  # noqa: B024 (a base with a default probe, no abstract method)
    """Anything a host drives; `name` identifies it in logs and `xrs doctor`."""

    name: str = "backend"

    def probe(self) -> Probe:
        """Whether this backend can work here, and why (not)."""
        return Probe(self.name, True, "always available")

    def close(self) -> None:  # noqa: B027 (nothing to close by default)
        """Let go of what the backend holds (connections, threads, descriptors, locks).

        A host calls it once, when it closes, after its last effect; it must not block. The
        default holds nothing."""


class KeepAwakeBackend(Backend):
    """Keeps the machine from idle and system sleep while held (the display may turn off).

    Both calls are idempotent: `hold` while held and `release` while released change nothing.
    A hold must end with the holder's life (a file descriptor, a D-Bus name), so a crash never
    leaves the machine awake.
    """

    @abstractmethod
    def hold(self, who: str, why: str) -> None:
        """Inhibit sleep (if not already). `who` (the apps) and `why` (their sessions) are
        shown by tools that list inhibitors; a hold with another `who` or `why` replaces the
        current one with no moment uninhibited between them."""

    @abstractmethod
    def release(self) -> None:
        """Stop inhibiting sleep (if inhibiting)."""


class WakeAlarmBackend(Backend):
    """Wakes the machine from suspend at an instant (the earliest scheduled start)."""

    @abstractmethod
    def arm(self, at: datetime | None) -> None:
        """Wake the machine at `at` (aware UTC), replacing any earlier arming; `None` disarms.

        Idempotent: arming the instant already armed changes nothing."""


@dataclass(frozen=True, slots=True)
class UserAction:
    """What the user did with an alert: pressed Stop (or dismissed it), or chose Open."""

    kind: Literal["stop", "open"]
    app_id: str
    session_id: str


class AlertBackend(Backend):
    """Plays an alert: sound, notification and haptic, each where the machine can."""

    @abstractmethod
    def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
        """Play one alert now. `by_host`: the host's own alert for an app that cannot alert."""

    @abstractmethod
    def dismiss(self, app_id: str, session_id: str) -> None:
        """The session ended: withdraw what is still shown for it (a notification)."""

    def listen(self, listener: Callable[[UserAction], None]) -> None:
        """Tell `listener`, from any thread, what the user does with an alert (Stop, Open).

        The host calls this once; a backend that shows nothing the user can act on (a sound,
        a rumble) has nothing to tell."""


class AppStateSource(Backend):
    """Tells the host when an app's foreground state changes."""

    @abstractmethod
    def watch(self, app_id: str, callback: Callable[[ApplicationState], None]) -> None:
        """Call `callback` with each new state of the app, from any thread."""

    def unwatch(self, callback: Callable[[ApplicationState], None]) -> None:
        """Stop calling `callback` (a source that holds nothing per watcher has nothing to do).

        A source that watches only while someone listens stops when its last watcher goes."""


#: A change to the system conditions, as a function of the current ones: each source changes
#: only its own part (`lambda c: replace(c, power_saver=True)`), so sources compose.
ConditionsChange = Callable[[Conditions], Conditions]


class SuppressionSource(Backend):
    """Tells the host when its part of the system conditions changes (shutdown, power saver,
    battery), so the engine suppresses the sessions DESIGN.md says.

    `close()` stops watching: no callback comes after it returns."""

    @abstractmethod
    def watch(self, callback: Callable[[ConditionsChange], None]) -> None:
        """Call `callback` with each change (the current state first), from any thread.

        The first call, with the current state, comes before `watch` returns (so a new host
        knows the conditions); changes follow in the order they happened."""


class SleepSource(Backend):
    """Tells the host before the machine suspends and after it resumes.

    A backend holds a delay lock while it watches (logind's `delay` inhibitor): on the way to
    sleep it calls `before_sleep`, which returns once the host is ready (its wake alarm armed),
    then lets the machine go; after the resume it takes the lock again and calls `after_wake`.
    `close()` stops watching and lets go of the lock.
    """

    @abstractmethod
    def watch(self, before_sleep: Callable[[], None], after_wake: Callable[[], None]) -> None:
        """Start watching; the callbacks come from any thread."""


class CpuSource(Backend):
    """Reads the CPU time used by process trees; one reading serves every app of a tree.

    A source that knows when a tree's load changes (`reports_changes`) lets the host skip trees
    that are idle: the host then tells the engine of each change (`Engine.cpu_changed`).
    """

    #: Whether the host is told of every change of a tree's load (else it polls).
    reports_changes: ClassVar[bool] = False

    @abstractmethod
    def tree_of(self, app_id: str) -> str:
        """The process tree whose CPU time counts for the app (apps may share one)."""

    @abstractmethod
    def read(self, trees: Collection[str]) -> dict[str, float]:
        """User plus system CPU seconds each tree has used so far; unreadable trees are left out."""


class EventSink(Backend):
    """Receives every event the engine announces (the audit log)."""

    @abstractmethod
    def record(self, event: Event) -> None:
        """Keep or forward one event, in order. It runs on the host's audit channel, outside
        its lock: a slow sink delays only later records."""

    def listening(self) -> bool:
        """Whether `record` would keep anything now; while not, the host sends it nothing
        (a sink that logs at a level nobody reads costs no thread hand-off per event)."""
        return True


class Store(Backend):
    """Keeps the latest record of each session, written from its events.

    Every method may be called from any thread. Reads see every record saved before them,
    flushed or not; a record is *durable* (it survives a crash or a power cut) once a `flush`
    that began after its `save` has returned.
    """

    @abstractmethod
    def save(self, record: SessionRecord) -> None:
        """Insert or replace the record with `record.session_id`; cheap: the write is staged.

        A replaced record keeps its place in `records()`. A record whose `schema` is newer than
        this version of the package understands is refused with `ValueError`."""

    @abstractmethod
    def get(self, session_id: str) -> SessionRecord | None:
        """The record of a session, or `None`."""

    @abstractmethod
    def records(self, app_id: str | None = None) -> list[SessionRecord]:
        """All records (of one app), oldest first (by their first `save`)."""

    def live(self) -> list[SessionRecord]:
        """The records of sessions still SCHEDULED or RUNNING, oldest first: what a host that
        restarts has to take up again."""
        return [r for r in self.records() if r.state in _LIVE]

    def flush(self) -> None:
        """Return once every record staged before the call is durable.

        Calls from many threads may share one write. A store that cannot write raises an error
        that says what to do, and keeps what was staged for the next `flush`. The default (a
        store that keeps nothing beyond the process) has nothing to do."""


#: The states of a session a restarted host takes up again.
_LIVE = (SessionState.SCHEDULED, SessionState.RUNNING)
