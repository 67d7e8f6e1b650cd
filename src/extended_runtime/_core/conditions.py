"""System conditions that suppress sessions (`InvalidationReason.SUPPRESSED_BY_SYSTEM`).

Apple does not say what suppresses a session; DESIGN.md decides:

* the system preparing to shut down, or the user pausing all sessions (`xrs pause`), suppresses
  every type;
* power-saver mode, or a battery at or under the policy threshold while not charging, suppresses
  the frontmost types and physical therapy only. An alarm is never suppressed by power saving:
  waking the user matters more than the battery.

Hosts observe these (logind's PrepareForShutdown, the power profile, the battery) and hand the
engine a new `Conditions` value whenever one changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .enums import SessionType

__all__ = ["Conditions"]


@dataclass(frozen=True, slots=True)
class Conditions:
    """What the host knows of the system's state."""

    paused: bool = False
    shutting_down: bool = False
    power_saver: bool = False
    battery_percent: float | None = None
    charging: bool = True

    def battery_low(self, threshold: float) -> bool:
        """Whether the battery is at or under `threshold` percent and not charging."""
        return (
            self.battery_percent is not None
            and not self.charging
            and self.battery_percent <= threshold
        )

    def suppresses(self, session_type: SessionType, battery_threshold: float) -> bool:
        """Whether a session of `session_type` may not run under these conditions."""
        if self.paused or self.shutting_down:
            return True
        if session_type is SessionType.SMART_ALARM:
            return False
        return self.power_saver or self.battery_low(battery_threshold)
