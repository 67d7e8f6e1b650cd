"""Events as plain data (`_core/codec.py`): every kind survives the trip through builtins, JSON
and MessagePack, and data that is not an event is refused with a `ValueError` saying why.

The daemon pushes events to its clients in this form and the audit log keeps them in it, so a
field lost or turned into another type here would reach an app's delegate or `xrs log` wrong.
"""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, get_args

import msgspec
import pytest

from extended_runtime._core.codec import EVENT_KINDS, _hints, decode_event, encode_event
from extended_runtime._core.events import (
    AlarmsAllowed,
    Event,
    SessionEvent,
    SessionHandedOver,
    SessionInvalidated,
    SessionStarted,
)

from .helpers import T0


def _sample(hint: object, *, other: bool = False) -> Any:
    """A value of the declared type (`other`: a second, different one where there is one)."""
    args = get_args(hint)
    if isinstance(hint, types.UnionType):
        return None if other else _sample(next(a for a in args if a is not type(None)))
    if hint is datetime:
        return T0 + timedelta(seconds=7 if other else 3, microseconds=250)
    if hint is timedelta:
        return timedelta(seconds=90, microseconds=5) if not other else timedelta(0)
    if hint is bool:
        return not other
    if hint is int:
        return 3 if other else 2
    if hint is str:
        return "second" if other else "first"
    if isinstance(hint, type) and issubclass(hint, Enum):
        members = list(hint)
        return members[-1] if other else members[0]
    if args and args[0] is SessionEvent:
        return () if other else (_event(SessionStarted), _event(SessionInvalidated))
    raise AssertionError(f"no sample for {hint!r}")


E = TypeVar("E", bound=Event)


def _event(cls: type[E], *, other: bool = False) -> E:
    return cls(**{name: _sample(hint, other=other) for name, hint in _hints(cls).items()})


KINDS = sorted(EVENT_KINDS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("other", [False, True])
def test_every_kind_comes_back_equal_through_json_and_messagepack(kind: str, other: bool) -> None:
    event = _event(EVENT_KINDS[kind], other=other)
    data = encode_event(event)
    assert data["kind"] == kind
    assert decode_event(data) == event
    assert decode_event(json.loads(json.dumps(data))) == event
    assert decode_event(msgspec.msgpack.decode(msgspec.msgpack.encode(data))) == event


def test_values_are_plain_builtins_with_raw_enum_values_and_iso_instants() -> None:
    event = _event(SessionStarted)
    data = encode_event(event)
    assert data["at"] == "2026-01-05T06:00:03.000250Z"
    assert data["lateness"] == "PT90.000005S"
    assert data["session_type"] == event.session_type.value
    assert all(type(v) in (str, int, bool, float, type(None), list) for v in data.values())


def test_an_instant_with_another_offset_comes_back_in_utc() -> None:
    data = encode_event(_event(SessionStarted))
    data["at"] = "2026-01-05T08:00:03.000250+02:00"
    decoded = decode_event(data)
    assert decoded.at == T0 + timedelta(seconds=3, microseconds=250)
    assert decoded.at.tzinfo is UTC
    assert decoded.at.utcoffset() == UTC.utcoffset(None)


def test_a_handed_over_session_carries_its_missed_events_decoded() -> None:
    event = _event(SessionHandedOver)
    decoded = decode_event(json.loads(json.dumps(encode_event(event))))
    assert isinstance(decoded, SessionHandedOver)
    assert [type(e) for e in decoded.missed] == [SessionStarted, SessionInvalidated]
    assert decoded == event


def _broken(change: dict[str, Any], drop: str | None = None) -> dict[str, Any]:
    data = encode_event(_event(SessionStarted)) | change
    if drop is not None:
        del data[drop]
    return data


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([1, 2], "an event is a mapping, not list"),
        ({"at": "2026-01-05T06:00:00Z"}, "unknown event kind None"),
        ({"kind": "Event"}, "unknown event kind 'Event'"),
        ({"kind": "SessionEvent"}, "unknown event kind 'SessionEvent'"),
        ({"kind": 7}, "unknown event kind 7"),
        (_broken({"surprise": 1}), "SessionStarted: Object contains unknown field `surprise`"),
        (
            _broken({}, drop="session_id"),
            "SessionStarted: Object missing required field `session_id`",
        ),
        (
            _broken({"session_id": 5}),
            "SessionStarted: Expected `str`, got `int` - at `$.session_id`",
        ),
        (
            _broken({"at": "yesterday"}),
            "SessionStarted: Invalid RFC3339 encoded datetime - at `$.at`",
        ),
        (_broken({"at": "2026-01-05T06:00:00"}), "SessionStarted.at"),
        (_broken({"session_type": "hovering"}), "SessionStarted: Invalid enum value 'hovering'"),
        (
            _broken({"lateness": 5}),
            "SessionStarted: Expected `duration`, got `int` - at `$.lateness`",
        ),
    ],
)
def test_what_is_not_an_event_is_refused_saying_why(data: object, says: str) -> None:
    with pytest.raises(ValueError) as raised:
        decode_event(data)
    assert says in str(raised.value)


def test_a_missing_field_with_a_default_takes_it() -> None:
    data = _broken({}, drop="lateness")
    decoded = decode_event(data)
    assert isinstance(decoded, SessionStarted)
    assert decoded.lateness == timedelta(0)


def test_missed_events_nest_one_level_only_and_are_session_events() -> None:
    inner = encode_event(_event(SessionHandedOver))
    middle = encode_event(_event(SessionHandedOver))
    middle["missed"] = [inner]
    outer = encode_event(_event(SessionHandedOver))
    outer["missed"] = [middle]
    with pytest.raises(ValueError, match="nests deeper than a handed-over session does"):
        decode_event(outer)
    outer["missed"] = [encode_event(_event(AlarmsAllowed))]
    with pytest.raises(ValueError, match="holds an event that is not a session event"):
        decode_event(outer)
    outer["missed"] = "nothing"
    with pytest.raises(ValueError, match="SessionHandedOver: Expected `array`, got `str`"):
        decode_event(outer)


def test_the_samples_cover_every_kind_of_field() -> None:
    """Each kind is sampled with two different values of every field (but for `None`-able ones,
    with and without a value), so the round trips above exercise every declared type."""
    for kind in KINDS:
        cls = EVENT_KINDS[kind]
        first, second = _event(cls), _event(cls, other=True)
        for name in cls.__fields__:
            assert getattr(first, name) != getattr(second, name), (kind, name)
