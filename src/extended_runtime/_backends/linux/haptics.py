"""Haptics: force-feedback rumble through evdev, and the terminal bell as the last resort.

Theory
------
A rumble pattern (`patterns.Buzz` steps) becomes one `FF_RUMBLE` effect per step that moves the
motors, each uploaded to the device with its start as the effect's replay *delay*, then all are
played at once (an `EV_FF` event per effect). The kernel times the whole pattern, so nothing here
waits or sleeps, and erasing the effects stops it at once. A device holds few effects (often 16):
if an upload is refused, what was uploaded still plays.

Devices are the input devices (`/dev/input/event*`) this process may write that report
`FF_RUMBLE`: game pads, phones' vibration motors. They are looked for at the first alert and
again whenever none is left (one was unplugged, or none was there). The `evdev` package is
imported only then; without it, or without such a device, the probe says so.

The terminal bell is the last resort: `BEL` written to the controlling terminal (`/dev/tty`)
when there is one. The alert backend rings it only when neither sound nor rumble reached the
user, so a process started from a terminal still makes the terminal beep or flash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from ...abc import Probe
from .patterns import Buzz

__all__ = ["Rumble", "RumbleDevice", "TerminalBell", "effects"]

log = logging.getLogger("extended_runtime.backends")

EV_FF = 0x15  # linux/input-event-codes.h
FF_RUMBLE = 0x50


class RumbleDevice(Protocol):
    """What the backend uses of an `evdev.InputDevice`."""

    path: str
    name: str

    def upload_effect(self, effect: Any) -> int: ...

    def erase_effect(self, ff_id: int) -> None: ...

    def write(self, etype: int, code: int, value: int) -> None: ...

    def close(self) -> None: ...


def effects(buzzes: Iterable[Buzz]) -> list[Any]:
    """The pattern as `evdev.ff.Effect` values: one `FF_RUMBLE` per step that moves a motor,
    delayed by the steps before it."""
    from evdev import ff

    found: list[Any] = []
    at = 0
    for buzz in buzzes:
        if buzz.strong or buzz.weak:
            rumble = ff.Rumble(_level(buzz.strong), _level(buzz.weak))
            found.append(
                ff.Effect(
                    FF_RUMBLE, -1, 0, ff.Trigger(0, 0), ff.Replay(buzz.ms, at),
                    ff.EffectType(ff_rumble_effect=rumble),
                )
            )  # fmt: skip
        at += buzz.ms
    return found


def _level(percent: int) -> int:
    return 0xFFFF * percent // 100


def input_devices(root: Path = Path("/dev/input")) -> list[RumbleDevice]:
    """The writable input devices that can rumble (evdev must be installed). Without an input
    folder there is nothing to find, and evdev (which loads asyncio) is not imported."""
    if not root.is_dir():
        return []
    import evdev

    found: list[RumbleDevice] = []
    for path in evdev.list_devices():
        try:
            device: Any = evdev.InputDevice(path)
        except OSError:
            continue
        if FF_RUMBLE in device.capabilities().get(EV_FF, []):
            found.append(device)
        else:
            device.close()
    return found


class Rumble:
    """Rumble patterns on every force-feedback device found."""

    name = "evdev-rumble"

    def __init__(self, find: Callable[[], list[RumbleDevice]] = input_devices) -> None:
        self._find = find
        self._lock = threading.Lock()
        self._devices: list[RumbleDevice] = []
        self._playing: dict[str, list[int]] = {}  # device path -> effect ids uploaded
        self._owner: str | None = None  # whose pattern the effects are

    def probe(self) -> Probe:
        try:
            with self._lock:
                devices = self._found()
        except ImportError:
            return Probe(self.name, False, "the evdev package is not installed")
        if not devices:
            if not Path("/dev/input").is_dir():
                return Probe(self.name, False, "no input devices: /dev/input is absent")
            return Probe(
                self.name,
                False,
                "no input device in /dev/input that this user may write has FF_RUMBLE",
            )
        names = ", ".join(f"{d.name} ({d.path})" for d in devices)
        return Probe(self.name, True, f"rumble on {names}")

    def play(self, key: str, buzzes: Iterable[Buzz]) -> bool:
        """Play the pattern on every device (replacing what plays); whether any device took it."""
        with self._lock:
            self._stop_all()
            self._owner = key
            devices = list(self._found())
            if not devices:  # nothing to rumble: evdev need not even be loaded
                return False
            pattern = effects(buzzes)
            played = [device for device in devices if self._play_on(device, pattern)]
        return bool(played)

    def stop(self, key: str) -> None:
        """Stop the pattern, if it is `key`'s."""
        with self._lock:
            if self._owner == key:
                self._stop_all()

    def _found(self) -> list[RumbleDevice]:
        if not self._devices:
            self._devices = self._find()
        return self._devices

    def _play_on(self, device: RumbleDevice, pattern: list[Any]) -> bool:
        ids = self._playing.setdefault(device.path, [])
        try:
            for effect in pattern:
                ids.append(device.upload_effect(effect))
        except OSError as error:  # no room for more effects, or the device went away
            if not ids:
                self._lost(device, error)
                return False
            log.debug("rumble on %s: %d effects uploaded, then %s", device.path, len(ids), error)
        try:
            for ff_id in ids:
                device.write(EV_FF, ff_id, 1)
        except OSError as error:
            self._lost(device, error)
            return False
        return bool(ids)

    def close(self) -> None:
        """Stop every effect and close the devices."""
        self._stop_all()
        for device in list(self._devices):
            with contextlib.suppress(OSError):
                device.close()
        self._devices.clear()

    def _stop_all(self) -> None:
        for device in list(self._devices):
            try:
                for ff_id in self._playing.pop(device.path, []):
                    device.erase_effect(ff_id)
            except OSError as error:
                self._lost(device, error)
        self._owner = None

    def _lost(self, device: RumbleDevice, error: OSError) -> None:
        log.info("rumble device %s is gone (%s)", device.path, error)
        self._playing.pop(device.path, None)
        self._devices.remove(device)
        with contextlib.suppress(OSError):
            device.close()


class TerminalBell:
    """`BEL` to the controlling terminal."""

    name = "terminal-bell"

    def __init__(self, tty: str = "/dev/tty") -> None:
        self.tty = tty

    def probe(self) -> Probe:
        try:
            fd = self._open()
        except OSError as error:
            return Probe(self.name, False, f"no controlling terminal: {error.strerror}")
        try:
            where = os.ttyname(fd)
        finally:
            os.close(fd)
        return Probe(self.name, True, f"the bell of {where}")

    def ring(self) -> None:
        """Ring once; `OSError` when there is no terminal."""
        fd = self._open()
        try:
            os.write(fd, b"\a")
        finally:
            os.close(fd)

    def _open(self) -> int:
        return os.open(self.tty, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
