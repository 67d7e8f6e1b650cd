"""The extension points, each with its contract.

Theory
------
A host performs what the engine asks through a small set of backends. Each contract below is
the whole promise a backend makes; the memory and logging implementations in this package are
the reference ones, and `extended_runtime.testing` publishes contract test suites that every
implementation (OS backends, third-party backends) can run.

Every backend can `probe()` itself: it answers whether it can work on this machine and, if not,
why, so `xrs doctor` can show each candidate. Backends must not raise out of `hold`, `arm`,
`play` and the like for conditions of the machine (a dead sound server, a missing service): they
log, report through their next probe, and keep the session alive, because a session must never
fail because a speaker is missing.

The store keeps session records written from the engine's events; every record carries a schema
version and a store refuses records newer than it understands.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ._core.conditions import Conditions
from ._core.enums import ApplicationState, HapticType
from ._core.events import Event
from ._core.records import SessionRecord

__all__ = [
    "AlertBackend",
    "AppStateSource",
    "Backend",
    "CpuSource",
    "EventSink",
    "KeepAwakeBackend",
    "Probe",
    "Store",
    "SuppressionSource",
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


class KeepAwakeBackend(Backend):
    """Keeps the machine from idle and system sleep while held (the display may turn off).

    `hold` and `release` are called alternately by the host, `hold` first. A hold must end
    with the holder's life (a file descriptor, a D-Bus name), so a crash never leaves the
    machine awake.
    """

    @abstractmethod
    def hold(self, why: str) -> None:
        """Start inhibiting sleep; `why` is shown to the user by tools that list inhibitors."""

    @abstractmethod
    def release(self) -> None:
        """Stop inhibiting sleep."""


class WakeAlarmBackend(Backend):
    """Wakes the machine from suspend at an instant (the earliest scheduled start)."""

    @abstractmethod
    def arm(self, at: datetime | None) -> None:
        """Wake the machine at `at` (aware UTC), replacing any earlier arming; `None` disarms."""


class AlertBackend(Backend):
    """Plays an alert: sound, notification and haptic, each where the machine can."""

    @abstractmethod
    def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
        """Play one alert now. `by_host`: the host's own alert for an app that cannot alert."""

    @abstractmethod
    def dismiss(self, app_id: str, session_id: str) -> None:
        """The session ended: withdraw what is still shown for it (a notification)."""


class AppStateSource(Backend):
    """Tells the host when an app's foreground state changes."""

    @abstractmethod
    def watch(self, app_id: str, callback: Callable[[ApplicationState], None]) -> None:
        """Call `callback` with each new state of the app, from any thread."""


class SuppressionSource(Backend):
    """Tells the host when system conditions change (shutdown, power saver, battery)."""

    @abstractmethod
    def watch(self, callback: Callable[[Conditions], None]) -> None:
        """Call `callback` with the new conditions whenever they change, from any thread."""


class CpuSource(Backend):
    """Reads the CPU time used by an app's process tree."""

    @abstractmethod
    def cpu_seconds(self, app_id: str) -> float | None:
        """User plus system CPU seconds used so far, or `None` if the app cannot be read."""


class EventSink(Backend):
    """Receives every event the engine announces (the audit log)."""

    @abstractmethod
    def record(self, event: Event) -> None:
        """Keep or forward one event. Must not block for long: it runs under the host lock."""


class Store(Backend):
    """Keeps the latest record of each session, written from its events."""

    @abstractmethod
    def save(self, record: SessionRecord) -> None:
        """Insert or replace the record with `record.session_id`."""

    @abstractmethod
    def get(self, session_id: str) -> SessionRecord | None:
        """The record of a session, or `None`."""

    @abstractmethod
    def records(self, app_id: str | None = None) -> list[SessionRecord]:
        """All records (of one app), oldest first."""
