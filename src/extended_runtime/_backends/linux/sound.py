"""Sound through the sound server: the freedesktop theme via libcanberra, else generated tones.

Theory
------
Two players, both C libraries loaded with ctypes when first used, so neither GTK nor a Python
binding is needed and `import extended_runtime` loads none of it:

* `ThemeSound` plays an event id of the freedesktop sound theme (`alarm-clock-elapsed`,
  `message-new-instant`, ...) through libcanberra, which finds the theme's file, decodes it and
  streams it to PulseAudio (or PipeWire's PulseAudio server, or ALSA). Every call has declared
  argument types: properties go in a `ca_proplist` and the sound starts with
  `ca_context_play_full` (what the variadic `ca_context_play` wraps), so no variadic call goes
  through ctypes. Each playback carries an id per key (a session), so `stop(key)` cancels it at
  once (`ca_context_cancel`): a 6.5 s alarm sound never outlives its session. Sounds are not
  cached in the server (cache-control `never`), because a cached sample cannot be cancelled.
  A context whose server went away is dropped and made again at the next play.
* `ToneSound` plays the package's own tones (`patterns.pcm`) through libpulse-simple, when no
  theme or no libcanberra is here. In-process rather than `paplay`: no process per alert, no
  file on disk, and it stops within one write. The stream is opened in the caller (a
  few milliseconds, so a dead server is reported at once); a short-lived thread then writes 20 ms
  at a time into a 80 ms server buffer, so writing paces itself at real time, and a `stop(key)`
  is heard within about 100 ms (the thread flushes the buffer and closes the stream).

Both raise `SoundFailed` with the library's own words when they cannot play; the alert backend
logs it and goes on.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...abc import Probe
from ..threads import start_thread
from .patterns import RATE

__all__ = ["SoundFailed", "ThemeSound", "ToneSound", "theme_folder"]

#: libcanberra's "File or data not found": the theme has no such event id.
CA_ERROR_NOTFOUND = -9


class SoundFailed(RuntimeError):
    """A sound could not be played; the message says why, in the sound library's words."""


