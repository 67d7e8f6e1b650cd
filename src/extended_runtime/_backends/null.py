"""Logging backends: they do nothing to the machine and say what they would have done.

These stand in wherever no working OS backend is found. Each probe answers "not available" and
says plainly that it does not act on the machine, so `xrs doctor` never passes one off as real.
"""

from __future__ import annotations

import logging
from datetime import datetime

from .._core.enums import HapticType
from .._core.events import Event
from ..abc import AlertBackend, EventSink, KeepAwakeBackend, Probe, WakeAlarmBackend

__all__ = ["LogEventSink", "LoggingAlerts", "LoggingKeepAwake", "LoggingWakeAlarm"]

log = logging.getLogger("extended_runtime.backends")


class LoggingKeepAwake(KeepAwakeBackend):
    """Logs hold and release; the machine may still sleep."""

    name = "log-keep-awake"

    def __init__(self) -> None:
        self.held = False

    def probe(self) -> Probe:
        return Probe(self.name, False, "logs only: does not keep the machine awake")

    def hold(self, who: str, why: str) -> None:
        self.held = True
        log.info("keep-awake held for %s: %s", who, why)

    def release(self) -> None:
        self.held = False
        log.info("keep-awake released")


class LoggingWakeAlarm(WakeAlarmBackend):
    """Logs the instant it would wake the machine at."""

    name = "log-wake-alarm"

    def __init__(self) -> None:
        self.armed_at: datetime | None = None

    def probe(self) -> Probe:
        return Probe(self.name, False, "logs only: does not wake the machine")

    def arm(self, at: datetime | None) -> None:
        self.armed_at = at
        log.info("wake alarm %s", "disarmed" if at is None else f"armed for {at.isoformat()}")


class LoggingAlerts(AlertBackend):
    """Logs each alert instead of playing it."""

    name = "log-alerts"

    def probe(self) -> Probe:
        return Probe(self.name, False, "logs only: plays no sound, notification or haptic")

    def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
        who = "host alert" if by_host else "alert"
        log.warning("%s for %s (session %s): %s", who, app_id, session_id, haptic.name)

    def dismiss(self, app_id: str, session_id: str) -> None:
        log.info("alert dismissed for %s (session %s)", app_id, session_id)


class LogEventSink(EventSink):
    """Writes every event to the `extended_runtime.events` logger at DEBUG."""

    name = "log-events"

    def __init__(self) -> None:
        self._log = logging.getLogger("extended_runtime.events")

    def record(self, event: Event) -> None:
        self._log.debug("%s", event)

    def listening(self) -> bool:
        return self._log.isEnabledFor(logging.DEBUG)
