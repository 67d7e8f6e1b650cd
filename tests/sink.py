"""What reaches the speakers: the PulseAudio null sink's monitor, recorded while a test runs.

`scripts/services start` runs PulseAudio with a null sink named `test`; everything played to it
can be recorded from `test.monitor`, as `parec` does here (44.1 kHz, stereo, signed 16-bit).
`rms` is the sound's level as sox reports it ("RMS amplitude", 0 silent, 1 full scale).
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
from array import array
from types import TracebackType

__all__ = ["BYTES_PER_SECOND", "Monitor", "rms"]

SINK = "test"
BYTES_PER_SECOND = 44_100 * 2 * 2


def rms(raw: bytes) -> float:
    """The RMS amplitude of signed 16-bit samples, as a fraction of full scale."""
    samples = array("h")
    samples.frombytes(raw[: len(raw) - len(raw) % 2])
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768


class Monitor:
    """Records the null sink's monitor from `__enter__` to `__exit__`."""

    def __init__(self) -> None:
        self._audio = bytearray()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Monitor:
        self._process = subprocess.Popen(
            [
                "parec", "-d", f"{SINK}.monitor", "--raw", "--format=s16le", "--rate=44100",
                "--channels=2", "--latency-msec=10",
            ],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.span(0.0, 0.1)  # the recording has begun
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._process is not None and self._reader is not None
        self._process.terminate()
        self._process.wait(10)
        self._reader.join(10)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def span(self, wait: float, length: float) -> bytes:
        """What the sink played from `wait` seconds from now, for `length` seconds."""
        time.sleep(wait)
        start = self._size()
        wanted = int(length * BYTES_PER_SECOND) // 4 * 4
        deadline = time.monotonic() + length + 5.0
        while self._size() - start < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            return bytes(self._audio[start : start + wanted])

    def heard(self) -> bytes:
        """Everything recorded so far."""
        with self._lock:
            return bytes(self._audio)

    def wait_quiet(self, timeout: float = 10.0) -> None:
        """Wait until the sink has been silent for 0.3 s (earlier sounds have ended)."""
        deadline = time.monotonic() + timeout
        while rms(self.span(0.0, 0.3)) >= 0.001:
            assert time.monotonic() < deadline, "the sink never went quiet"

    def _size(self) -> int:
        with self._lock:
            return len(self._audio)

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stream = self._process.stdout
        while chunk := os.read(stream.fileno(), 4096):
            with self._lock:
                self._audio.extend(chunk)