def _library(name: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(name)
    except OSError as error:
        raise SoundFailed(f"{name} is not installed ({error})") from error


def theme_folder(theme: str = "freedesktop") -> Path | None:
    """Where the sound theme is installed (XDG data folders), or `None`."""
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    data = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    for folder in [home, *data.split(":")]:
        place = Path(folder) / "sounds" / theme
        if (place / "index.theme").is_file():
            return place
    return None


# ---------------------------------------------------------------------- libcanberra


class _Canberra:
    """libcanberra's functions, with their argument types declared."""

    def __init__(self) -> None:
        lib = _library("libcanberra.so.0")
        p, u32, s = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p
        ptr = ctypes.POINTER(ctypes.c_void_p)
        self.create = _declare(lib.ca_context_create, ptr)
        self.destroy = _declare(lib.ca_context_destroy, p)
        self.change_props = _declare(lib.ca_context_change_props_full, p, p)
        self.open = _declare(lib.ca_context_open, p)
        self.play = _declare(lib.ca_context_play_full, p, u32, p, p, p)
        self.cancel = _declare(lib.ca_context_cancel, p, u32)
        self.proplist_create = _declare(lib.ca_proplist_create, ptr)
        self.proplist_sets = _declare(lib.ca_proplist_sets, p, s, s)
        self.proplist_destroy = _declare(lib.ca_proplist_destroy, p)
        lib.ca_strerror.restype = ctypes.c_char_p
        lib.ca_strerror.argtypes = [ctypes.c_int]
        self._strerror = lib.ca_strerror

    def strerror(self, code: int) -> str:
        text: bytes | None = self._strerror(code)
        return (text or b"unknown error").decode()

    def props(self, values: dict[str, str]) -> ctypes.c_void_p:
        """A new property list (libcanberra's keys, such as `event.id`); the caller destroys it."""
        proplist = ctypes.c_void_p()
        self.check(self.proplist_create(ctypes.byref(proplist)), "ca_proplist_create")
        for key, value in values.items():
            self.check(self.proplist_sets(proplist, key.encode(), value.encode()), key)
        return proplist

    def check(self, code: int, what: str) -> None:
        if code < 0:
            raise SoundFailed(f"{what}: {self.strerror(code)}")


def _declare(function: Any, *argtypes: Any) -> Callable[..., int]:
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    call: Callable[..., int] = function
    return call


class ThemeSound:
    """Event sounds of the freedesktop sound theme, through libcanberra."""

    name = "libcanberra"

    def __init__(self, theme: str = "freedesktop") -> None:
        self.theme = theme
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._ca: _Canberra | None = None
        self._context: ctypes.c_void_p | None = None
        self._ids: dict[str, int] = {}
        self._next_id = itertools.count(1)

    def probe(self) -> Probe:
        folder = theme_folder(self.theme)
        if folder is None:
            return Probe(self.name, False, f"no {self.theme} sound theme is installed")
        try:
            ca = self._loaded()
            ca.destroy(self._open(ca))  # a context of its own: the one in use may be stale
        except SoundFailed as error:
            return Probe(self.name, False, str(error))
        return Probe(self.name, True, f"the {self.theme} sound theme in {folder}")

    def play(self, key: str, event_id: str, description: str) -> None:
        """Play `event_id` now, replacing what still plays for `key`."""
        with self._lock:
            fresh = self._context is None
            code = self._play(key, event_id, description)
            if code < 0 and code != CA_ERROR_NOTFOUND and not fresh:
                self._drop()  # the server went away since: once more on a new context
                code = self._play(key, event_id, description)
            if code < 0:
                self._ids.pop(key, None)
                if code != CA_ERROR_NOTFOUND:
                    self._drop()
                raise SoundFailed(f"{event_id}: {self._loaded().strerror(code)}")

    def _play(self, key: str, event_id: str, description: str) -> int:
        """Start the sound on the context (made if needed); libcanberra's result code."""
        context = self._connected()
        ca = self._loaded()
        sound = self._ids.pop(key, None)
        if sound is not None:
            ca.cancel(context, sound)
        sound = self._ids[key] = next(self._next_id)
        props = ca.props(
            {
                "event.id": event_id,
                "event.description": description,
                "canberra.cache-control": "never",
                "canberra.xdg-theme.name": self.theme,
            }
        )
        try:
            return ca.play(context, sound, props, None, None)
        finally:
            ca.proplist_destroy(props)

    def stop(self, key: str) -> None:
        """Cancel what plays for `key` (nothing if nothing does)."""
        with self._lock:
            sound = self._ids.pop(key, None)
            if sound is not None and self._context is not None:
                self._loaded().cancel(self._context, sound)

    def _loaded(self) -> _Canberra:
        with self._loading:
            if self._ca is None:
                self._ca = _Canberra()
            return self._ca

    def _connected(self) -> ctypes.c_void_p:
        """The context, created and opened (connected to the sound server) on first use."""
        if self._context is None:
            self._context = self._open(self._loaded())
        return self._context

    @staticmethod
    def _open(ca: _Canberra) -> ctypes.c_void_p:
        """A new context, connected to the sound server."""
        context = ctypes.c_void_p()
        ca.check(ca.create(ctypes.byref(context)), "ca_context_create")
        props = ca.props({"application.name": "extended-runtime"})
        try:
            ca.check(ca.change_props(context, props), "ca_context_change_props")
            ca.check(ca.open(context), "cannot reach the sound server (ca_context_open)")
        except SoundFailed:
            ca.destroy(context)
            raise
        finally:
            ca.proplist_destroy(props)
        return context

    def close(self) -> None:
        """Let go of the sound server (sounds still playing stop)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        context, self._context = self._context, None
        self._ids.clear()
        if context is not None and self._ca is not None:
            self._ca.destroy(context)


# ---------------------------------------------------------------------- libpulse-simple

_PA_STREAM_PLAYBACK = 1
_PA_SAMPLE_S16LE = 3
_DEFAULT = 0xFFFFFFFF  # (uint32_t) -1: the server's choice
#: Bytes per second of the tones (mono, 16-bit).
_BYTE_RATE = RATE * 2
#: The server-side buffer (how far writing runs ahead of what is heard) and one write.
_BUFFER = _BYTE_RATE * 80 // 1000
_CHUNK = _BYTE_RATE * 20 // 1000


class _SampleSpec(ctypes.Structure):
    _fields_ = (("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8))


class _BufferAttr(ctypes.Structure):
    _fields_ = tuple(
        (name, ctypes.c_uint32) for name in ("maxlength", "tlength", "prebuf", "minreq", "fragsize")
    )


class _PulseSimple:
    """libpulse-simple's functions, with their argument types declared."""

    def __init__(self) -> None:
        lib = _library("libpulse-simple.so.0")
        pulse = _library("libpulse.so.0")
        p, err, s = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_char_p
        lib.pa_simple_new.restype = ctypes.c_void_p
        lib.pa_simple_new.argtypes = [
            s, s, ctypes.c_int, s, s, ctypes.POINTER(_SampleSpec), p,
            ctypes.POINTER(_BufferAttr), err,
        ]  # fmt: skip
        self.new = lib.pa_simple_new
        self.write = _declare(lib.pa_simple_write, p, p, ctypes.c_size_t, err)
        self.drain = _declare(lib.pa_simple_drain, p, err)
        self.flush = _declare(lib.pa_simple_flush, p, err)
        lib.pa_simple_free.argtypes = [p]
        lib.pa_simple_free.restype = None
        self.free = lib.pa_simple_free
        pulse.pa_strerror.restype = ctypes.c_char_p
        pulse.pa_strerror.argtypes = [ctypes.c_int]
        self._strerror = pulse.pa_strerror

    def strerror(self, code: int) -> str:
        text: bytes | None = self._strerror(code)
        return (text or b"unknown error").decode()

    def open(self, stream_name: str) -> int:
        """A new playback stream of mono 16-bit tones, or `SoundFailed`."""
        spec = _SampleSpec(_PA_SAMPLE_S16LE, RATE, 1)
        attr = _BufferAttr(_DEFAULT, _BUFFER, _DEFAULT, _DEFAULT, _DEFAULT)
        error = ctypes.c_int()
        stream: int | None = self.new(
            None, b"extended-runtime", _PA_STREAM_PLAYBACK, None, stream_name.encode(),
            ctypes.byref(spec), None, ctypes.byref(attr), ctypes.byref(error),
        )  # fmt: skip
        if not stream:
            raise SoundFailed(f"cannot reach the sound server: {self.strerror(error.value)}")
        return stream


class ToneSound:
    """The package's generated tones, through libpulse-simple."""

    name = "libpulse-simple"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pulse: _PulseSimple | None = None
        self._playing: dict[str, threading.Event] = {}

    def probe(self) -> Probe:
        try:
            pulse = self._loaded()
            pulse.free(pulse.open("probe"))
        except SoundFailed as error:
            return Probe(self.name, False, str(error))
        return Probe(self.name, True, "generated tones through the PulseAudio server")

    def play(self, key: str, samples: bytes, description: str) -> None:
        """Start playing `samples` (the format of `patterns.pcm`), replacing `key`'s sound."""
        self.stop(key)
        pulse = self._loaded()
        stream = pulse.open(description)
        cancelled = threading.Event()
        with self._lock:
            self._playing[key] = cancelled
        start_thread(self._write, name="xrs-tones", args=(pulse, stream, samples, key, cancelled))

    def stop(self, key: str) -> None:
        """Silence `key`'s sound within one write (nothing if none plays)."""
        with self._lock:
            cancelled = self._playing.pop(key, None)
        if cancelled is not None:
            cancelled.set()

    def close(self) -> None:
        """Silence every pattern still playing."""
        with self._lock:
            playing, self._playing = self._playing, {}
        for cancelled in playing.values():
            cancelled.set()

    def playing(self) -> int:
        """How many tone patterns play now."""
        with self._lock:
            return len(self._playing)

    def _loaded(self) -> _PulseSimple:
        with self._lock:
            if self._pulse is None:
                self._pulse = _PulseSimple()
            return self._pulse

    def _write(
        self,
        pulse: _PulseSimple,
        stream: int,
        samples: bytes,
        key: str,
        cancelled: threading.Event,
    ) -> None:
        """Write the samples at the pace they are heard; flush at once when cancelled."""
        error = ctypes.c_int()
        try:
            for start in range(0, len(samples), _CHUNK):
                if cancelled.is_set():
                    pulse.flush(stream, ctypes.byref(error))
                    return
                chunk = samples[start : start + _CHUNK]
                if pulse.write(stream, chunk, len(chunk), ctypes.byref(error)) < 0:
                    return  # the server went away; the next play reports it
            pulse.drain(stream, ctypes.byref(error))
        finally:
            pulse.free(stream)
            with self._lock:
                if self._playing.get(key) is cancelled:
                    del self._playing[key]
