"""The one place that chooses backends for a host.

Theory
------
Each capability (keep-awake, wake alarm, alerts, CPU, suppression, sleep) has candidates in
priority order, each a backend class that can `probe()` whether it works on this machine. The
first usable candidate is chosen; a capability with none falls back to its logging stand-in,
which does nothing to the machine and whose probe says so. Every candidate's probe is kept
(`survey()`), so `xrs doctor` can show what was tried, what was chosen and why the others were
not. Platform modules are chosen here and nowhere else, and are imported only when a host is
created (a backend class is named, not imported, until its turn comes). A candidate that is not
chosen is closed at once, and the D-Bus backends of one survey share one system bus connection,
so a host costs one connection however many of them it uses.

A host performs each kind of effect through one backend, or not at all when that backend is
`None`: a host without a store keeps no records (the embedded host: nothing in its process reads
them, and a long-lived app would keep every session it ever ran), and the virtual host, by
default, only records what it would do.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..abc import (
    AlertBackend,
    AppStateSource,
    Backend,
    CpuSource,
    EventSink,
    KeepAwakeBackend,
    Probe,
    SleepSource,
    Store,
    SuppressionSource,
    WakeAlarmBackend,
)
from .null import LogEventSink, LoggingAlerts, LoggingKeepAwake, LoggingWakeAlarm
from .process_cpu import ProcessTreeCpu

__all__ = [
    "CHOOSABLE",
    "BackendUnavailable",
    "Backends",
    "Candidate",
    "Survey",
    "embedded_backends",
    "names",
    "survey",
    "terminal_source",
]

log = logging.getLogger("extended_runtime.backends")


@dataclass(slots=True)
class Backends:
    """The backends one host uses; `None` performs nothing of that kind."""

    alerts: AlertBackend | None = field(default_factory=LoggingAlerts)
    keep_awake: KeepAwakeBackend | None = field(default_factory=LoggingKeepAwake)
    wake_alarm: WakeAlarmBackend | None = field(default_factory=LoggingWakeAlarm)
    sink: EventSink | None = field(default_factory=LogEventSink)
    store: Store | None = None
    cpu: CpuSource | None = field(default_factory=ProcessTreeCpu)
    #: Sources of system conditions (shutdown, power saver, battery); each changes its part.
    suppression: tuple[SuppressionSource, ...] = ()
    #: Tells the host before the machine suspends and after it resumes.
    sleep: SleepSource | None = None

    def close(self) -> None:
        """Close every backend (the host is done with them): the sources first, so nothing
        is reported after; one that fails is logged and the others still close."""
        for backend in (self.sleep, *self.suppression, self.alerts, self.keep_awake,
                        self.wake_alarm, self.sink, self.store, self.cpu):  # fmt: skip
            if backend is None:
                continue
            try:
                backend.close()
            except Exception:
                log.exception("closing the %s backend failed", backend.name)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One backend tried for a capability: its probe, and whether it was chosen."""

    capability: str
    probe: Probe
    chosen: bool


@dataclass(frozen=True, slots=True)
class Survey:
    """What was tried for each capability, and the backends chosen."""

    candidates: tuple[Candidate, ...]
    backends: Backends

    def working(self, capability: str) -> bool:
        """Whether the chosen backend of `capability` acts on the machine (not a stand-in)."""
        return any(
            c.chosen and c.probe.available for c in self.candidates if c.capability == capability
        )


#: Where each Linux backend lives, by capability, in priority order ("module:Class").
_LINUX: dict[str, tuple[str, ...]] = {
    "keep-awake": (
        "linux.logind:LogindInhibitor",
        "linux.desktop:PortalInhibitor",
        "linux.desktop:ScreenSaverInhibitor",
    ),
    "wake-alarm": ("linux.wakealarm:TimerfdWakeAlarm", "linux.wakealarm:RtcWakeAlarm"),
    "alerts": ("linux.alerts:LinuxAlerts",),
    "suppression": (
        "linux.sleep:LogindShutdown",
        "linux.power:PowerProfiles",
        "linux.power:UPowerBattery",
    ),
    "sleep": ("linux.sleep:LogindSleep",),
}

#: The stand-in used when no candidate of a capability works.
_FALLBACK: dict[str, type[Backend]] = {
    "keep-awake": LoggingKeepAwake,
    "wake-alarm": LoggingWakeAlarm,
    "alerts": LoggingAlerts,
}


#: The capabilities a user may choose a backend for, by name (`survey(prefer=...)`).
CHOOSABLE = ("keep-awake", "wake-alarm", "alerts")


class BackendUnavailable(ValueError):
    """A backend asked for by name does not exist, or cannot work here (the message says)."""


def names(capability: str, platform: str = sys.platform) -> list[str]:
    """The backends of `capability` on this platform, by name, in priority order."""
    table = _LINUX if platform.startswith("linux") else {}
    return [_class(path).name for path in table.get(capability, ())] + [_FALLBACK[capability].name]


