"""Power saving, as UPower and power-profiles-daemon tell it.

Theory
------
DESIGN.md: power-saver mode, or a battery at or under the policy's threshold while not charging,
suppresses the frontmost types and physical therapy (never an alarm). Two services on the system
bus know these, and each source here reports its own part of the conditions:

* `PowerProfiles` follows power-profiles-daemon's `ActiveProfile` (`net.hadess.PowerProfiles`):
  `power_saver` is whether it is "power-saver";
* `UPowerBattery` follows UPower: `OnBattery` on the daemon, and the *display device* (UPower's
  one summary of every battery, always at `/org/freedesktop/UPower/devices/DisplayDevice`:
  `IsPresent`, `Percentage`, `State`). `battery_percent` is the
  percentage when a battery is present (else `None`: no rule applies), and `charging` is
  whether the machine is on mains power or the battery charges.

Both subscribe to `PropertiesChanged`, read the current values and report them before `watch`
returns, then follow the signals (on their worker thread, `watch.Watch`), which carry the new
values; a property only invalidated is read again on the worker.
The service's bus name is a parameter, so a test can run a stand-in UPower (no battery exists on
a test machine) on a bus of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, ClassVar

from jeepney import Message

from ...abc import ConditionsChange, Probe, SuppressionSource
from .dbus import Bus, BusUnavailable, CallFailed
from .watch import Watch, Watching, changed_values, get_all, get_property, properties_changed

__all__ = ["Battery", "PowerProfiles", "UPowerBattery"]

log = logging.getLogger("extended_runtime.backends")

_FAILURES = (BusUnavailable, CallFailed, TimeoutError)

_PROFILES = ("net.hadess.PowerProfiles", "/net/hadess/PowerProfiles", "net.hadess.PowerProfiles")
_POWER_SAVER = "power-saver"

_UPOWER_PATH = "/org/freedesktop/UPower"
_UPOWER = "org.freedesktop.UPower"
_DEVICE = "org.freedesktop.UPower.Device"
_DISPLAY_DEVICE = "/org/freedesktop/UPower/devices/DisplayDevice"
#: UPower's device state of a battery that charges.
_CHARGING = 1


class PowerProfiles(Watching, SuppressionSource):
    """`power_saver` from power-profiles-daemon's active profile."""

    name = "power-profiles"
    #: It takes a share of the survey's system bus connection (`bus`).
    system_bus: ClassVar[bool] = True

    def __init__(self, bus: Bus | None = None) -> None:
        self._watch = Watch(bus, "xrs-power-profiles")

    def probe(self) -> Probe:
        try:
            profile = self._profile()
        except _FAILURES as error:
            return Probe(self.name, False, f"power-profiles-daemon cannot be asked: {error}")
        return Probe(self.name, True, f"power-profiles-daemon (the profile is {profile!r})")

    def watch(self, callback: Callable[[ConditionsChange], None]) -> None:
        """Subscribe, report the profile now, then start the worker (signals queue until
        then)."""
        rule = properties_changed(_PROFILES[1], _PROFILES[2])
        try:
            self._watch.subscribe(rule, partial(self._on_changed, callback))
            profile = self._profile()
        except _FAILURES as error:
            log.warning("power-profiles-daemon did not say its profile: %s", error)
            profile = ""
        callback(_power_saver(profile))
        self._watch.start()

    def _on_changed(self, callback: Callable[[ConditionsChange], None], message: Message) -> None:
        values, invalidated = changed_values(message)
        if "ActiveProfile" in values:
            self._watch.submit(partial(callback, _power_saver(values["ActiveProfile"])))
        elif "ActiveProfile" in invalidated:
            self._watch.submit(lambda: callback(_power_saver(self._profile())))

    def _profile(self) -> str:
        (value,) = self._watch.bus.call(get_property(*_PROFILES, "ActiveProfile"))
        return str(value[1])


@dataclass(frozen=True, slots=True)
class Battery:
    """What UPower says of the machine's power."""

    on_battery: bool = False
    present: bool = False
    percent: float = 0.0
    state: int = 0

    #: UPower's property names, by field.
    NAMES = (("OnBattery", "on_battery"), ("IsPresent", "present"), ("Percentage", "percent"))

    def updated(self, values: dict[str, Any]) -> Battery:
        """This state with the properties in `values` (UPower's names) changed."""
        changes: dict[str, Any] = {
            field: values[name] for name, field in self.NAMES if name in values
        }
        if "State" in values:
            changes["state"] = int(values["State"])
        return replace(self, **changes) if changes else self

    @property
    def charging(self) -> bool:
        """Whether the battery is not being drained: on mains power, or charging."""
        return not self.on_battery or self.state == _CHARGING

    def change(self) -> ConditionsChange:
        """The conditions' battery part."""
        percent = float(self.percent) if self.present else None
        return partial(replace, battery_percent=percent, charging=self.charging)

    def describe(self) -> str:
        power = "on battery" if self.on_battery else "on mains power"
        if not self.present:
            return f"{power}, no battery present"
        return f"{power}, battery at {self.percent:g} %" + (", charging" if self.charging else "")


class UPowerBattery(Watching, SuppressionSource):
    """`battery_percent` and `charging` from UPower (`service`: its bus name)."""

    name = "upower"
    #: It takes a share of the survey's system bus connection (`bus`).
    system_bus: ClassVar[bool] = True

    def __init__(self, bus: Bus | None = None, service: str = _UPOWER) -> None:
        self._watch = Watch(bus, "xrs-upower")
        self._service = service
        self._lock = threading.Lock()
        self.battery = Battery()

    def probe(self) -> Probe:
        try:
            (value,) = self._watch.bus.call(
                get_property(self._service, _UPOWER_PATH, _UPOWER, "OnBattery")
            )
        except _FAILURES as error:
            return Probe(self.name, False, f"UPower cannot be asked: {error}")
        power = "on battery" if value[1] else "on mains power"
        return Probe(self.name, True, f"UPower (the machine is {power})")

    def watch(self, callback: Callable[[ConditionsChange], None]) -> None:
        """Subscribe, report the battery now, then start the worker (signals queue until
        then)."""
        handler = partial(self._on_changed, callback)
        try:
            self._watch.subscribe(properties_changed(_UPOWER_PATH, _UPOWER), handler)
            self._watch.subscribe(properties_changed(_DISPLAY_DEVICE, _DEVICE), handler)
            self._set(self._read())
        except _FAILURES as error:
            log.warning("UPower did not say the battery's state: %s", error)
        callback(self.battery.change())
        self._watch.start()

    def _on_changed(self, callback: Callable[[ConditionsChange], None], message: Message) -> None:
        values, invalidated = changed_values(message)
        with self._lock:
            self.battery = battery = self.battery.updated(values)
        if invalidated:
            self._watch.submit(lambda: callback(self._set(self._read()).change()))
        elif values:
            self._watch.submit(partial(callback, battery.change()))

    def _set(self, battery: Battery) -> Battery:
        with self._lock:
            self.battery = battery
        return battery

    def _read(self) -> Battery:
        bus, service = self._watch.bus, self._service
        (on_battery,) = bus.call(get_property(service, _UPOWER_PATH, _UPOWER, "OnBattery"))
        (display,) = bus.call(get_all(service, _DISPLAY_DEVICE, _DEVICE))
        values = {name: value for name, (_, value) in display.items()}
        return Battery().updated({**values, "OnBattery": on_battery[1]})


def _power_saver(profile: str) -> ConditionsChange:
    return partial(replace, power_saver=profile == _POWER_SAVER)
