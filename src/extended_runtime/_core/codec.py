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
unknown field may be, and each value is converted to its declared type, so a wrong type fails
here with `ValueError` rather than later inside the engine or an app's delegate. The declared
types are read once per class, from its annotations, so nothing is written twice, and made into
a msgspec struct of the same fields (`_shape`), which checks and converts a whole event in one
call in C (a quarter of the time of a call per field): every client decodes each event its
daemon pushes, on every round trip.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, get_args

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
#: The one field that holds further events (`SessionHandedOver.missed`).
_NESTED = "missed"


def encode_event(event: Event) -> dict[str, Any]:
    """`event` as builtins, with its class name under `"kind"`."""
    data: dict[str, Any] = {"kind": type(event).__name__}
    for name in type(event).__fields__:
        value = getattr(event, name)
        if name == _NESTED:
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
    shape = _shape(cls)
    try:
        decoded = msgspec.convert(data, shape.struct)
    except msgspec.ValidationError as error:
        raise ValueError(f"{kind}: {error}") from None
    values = dict(zip(cls.__fields__, msgspec.structs.astuple(decoded), strict=True))
    for name in shape.instants:
        if values[name] is not None:
            try:
                values[name] = as_utc(values[name], f"{kind}.{name}")
            except (TypeError, ValueError) as error:
                raise ValueError(str(error)) from None
    if shape.nested:
        values[_NESTED] = _missed(kind, values[_NESTED], _depth)
    return cls(**values)


def _missed(kind: str, raw: list[Any], depth: int) -> tuple[SessionEvent, ...]:
    """The session events a handed-over session carries, decoded one level down."""
    if depth >= _MAX_DEPTH:
        raise ValueError(f"{kind}: {_NESTED} nests deeper than a handed-over session does")
    missed = tuple(decode_event(item, _depth=depth + 1) for item in raw)
    if not all(isinstance(item, SessionEvent) for item in missed):
        raise ValueError(f"{kind}: {_NESTED} holds an event that is not a session event")
    return missed  # type: ignore[return-value]


class _Shape(NamedTuple):
    """How one event class is read: a msgspec struct of its fields (tagged by its kind, no
    unknown field allowed) that checks and converts every field in one call, the names of its
    instants (made UTC afterwards) and whether it nests events (`missed`, read after)."""

    struct: type[msgspec.Struct]
    instants: tuple[str, ...]
    nested: bool


@cache
def _shape(cls: type[Event]) -> _Shape:
    fields: list[tuple[str, object] | tuple[str, object, object]] = []
    instants: list[str] = []
    for name, hint in _hints(cls).items():
        declared = list[Any] if name == _NESTED else hint
        if name in cls.__defaults__:
            fields.append((name, declared, cls.__defaults__[name]))
        else:
            fields.append((name, declared))
        if datetime in (hint, *get_args(hint)):
            instants.append(name)
    struct = msgspec.defstruct(
        cls.__name__,
        fields,
        kw_only=True,
        tag_field="kind",
        tag=cls.__name__,
        forbid_unknown_fields=True,
    )
    return _Shape(struct, tuple(instants), _NESTED in cls.__fields__)


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
