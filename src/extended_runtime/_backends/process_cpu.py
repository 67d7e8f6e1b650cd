"""CPU time of this process and its descendants, read with psutil.

The embedded host runs inside the app's own process, so "the app's process tree" is this
process, the children it has reaped (their time is folded into ours by the kernel) and the
descendants still running. Every app of the process shares that one tree, so one reading per
sample serves them all, however many sessions run. psutil is imported on first use only.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Collection
from typing import Any

from ..abc import CpuSource, Probe

__all__ = ["ProcessTreeCpu"]


class ProcessTreeCpu(CpuSource):
    """User plus system CPU seconds of this process tree, for every app of this process."""

    name = "process-tree-cpu"

    def __init__(self) -> None:
        self._process: Any = None
        self._tree = f"pid:{os.getpid()}"

    def probe(self) -> Probe:
        # found, not imported: psutil loads on the first reading, off the start-up path
        if importlib.util.find_spec("psutil") is None:
            return Probe(self.name, False, "psutil is not installed: pip install psutil")
        return Probe(self.name, True, "psutil reads this process tree")

    def tree_of(self, app_id: str) -> str:
        return self._tree

    def read(self, trees: Collection[str]) -> dict[str, float]:
        if self._tree not in trees:
            return {}
        return {self._tree: self._total()}

    def _total(self) -> float:
        import psutil

        if self._process is None:
            self._process = psutil.Process()
        me = self._process.cpu_times()
        total = me.user + me.system + me.children_user + me.children_system
        for child in self._process.children(recursive=True):
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return float(total)
