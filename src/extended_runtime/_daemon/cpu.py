"""CPU time of the apps the daemon serves: each app's own process tree, not the daemon's.

The embedded host's source reads the process it runs in, which is the app. In the daemon that
process is the daemon itself, serving every app: its CPU time says nothing of any app's. So the
daemon reads, for each app, the process tree of the client that registered it (the pid its
connection's peer credentials name), with psutil: that process and its descendants, user plus
system time. The tree of an app is named by the app (`app:ID`), and resolved to its current
process at each reading, so a relaunched app is read where it runs now; an app with no process
(or one that is gone) is left out of the reading, as the `CpuSource` contract says.

Apps that share one process (an app process that declares several apps) share one reading of
its tree: a reading costs a walk of the process table per distinct process, not per app.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from .._backends.process_cpu import descendants_seconds
from ..abc import CpuSource, Probe

__all__ = ["PeerCpu"]

_PREFIX = "app:"


class PeerCpu(CpuSource):
    """User plus system CPU seconds of each app's client process tree."""

    name = "peer-process-tree-cpu"

    def __init__(self, pid_of: Callable[[str], int | None]) -> None:
        """`pid_of(app_id)`: the pid of the app's connected process, or `None`."""
        self._pid_of = pid_of
        self._processes: dict[int, Any] = {}

    def probe(self) -> Probe:
        import importlib.util

        if importlib.util.find_spec("psutil") is None:
            return Probe(self.name, False, "psutil is not installed: pip install psutil")
        return Probe(self.name, True, "psutil reads each app's client process tree")

    def tree_of(self, app_id: str) -> str:
        return _PREFIX + app_id

    def read(self, trees: Collection[str]) -> dict[str, float]:
        import psutil

        roots: dict[int, list[str]] = {}
        for tree in trees:
            pid = self._pid_of(tree.removeprefix(_PREFIX))
            if pid is not None:
                roots.setdefault(pid, []).append(tree)
        readings: dict[str, float] = {}
        live: dict[int, Any] = {}
        for pid, named in roots.items():
            try:
                process = self._processes.get(pid) or psutil.Process(pid)
                seconds = _tree_seconds(process)
            except psutil.Error:
                continue
            live[pid] = process
            readings.update(dict.fromkeys(named, seconds))
        self._processes = live  # a process object per live client, reused between readings
        return readings


def _tree_seconds(process: Any) -> float:
    times = process.cpu_times()
    return float(times.user + times.system) + descendants_seconds(process)
