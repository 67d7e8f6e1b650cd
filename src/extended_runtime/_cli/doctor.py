"""`xrs doctor`: what this machine can do for sessions, backend by backend.

Every candidate backend of every capability is probed (`_backends.select.survey`), in priority
order, and shown with whether it works here, whether it was chosen, and why; `timers` says what
the embedded host's timer thread sleeps on (timerfds, or polling elsewhere). The terminal, which
an app follows only when it asks (`follow_terminal()`), is shown as `app-state`, never chosen.
The exit status says whether sessions can do their main job: 0 when keep-awake has a working
backend, 1 when it has none (the machine would be free to sleep during a session).
"""

from __future__ import annotations

from dataclasses import replace

from .._backends.select import Candidate, Survey, survey, terminal_source
from .._hosts.waiting import probe_timers

__all__ = ["EXIT_NO_KEEP_AWAKE", "diagnose", "report"]

#: `xrs doctor` exits with this when no keep-awake backend works.
EXIT_NO_KEEP_AWAKE = 1

_HEADER = ("capability", "backend", "usable", "chosen", "why")


def diagnose() -> tuple[str, int]:
    """The report and the exit status."""
    found = survey(everything=True)
    found.backends.close()
    timers = Candidate("timers", probe_timers(), True)  # what the embedded host sleeps on
    found = replace(found, candidates=(*found.candidates, timers))
    terminal = terminal_source()
    if terminal is not None:  # apps opt in (`follow_terminal()`): shown, never chosen here
        found = replace(
            found, candidates=(*found.candidates, Candidate("app-state", terminal.probe(), False))
        )
        terminal.close()
    return report(found), 0 if found.working("keep-awake") else EXIT_NO_KEEP_AWAKE


def report(found: Survey) -> str:
    """The table, and a closing line when keep-awake has no working backend."""
    rows = [_HEADER, *(_row(candidate) for candidate in found.candidates)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADER) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    if not found.working("keep-awake"):
        lines.append(
            "no keep-awake backend works here: the machine may sleep during a session "
            "(see the keep-awake rows for why)"
        )
    return "\n".join(line.rstrip() for line in lines)


def _row(candidate: Candidate) -> tuple[str, str, str, str, str]:
    probe = candidate.probe
    usable = "yes" if probe.available else "no"
    return (candidate.capability, probe.name, usable, "*" if candidate.chosen else "", probe.detail)