def survey(
    *,
    everything: bool = False,
    prefer: Mapping[str, str] | None = None,
    needs: Collection[str] = CHOOSABLE,
    platform: str = sys.platform,
) -> Survey:
    """Choose the backends of this machine, probing candidates in priority order until one
    works (`everything`: probe the rest too, for `xrs doctor`). `prefer` names the backend to
    use for some capabilities instead; one that cannot work here raises `BackendUnavailable`.

    `needs`: the choosable capabilities the host will use; the others get no backend (`None`),
    and their modules are not even imported (`xrs run` never schedules nor alerts). A capability
    named in `prefer` is always needed."""
    table = _LINUX if platform.startswith("linux") else {}
    trial = _Trial(everything)
    wanted_here = set(needs) | set(prefer or {})
    try:
        chosen: dict[str, Backend | None] = dict.fromkeys(CHOOSABLE)
        for capability in (c for c in CHOOSABLE if c in wanted_here):
            wanted = (prefer or {}).get(capability)
            if wanted is not None:
                chosen[capability] = trial.named(capability, wanted, table.get(capability, ()))
                continue
            found = trial.first_usable(capability, table.get(capability, ()))
            if found is None:
                found = _FALLBACK[capability]()
                trial.candidates.append(Candidate(capability, found.probe(), True))
            chosen[capability] = found
        sources = [
            trial.usable("suppression", path, first=True) for path in table.get("suppression", ())
        ]
        sleep = trial.first_usable("sleep", table.get("sleep", ()))
    finally:
        trial.done()
    backends = Backends(
        alerts=_as(chosen["alerts"], AlertBackend),
        keep_awake=_as(chosen["keep-awake"], KeepAwakeBackend),
        wake_alarm=_as(chosen["wake-alarm"], WakeAlarmBackend),
        suppression=tuple(_as(s, SuppressionSource) for s in sources if s is not None),
        sleep=None if sleep is None else _as(sleep, SleepSource),
    )
    cpu = Candidate("cpu", backends.cpu.probe() if backends.cpu else _none(), True)
    return Survey((*trial.candidates, cpu), backends)


def embedded_backends() -> Backends:
    """The backends of an in-process host on this machine."""
    return survey().backends


def terminal_source(platform: str = sys.platform) -> AppStateSource | None:
    """The source that follows the controlling terminal here (`None`: no platform module).

    Not probed: the caller probes it, to say why an app does not follow a terminal."""
    if not platform.startswith("linux"):
        return None
    source: AppStateSource = _as(_load("linux.terminal:TerminalForeground"), AppStateSource)
    return source


class _Trial:
    """One survey under way: the probes taken, and what the candidates share.

    The D-Bus backends that declare `system_bus = True` share one system bus connection (each
    gets a share, which it closes when the host closes), so a host costs one connection, not
    one per backend. A candidate that is not chosen is closed at once."""

    def __init__(self, everything: bool) -> None:
        self.everything = everything
        self.candidates: list[Candidate] = []
        self._bus: Any = None

    def first_usable(self, capability: str, paths: tuple[str, ...]) -> Backend | None:
        """The first candidate whose probe says it works; each probe taken is recorded."""
        found: Backend | None = None
        for path in paths:
            if found is not None and not self.everything:
                break
            backend = self.usable(capability, path, first=found is None)
            found = found or backend
        return found

    def usable(self, capability: str, path: str, *, first: bool) -> Backend | None:
        """The candidate if its probe says it works and it is chosen (`first`: nothing was
        chosen before it); a candidate not chosen is closed."""
        backend = self._load(path)
        probe = backend.probe()
        chosen = first and probe.available
        self.candidates.append(Candidate(capability, probe, chosen))
        if not chosen:
            backend.close()
        return backend if chosen else None

    def named(self, capability: str, name: str, paths: tuple[str, ...]) -> Backend:
        """The backend called `name`: a stand-in always, a real one only if it works here."""
        stand_in = _FALLBACK[capability]
        if name == stand_in.name:
            backend = stand_in()
            self.candidates.append(Candidate(capability, backend.probe(), True))
            return backend
        for path in paths:
            if _class(path).name == name:
                found = self.usable(capability, path, first=True)
                if found is None:
                    why = self.candidates[-1].probe.detail
                    raise BackendUnavailable(
                        f"the {capability} backend {name} cannot work here: {why}"
                    )
                return found
        choices = ", ".join(names(capability))
        raise BackendUnavailable(
            f"no {capability} backend is called {name!r}: choose from {choices}"
        )

    def done(self) -> None:
        """The survey lets go of its own share of the system bus."""
        if self._bus is not None:
            self._bus.close()

    def _load(self, path: str) -> Backend:
        if getattr(_class(path), "system_bus", False):
            return _load(path, bus=self._system_bus())
        return _load(path)

    def _system_bus(self) -> Any:
        if self._bus is None:
            from .linux.dbus import Bus

            self._bus = Bus.system()
        return self._bus.share()


def _class(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def _load(path: str, **arguments: Any) -> Backend:
    backend: Backend = _class(path)(**arguments)
    return backend


def _as(backend: Any, kind: type[Any]) -> Any:
    assert backend is None or isinstance(backend, kind), (backend, kind)
    return backend


def _none() -> Probe:
    return Probe("none", False, "no CPU source")
