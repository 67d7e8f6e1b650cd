"""CPU time of this process and its descendants, read with psutil.

The embedded host runs inside the app's own process, so "the app's process tree" is this
process, the children it has reaped (their time is folded into ours by the kernel) and the
descendants still running. Every app of the process shares that one tree, so one reading per
sample serves them all, however many sessions run.

Reading the tree needs psutil only while descendants run: this process's own time and that of
the children it has reaped come from `os.times()`, and whether any child exists at all is one
`waitid(WNOHANG | WNOWAIT)`, which reaps nothing. So a session that starts before the process
has children (`xrs run` starts its session before its command) takes its baseline without
importing psutil, which costs more than the rest of the reading put together.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Collection
from typing import Any

from ..abc import CpuSource, Probe

__all__ = ["ProcessTreeCpu", "descendants_seconds"]


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
        me = os.times()
        total = me.user + me.system + me.children_user + me.children_system
        if not _has_children():
            return total
        import psutil

        if self._process is None:
            self._process = psutil.Process()
        return total + descendants_seconds(self._process)


def _has_children() -> bool:
    """Whether this process has a child, running or exited but not yet reaped (none is reaped:
    `WNOWAIT` leaves an exited child for whoever waits for it)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WSTOPPED | os.WCONTINUED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def descendants_seconds(process: Any) -> float:
    """User plus system CPU seconds of a psutil process's descendants (those that vanish
    while they are read count for nothing)."""
    import psutil

    total = 0.0
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total
