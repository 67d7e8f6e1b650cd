"""From `notify_user()` to the alarm's sound on the sound server: how soon the user hears it.

What is measured
----------------
One `EmbeddedHost()` with the backends this machine gets (the Linux alerts: the freedesktop sound
theme through libcanberra, the desktop notification, ...) rings `ROUNDS` smart alarms, one after
the other, each for an app of its own: `start_at(now)`, wait for `did_start`, wait until the
sound server's output has been silent for 0.3 s, then take the stopwatch and call
`session.notify_user(HapticType.NOTIFICATION, handler)` (one alert: the handler returns `None`).
The sound's onset is the arrival of the first 5 ms block of the default sink's monitor whose RMS
amplitude is above 0.01, streamed by `parec --latency-msec=5` and read by a thread that stamps
each block as it arrives. Onset minus call is the figure: the engine's command, the hand-off to
the host's alerts channel and its worker thread, libcanberra's theme lookup and decoding,
PulseAudio's stream set-up and mixing, and the monitor's capture (up to one block plus parec's
latency, so the figure is an upper bound). Then `invalidate()` cancels the sound and the next
round begins. The first `WARMUP` rounds (the first opens libcanberra's playing context) are
reported apart and not counted.

The peer
--------
The same onset for a bare libcanberra play of the same theme event
(`ThemeSound.play(key, "phone-incoming-call", ...)` on an open context) from the benchmark's own
thread: the floor of "a theme sound reaches the sink", capture latency included. Ours minus the
peer is what the session machinery adds.

Each kind runs in a fresh process pinned to one CPU. Target: p50 under 100 ms. Without a sound
server (or `parec`) the benchmark says so and measures nothing.

Run: `python bench/bench_alert_sound.py` (one JSON object on the last line of stdout); one kind:
`python bench/bench_alert_sound.py --probe {ours,peer} pinned`. The services of
`scripts/services start` are used when its `.services.env` exists.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _measure import pin_to_one_core, probe_requested, report, stopwatch
from extended_runtime import (
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    HapticType,
    SessionType,
)
from extended_runtime._backends.linux.patterns import PATTERNS

__all__ = ["Onsets", "main", "run_ours", "run_peer"]

ROUNDS = 40
WARMUP = 2
HAPTIC = HapticType.NOTIFICATION
EVENT_ID = PATTERNS[HAPTIC].event_id
THRESHOLD = 0.01  # RMS amplitude of a block that counts as sound
SILENCE = 0.001  # below this a block is silent
QUIET_FOR = 0.3  # seconds of silence before each round
BLOCK = 44_100 // 200 * 4  # 5 ms of 44.1 kHz stereo signed 16-bit
TARGET_P50_MS = 100.0
KINDS = ("ours", "peer")
MODES = ("pinned",)
ENV_FILE = Path(__file__).resolve().parent.parent / ".services.env"


def _rms(block: bytes) -> float:
    samples = array("h", block)
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768


class Onsets:
    """The default sink's monitor, streamed; when sound starts after a call, and silence."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._armed = False
        self._onset: float | None = None
        self._last_sound = stopwatch()
        self._process = subprocess.Popen(
            [
                "parec", "-d", "@DEFAULT_MONITOR@", "--raw", "--format=s16le", "--rate=44100",
                "--channels=2", "--latency-msec=5",
            ],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(10)
        self._reader.join(10)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def wait_quiet(self, timeout: float = 10.0) -> None:
        """Return once the sink has been silent for `QUIET_FOR` seconds."""
        until = stopwatch() + timeout
        with self._changed:
            while stopwatch() - self._last_sound < QUIET_FOR:
                if stopwatch() > until:
                    raise SystemExit("the sound server never went quiet")
                self._changed.wait(0.05)

    def time(self, play: Callable[[], None]) -> float:
        """Seconds from calling `play` to the first block of sound."""
        with self._changed:
            self._onset, self._armed = None, True
        start = stopwatch()
        play()
        with self._changed:
            if not self._changed.wait_for(lambda: self._onset is not None, 5.0):
                raise SystemExit("no sound reached the sink within 5 s")
            self._armed = False
            assert self._onset is not None
            return self._onset - start

    def _read(self) -> None:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        pending = bytearray()
        while chunk := os.read(fd, 4096):
            arrived = stopwatch()
            pending.extend(chunk)
            while len(pending) >= BLOCK:
                level = _rms(bytes(pending[:BLOCK]))
                del pending[:BLOCK]
                self._heard(level, arrived)

    def _heard(self, level: float, arrived: float) -> None:
        with self._changed:
            if level >= SILENCE:
                self._last_sound = arrived
            if level > THRESHOLD and self._armed and self._onset is None:
                self._onset = arrived
            self._changed.notify_all()


class _Started(ExtendedRuntimeSessionDelegate):
    def __init__(self) -> None:
        self.started = threading.Event()

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.started.set()


def _once(played: HapticType) -> None:
    """The repeat handler: no repetition."""
    return None


def run_ours(onsets: Onsets, rounds: int = ROUNDS + WARMUP) -> list[float]:
    """Latency of each smart alarm's first alert on one embedded host."""
    host = EmbeddedHost()
    alerts = host.backends.alerts
    if alerts is None or alerts.name != "linux-alerts":
        raise SystemExit(f"the Linux alerts are not chosen here: {alerts and alerts.probe()}")
    latencies = []
    try:
        for i in range(rounds):
            delegate = _Started()
            session = ExtendedRuntimeSession(
                host.app(f"org.bench.heard{i:03d}", SessionType.SMART_ALARM), delegate
            )
            session.start_at(host.now)
            if not delegate.started.wait(5):
                raise SystemExit(f"alarm {i} did not start")
            onsets.wait_quiet()
            latencies.append(onsets.time(partial(session.notify_user, HAPTIC, _once)))
            session.invalidate()
    finally:
        host.close()
    return latencies


def run_peer(onsets: Onsets, rounds: int = ROUNDS + WARMUP) -> list[float]:
    """Latency of a bare libcanberra play of the same theme event."""
    from extended_runtime._backends.linux.sound import ThemeSound

    theme = ThemeSound()
    latencies = []
    for _ in range(rounds):
        onsets.wait_quiet()
        latencies.append(onsets.time(lambda: theme.play("peer", EVENT_ID, "benchmark")))
        theme.stop("peer")
    return latencies


def summary(latencies: list[float]) -> dict[str, Any]:
    counted = sorted(latencies[WARMUP:])
    cuts = statistics.quantiles(counted, n=10, method="inclusive")
    return {
        "rounds": len(counted),
        "p50_ms": statistics.median(counted) * 1e3,
        "p90_ms": cuts[8] * 1e3,
        "min_ms": counted[0] * 1e3,
        "max_ms": counted[-1] * 1e3,
        "warmup_ms": [x * 1e3 for x in latencies[:WARMUP]],
    }


_RUNS: dict[str, Callable[[Onsets], list[float]]] = {"ours": run_ours, "peer": run_peer}


def probe(kind: str, mode: str) -> dict[str, Any]:
    """One kind's rounds, in this (fresh) process pinned to one CPU."""
    cpu = pin_to_one_core()
    onsets = Onsets()
    try:
        result = summary(_RUNS[kind](onsets))
    finally:
        onsets.close()
    result["cpu"] = cpu
    return result


def _services() -> None:
    """The environment of `scripts/services start`, when it ran (as the tests use it)."""
    if ENV_FILE.is_file():
        pairs = (line.partition("=") for line in ENV_FILE.read_text(encoding="utf-8").splitlines())
        os.environ.update({key.strip(): value.strip() for key, eq, value in pairs if eq})


def missing() -> str | None:
    """Why this machine cannot run the benchmark, or None."""
    from extended_runtime._backends.linux.sound import ThemeSound

    if shutil.which("parec") is None:
        return "no parec (package pulseaudio-utils) to record the sound server"
    theme = ThemeSound().probe()
    return None if theme.available else f"no theme sound: {theme.detail}"


def _run_probe(kind: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", kind, "pinned"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe {kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    _services()
    if probe_requested(__doc__.splitlines()[0], KINDS, MODES, probe):
        return
    base: dict[str, Any] = {
        "benchmark": "alert_sound",
        "event_id": EVENT_ID,
        "threshold": THRESHOLD,
        "target_p50_ms": TARGET_P50_MS,
    }
    why = missing()
    if why is not None:
        report({**base, "skipped": why, "passed": False})
        return
    runs = {kind: _run_probe(kind) for kind in KINDS}
    ours, peer = runs["ours"], runs["peer"]
    report(
        {
            **base,
            "runs": runs,
            "ratio_p50": ours["p50_ms"] / peer["p50_ms"],
            "passed": ours["p50_ms"] < TARGET_P50_MS,
        }
    )


if __name__ == "__main__":
    main()
