"""The one place that chooses backends for a host.

Today every platform gets the logging backends plus the process-tree CPU reader; the Linux
backends (logind inhibitor, wake alarms, sound, notifications, rumble) will be chosen here by
probing, in priority order, with each candidate's `Probe` kept for `xrs doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..abc import AlertBackend, CpuSource, EventSink, KeepAwakeBackend, Store, WakeAlarmBackend
from .memory import MemoryStore
from .null import LogEventSink, LoggingAlerts, LoggingKeepAwake, LoggingWakeAlarm
from .process_cpu import ProcessTreeCpu

__all__ = ["Backends", "embedded_backends"]


@dataclass(slots=True)
class Backends:
    """The backends one host uses."""

    alerts: AlertBackend = field(default_factory=LoggingAlerts)
    keep_awake: KeepAwakeBackend = field(default_factory=LoggingKeepAwake)
    wake_alarm: WakeAlarmBackend = field(default_factory=LoggingWakeAlarm)
    sink: EventSink = field(default_factory=LogEventSink)
    store: Store = field(default_factory=MemoryStore)
    cpu: CpuSource | None = field(default_factory=ProcessTreeCpu)


def embedded_backends() -> Backends:
    """The backends of an in-process host on this machine."""
    return Backends()
