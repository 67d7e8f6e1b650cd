"""Events as plain data: what the daemon sends to its clients and what the audit log keeps.

Theory
------
The engine's events are frozen `Value`s whose fields are typed with a handful of kinds: strings,
numbers, flags, aware UTC instants, durations, the package's enums and, in one case
(`SessionHandedOver.missed`), a tuple of further session events. `encode_event` turns an event
into a dict of builtins (`"kind"` names its class; instants are ISO 8601 strings, durations ISO
8601 durations, enums their raw values), which JSON and MessagePack carry alike.

`decode_event` is the strict inverse, for data that may come from another process or an old
file: the kind must name a known event class, every field without a default must be there, no
unknown field may be, and each value is converted to its declared type (`msgspec.convert`,
which checks as it converts), so a wrong type fails here with `ValueError` rather than later
inside the engine or an app's delegate. The declared types are read once per class, from its
annotations, so nothing is written twice.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from functools import cache
from typing import Any

import msgspec

from . import events as _events
from .clock import as_utc
from .events import Event, SessionEvent

__all__ = ["EVENT_KINDS", "decode_event", "encode_event"]

#: Every event class by name: the kinds a decoder accepts.
EVENT_KINDS: dict[str, type[Event]] = {
    name: cls
    for name in _events.__all__
    if isinstance(cls := getattr(_events, name), type)
    and issubclass(cls, Event)
    and cls not in (Event, _events.AppEvent, SessionEvent)
}

#: How deep handed-over sessions may nest their missed events (one level is all that occurs).
_MAX_DEPTH = 2


def encode_event(event: Event) -> dict[str, Any]:
    """`event` as builtins, with its class name under `"kind"`."""
    data: dict[str, Any] = {"kind": type(event).__name__}
    for name in type(event).__fields__:
        value = getattr(event, name)
        if name == "missed":
            data[name] = [encode_event(missed) for missed in value]
        else:
            data[name] = msgspec.to_builtins(value)
    return data


def decode_event(data: object, *, _depth: int = 0) -> Event:
    """The event `data` encodes; `ValueError` saying what is wrong if it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"an event is a mapping, not {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    cls = EVENT_KINDS[kind]
    hints = _hints(cls)
    unknown = set(data) - set(hints) - {"kind"}
    if unknown:
        raise ValueError(f"{kind}: unknown fields {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, hint in hints.items():
        if name not in data:
            if name in cls.__defaults__:
                continue
            raise ValueError(f"{kind}: field {name!r} is missing")
        values[name] = _field(kind, name, hint, data[name], _depth)
    return cls(**values)


def _field(kind: str, name: str, hint: object, raw: object, depth: int) -> object:
    if name == "missed":
        if depth >= _MAX_DEPTH or not isinstance(raw, list):
            raise ValueError(f"{kind}: {name} must be a list of session events")
        missed = tuple(decode_event(item, _depth=depth + 1) for item in raw)
        if not all(isinstance(item, SessionEvent) for item in missed):
            raise ValueError(f"{kind}: {name} holds an event that is not a session event")
        return missed
    try:
        value = msgspec.convert(raw, hint)
    except msgspec.ValidationError as error:
        raise ValueError(f"{kind}.{name}: {error}") from None
    if isinstance(value, datetime):
        try:
            value = as_utc(value, f"{kind}.{name}")
        except (TypeError, ValueError) as error:
            raise ValueError(str(error)) from None
    return value


@cache
def _hints(cls: type[Event]) -> dict[str, object]:
    """The declared type of each field of `cls`, in field order."""
    declared: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        declared.update(inspect.get_annotations(klass))
    namespace = vars(_events)
    return {
        name: eval(hint, namespace) if isinstance(hint, str) else hint
        for name, hint in ((name, declared[name]) for name in cls.__fields__)
    }
