"""From `start()` to our lock in logind's `ListInhibitors`, against a bare `Inhibit` call.

What is measured
----------------
The real systemd-logind (`scripts/services start`). One `EmbeddedHost()` (which chooses the
logind backend; the benchmark checks) and one mindfulness app. Each round starts a session and
polls logind's `ListInhibitors`, on a connection of its own, until a lock whose `who` is the app
appears: the time from the call to `start()` to that moment is one figure. The session is then
invalidated and the lock waited out (not measured). The path counted is the whole of it: the
engine's decision, the keep-awake channel's worker, logind's `Inhibit` over the host's open
connection, and the poll that sees it (each poll is itself a round trip to logind).

The peer
--------
A bare `Inhibit("idle:sleep", ..., "block")` on a fresh system-bus connection with
file-descriptor passing: connect, call, get the descriptor (then closed, not measured): what one
lock costs a program that does nothing else. Rounds of ours and of the peer alternate, so both
see the same machine. Target: our p99 under 2x the peer's p99.

Run: `python bench/bench_keep_awake.py` (one JSON object on the last line of stdout); the
services must run (the result says `"skipped"` otherwise).
"""

from __future__ import annotations

import os
from typing import Any

from jeepney.io.blocking import open_dbus_connection

from _measure import load_services, percentile, pin_to_one_core, report, stopwatch
from extended_runtime import EmbeddedHost, ExtendedRuntimeSession, SessionType
from extended_runtime._backends.linux.dbus import Bus
from extended_runtime._backends.linux.logind import inhibit, list_inhibitors

__all__ = ["main", "rounds"]

ROUNDS = 300
TARGET_RATIO = 2.0
APP_ID = "org.bench.keep-awake"


def _visible(bus: Bus, present: bool) -> None:
    """Poll `ListInhibitors` until the app's lock is there (or gone)."""
    while any(lock[1] == APP_ID for lock in bus.call(list_inhibitors())[0]) != present:
        pass


def ours(host: EmbeddedHost, watcher: Bus) -> float:
    """One round: seconds from `start()` to the lock seen in `ListInhibitors`."""
    session = ExtendedRuntimeSession(host.app(APP_ID, SessionType.MINDFULNESS))
    started = stopwatch()
    session.start()
    _visible(watcher, True)
    seen = stopwatch() - started
    session.invalidate()
    _visible(watcher, False)
    return seen


def peer() -> float:
    """One round: seconds to connect and take a lock, the descriptor in hand."""
    started = stopwatch()
    connection = open_dbus_connection(bus="SYSTEM", enable_fds=True)
    reply = connection.send_and_get_reply(inhibit("idle:sleep", "peer", "benchmark", "block"))
    elapsed = stopwatch() - started
    reply.body[0].close()
    connection.close()
    return elapsed


def rounds(count: int = ROUNDS) -> dict[str, Any]:
    """Alternate rounds of ours and the peer's; their percentiles in milliseconds."""
    host = EmbeddedHost()
    keep = host.backends.keep_awake
    assert keep is not None and keep.name == "logind", keep
    watcher = Bus.system()
    try:
        ours(host, watcher)  # warm: the first round opens what later ones reuse
        peer()
        samples: dict[str, list[float]] = {"ours": [], "peer": []}
        for _ in range(count):
            samples["ours"].append(ours(host, watcher))
            samples["peer"].append(peer())
    finally:
        watcher.close()
        host.close()
    return {name: _summary(values) for name, values in samples.items()}


def _summary(values: list[float]) -> dict[str, float]:
    ms = [value * 1000 for value in values]
    return {"p50_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99), "max_ms": max(ms)}


def main() -> None:
    if not load_services() and "DBUS_SESSION_BUS_ADDRESS" not in os.environ:
        report({"benchmark": "keep_awake", "skipped": "run `sudo scripts/services start` first"})
        return
    cpu = pin_to_one_core()
    result = rounds()
    ratio = result["ours"]["p99_ms"] / result["peer"]["p99_ms"]
    report(
        {
            "benchmark": "keep_awake",
            "cpu": cpu,
            "rounds": ROUNDS,
            **result,
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "passed": ratio < TARGET_RATIO,
        }
    )


if __name__ == "__main__":
    main()
