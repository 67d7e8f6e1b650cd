"""The daemon's interpreter, tuned for its timers: its full garbage collections run between them.

Theory
------
The daemon's timer thread must fire on time while other threads of the same interpreter work:
effect workers (CPU readings, commits), connection readers. The daemon owns its process, so it
tunes what of CPython would hold the timers back for milliseconds.

*Garbage collection.* CPython frees most objects by reference counting; its cyclic collector
finds the rest in passes over three generations. A *young* pass walks only the objects made
since the last one (a few thousand: well under a millisecond). A *full* pass walks every object
the collector tracks, and in a daemon that has scheduled ten thousand sessions since it started,
that is 20 to 40 ms with the interpreter lock held: every thread stops, and a timer due meanwhile
fires that late (seen as a run of twenty to forty alarms, a millisecond apart, all started in
the same instant). CPython starts a full pass by itself after `STOCK` passes of the middle
generation, wherever the timers are. So, while `quiet_collections()` is in force:

* the objects of the sessions recovered at start-up (an object or more per session, alive as
  long as the daemon) are made with the collector paused, then frozen out of every later pass
  (`gc.freeze`): no pass ever walks them again (`recovering`);
* young passes stay automatic; CPython's own full passes wait for `BACKSTOP` middle passes
  instead of `STOCK`;
* the timer thread, each time it is about to sleep with nothing due for at least `QUIET`
  seconds, runs the full pass CPython would have run by now (`collect_if_due`: `STOCK` or more
  middle passes since the last full one). The pass falls in a gap between timers.

A burst of timers that leaves no quiet gap still gets its full pass from the backstop, so what
cyclic garbage there is stays bounded; it is only moved, never skipped.

*The switch interval* stays CPython's (5 ms). A thread that wakes and finds the interpreter
lock held waits until the holder lets it go, at most that long; 0.5 ms was measured (10,000
alarms a millisecond apart, and 16 clients starting and ending sessions): the p99 lateness of
`did_start` came about a tenth lower, the lifecycles per second about a sixth lower, which is no
trade for a daemon that serves both. What keeps a woken timer from waiting on a busy effect
worker is that no worker holds the host's lock for long (`Host._read_cpu`'s chunks).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = [
    "BACKSTOP",
    "QUIET",
    "STOCK",
    "collect_if_due",
    "quiet_collections",
    "recovering",
]

#: The middle-generation passes after which CPython runs a full pass by itself (its default).
STOCK = 10
#: The middle-generation passes after which a full pass runs even without a quiet gap.
BACKSTOP = 20 * STOCK
#: Seconds with nothing due that leave room for a full pass (one takes up to about 40 ms).
QUIET = 0.25


@contextlib.contextmanager
def quiet_collections() -> Iterator[None]:
    """Full passes wait for a quiet gap (`collect_if_due`) or the backstop while the block
    runs; the thresholds before it are put back after it."""
    before = gc.get_threshold()
    gc.set_threshold(*before[:2], BACKSTOP)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextlib.contextmanager
def recovering() -> Iterator[None]:
    """What the block makes is kept out of every later pass: the collector is paused while it
    runs (each pass would walk the hundred thousand new objects again) and what it made is
    frozen after it."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def collect_if_due(idle_for: float | None) -> bool:
    """Run a full pass if one is owed and nothing is due for `idle_for` seconds (`None`:
    nothing is due at all); whether one ran."""
    if idle_for is not None and idle_for < QUIET:
        return False
    if gc.get_count()[2] < STOCK:
        return False
    gc.collect()
    return True
