"""The one place that chooses backends for a host.

A host performs each kind of effect through one backend, or not at all when that backend is
`None`: a host without a store keeps no records (the embedded host: nothing in its process reads
them, and a long-lived app would keep every session it ever ran), and the virtual host, by
default, only records what it would do.

Today every platform gets the logging backends plus the process-tree CPU reader; the Linux
backends (logind inhibitor, wake alarms, sound, notifications, rumble) will be chosen here by
probing, in priority order, with each candidate's `Probe` kept for `xrs doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..abc import AlertBackend, CpuSource, EventSink, KeepAwakeBackend, Store, WakeAlarmBackend
from .null import LogEventSink, LoggingAlerts, LoggingKeepAwake, LoggingWakeAlarm
from .process_cpu import ProcessTreeCpu

__all__ = ["Backends", "embedded_backends"]


@dataclass(slots=True)
class Backends:
    """The backends one host uses; `None` performs nothing of that kind."""

    alerts: AlertBackend | None = field(default_factory=LoggingAlerts)
    keep_awake: KeepAwakeBackend | None = field(default_factory=LoggingKeepAwake)
    wake_alarm: WakeAlarmBackend | None = field(default_factory=LoggingWakeAlarm)
    sink: EventSink | None = field(default_factory=LogEventSink)
    store: Store | None = None
    cpu: CpuSource | None = field(default_factory=ProcessTreeCpu)


def embedded_backends() -> Backends:
    """The backends of an in-process host on this machine."""
    return Backends()
