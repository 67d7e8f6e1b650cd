"""The daemon's configuration: the user's limits and budgets, from one TOML file.

The file is `config.toml` in the user's config folder (`paths.config_path`, overridable with
`XRS_CONFIG`); without it the daemon runs on the default `Policy`. Every key is optional:

    will-expire-lead = 60        # seconds before expiry that will_expire comes
    silent-alarm-limit = 3       # silent alarms in a row that disable an app's alarms
    max-launches = 3             # launches into one alarm of an app that keeps exiting
    battery-low-percent = 20     # at or under it (not charging), power suppression applies

    [limits]                     # seconds per session type, at most Apple's limit
    self-care = 300
    mindfulness = 1800

    [budgets]                    # average cores over 60 s, or "none"
    frontmost = 1.0              # self care, mindfulness
    background = 0.5             # physical therapy, smart alarm

A file that cannot be read, is not TOML, has a key this version does not know or a value of the
wrong kind or range is refused with `ConfigError`, which names the file and the key and says
what is allowed: the daemon does not start on a configuration it would misread.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from .._core.enums import SessionType
from .._core.policy import DEFAULT_LIMITS, Policy

__all__ = ["ConfigError", "load_policy"]

_TOP = {
    "will-expire-lead",
    "silent-alarm-limit",
    "max-launches",
    "battery-low-percent",
    "limits",
    "budgets",
}
_BUDGETS = {"frontmost", "background"}
_TYPES = {kind.value: kind for kind in SessionType if DEFAULT_LIMITS[kind] is not None}


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and what to change."""


def load_policy(path: Path) -> Policy:
    """The policy `path` describes (the default one when there is no such file)."""
    if not path.exists():
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    return _policy(path, data)


def _policy(path: Path, data: dict[str, Any]) -> Policy:
    _known(path, "", data, _TOP)
    policy = Policy()
    if "will-expire-lead" in data:
        lead = _number(path, "will-expire-lead", data["will-expire-lead"], low=0)
        policy = replace(policy, will_expire_lead=timedelta(seconds=lead))
    if "silent-alarm-limit" in data:
        policy = replace(policy, silent_alarm_limit=_count(path, data, "silent-alarm-limit"))
    if "max-launches" in data:
        policy = replace(policy, max_launches=_count(path, data, "max-launches"))
    if "battery-low-percent" in data:
        percent = _number(path, "battery-low-percent", data["battery-low-percent"], low=0)
        if percent > 100:
            raise ConfigError(f"{path}: battery-low-percent must be between 0 and 100")
        policy = replace(policy, battery_low_percent=percent)
    policy = _limits(path, policy, _table(path, data, "limits"))
    return _budgets(path, policy, _table(path, data, "budgets"))


def _limits(path: Path, policy: Policy, table: dict[str, Any]) -> Policy:
    _known(path, "limits.", table, set(_TYPES))
    limits = dict(policy.limits)
    for name, value in table.items():
        kind = _TYPES[name]
        most = DEFAULT_LIMITS[kind]
        assert most is not None
        seconds = _number(path, f"limits.{name}", value, low=0, open_low=True)
        if seconds > most.total_seconds():
            raise ConfigError(
                f"{path}: limits.{name} = {value} is above the type's limit "
                f"({most.total_seconds():g} s): a session may be shortened, not lengthened"
            )
        limits[kind] = timedelta(seconds=seconds)
    return replace(policy, limits=limits)


def _budgets(path: Path, policy: Policy, table: dict[str, Any]) -> Policy:
    _known(path, "budgets.", table, _BUDGETS)
    for name, value in table.items():
        if isinstance(value, str) and value.strip().lower() == "none":
            cores = math.inf
        else:
            cores = _number(path, f"budgets.{name}", value, low=0, open_low=True)
        if name == "frontmost":
            policy = replace(policy, cpu_budget_frontmost=cores)
        else:
            policy = replace(policy, cpu_budget_background=cores)
    return policy


def _count(path: Path, data: dict[str, Any], key: str) -> int:
    value = data[key]
    if type(value) is not int or value < 1:
        raise ConfigError(f"{path}: {key} must be a whole number, at least 1")
    return value


def _table(path: Path, data: dict[str, Any], name: str) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name} must be a table ([{name}])")
    return table


def _known(path: Path, prefix: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(prefix + key for key in unknown)}; allowed: "
            f"{', '.join(prefix + key for key in sorted(allowed))}"
        )


def _number(path: Path, key: str, value: object, *, low: float, open_low: bool = False) -> float:
    """A finite number, at least `low` (above it, with `open_low`)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{path}: {key} must be a number, not {value!r}")
    if value < low or (open_low and value == low):
        above = "above" if open_low else "at least"
        raise ConfigError(f"{path}: {key} must be {above} {low:g}, not {value!r}")
    return float(value)
