"""Policy as data: every number the rules depend on, in one frozen value.

Apple documents the time limits per session type and the 36-hour horizon; `DESIGN.md` fixes the
rest where Apple is silent (the 60 s will-expire lead, the 60 s tolerance for a start date in the
past, the alert interval bounds, the CPU budgets, the relaunch delegate deadline, the three silent
alarms rule). A host takes a `Policy`; tests and benchmarks shrink the limits with
`Policy.with_limits(...)` instead of patching anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import MappingProxyType

from .enums import FRONTMOST_TYPES, SessionType
from .limits import DEFAULT_LIMITS

__all__ = ["DEFAULT_LIMITS", "Policy"]

_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of the session rules. All durations are `timedelta`s; CPU is in cores."""

    limits: Mapping[SessionType, timedelta | None] = field(default_factory=lambda: DEFAULT_LIMITS)
    #: `will_expire` comes this long before `expiration_date`.
    will_expire_lead: timedelta = timedelta(seconds=60)
    #: `start_at` accepts dates up to this far ahead (inclusive).
    schedule_horizon: timedelta = timedelta(hours=36)
    #: `start_at` accepts dates up to this far in the past (inclusive) and starts at once.
    past_tolerance: timedelta = timedelta(seconds=60)
    #: Seconds between alerts when `notify_user` has no repeat handler, and for the host's alert.
    alert_interval_default: float = 3.0
    #: A repeat handler's interval below this is raised to it, so an alarm cannot flood.
    alert_interval_min: float = 1.0
    #: A repeat handler's interval above this is clamped to it.
    alert_interval_max: float = 60.0
    #: Average cores over `cpu_window` above which a session ends (frontmost / background
    #: types); `math.inf` means no budget, and such sessions are not metered at all.
    cpu_budget_frontmost: float = 1.0
    cpu_budget_background: float = 0.5
    cpu_window: timedelta = timedelta(seconds=60)
    cpu_sample_interval: timedelta = timedelta(seconds=5)
    #: After the host launches an app into a session, the app must set a delegate within this.
    relaunch_delegate_timeout: timedelta = timedelta(seconds=10)
    #: A running alarm is launched into at most this many times (its app exits each time):
    #: after that the host rings it itself, so an app that crashes at once is not restarted
    #: without end.
    max_launches: int = 3
    #: This many alarm sessions in a row that ended without alerting disable the app's alarms.
    silent_alarm_limit: int = 3
    #: Battery percentage at or under which power suppression applies (when not charging).
    battery_low_percent: float = 20.0
    #: Whether a submersion sensor backend is installed (underwater-depth sessions can start).
    underwater_supported: bool = False

    def __post_init__(self) -> None:
        missing = [t.value for t in SessionType if t not in self.limits]
        if missing:
            raise ValueError(f"policy limits lack a value for: {', '.join(missing)}")
        short = [
            t.value for t, limit in self.limits.items() if limit is not None and limit <= _ZERO
        ]
        if short:
            raise ValueError(f"policy limits must be positive: {', '.join(short)}")
        for name in ("will_expire_lead", "schedule_horizon", "past_tolerance"):
            if getattr(self, name) < _ZERO:
                raise ValueError(f"policy {name} must not be negative")
        intervals = (self.alert_interval_min, self.alert_interval_default, self.alert_interval_max)
        if not 0 < intervals[0] <= intervals[1] <= intervals[2]:
            raise ValueError(
                "alert intervals must be positive with "
                "alert_interval_min <= alert_interval_default <= alert_interval_max"
            )
        for name in ("cpu_budget_frontmost", "cpu_budget_background"):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise ValueError(f"policy {name} must be a positive number of cores (inf: none)")
        if self.cpu_sample_interval <= timedelta(0) or self.cpu_window <= timedelta(0):
            raise ValueError("cpu_window and cpu_sample_interval must be positive")
        if self.max_launches < 1:
            raise ValueError("max_launches must be at least 1")
        if self.silent_alarm_limit < 1:
            raise ValueError("silent_alarm_limit must be at least 1")
        object.__setattr__(self, "limits", MappingProxyType(dict(self.limits)))

    def limit(self, session_type: SessionType) -> timedelta | None:
        """The time limit of a session type (`None`: no limit)."""
        return self.limits[session_type]

    def cpu_budget(self, session_type: SessionType) -> float:
        """The average number of cores a session of this type may use."""
        if session_type in FRONTMOST_TYPES:
            return self.cpu_budget_frontmost
        return self.cpu_budget_background

    def with_limits(self, **seconds: float) -> Policy:
        """A copy with some limits replaced, by type name: `with_limits(self_care=5)`."""
        limits = dict(self.limits)
        for name, value in seconds.items():
            limits[SessionType[name.upper()]] = timedelta(seconds=value)
        return replace(self, limits=limits)
