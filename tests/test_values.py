"""`Value`, the frozen value classes of the engine's events and effects: built as a dataclass
would be, from annotations, with the same guarantees."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from extended_runtime import SessionState, SessionType
from extended_runtime._core.events import KeepAwake, SessionEvent, SessionStarted
from extended_runtime._core.values import Value

AT = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


class Point(Value, kw_only=False):
    x: int
    y: int = 0
    unit: ClassVar[str] = "px"


class Stamped(Value):
    at: datetime
    label: str = ""


class Later(Stamped):
    delay: timedelta  # no default after one with a default: keyword-only allows it


def test_positional_and_keyword_arguments_fill_the_fields_in_order() -> None:
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert Point(5).y == 0
    assert Point.__fields__ == ("x", "y")  # a class variable is not a field
    assert Point.unit == "px"
    assert Point.__match_args__ == ("x", "y")


def test_keyword_only_classes_refuse_positional_arguments_and_inherit_fields() -> None:
    later = Later(at=AT, delay=timedelta(seconds=3))
    assert (later.at, later.label, later.delay) == (AT, "", timedelta(seconds=3))
    assert Later.__fields__ == ("at", "label", "delay")
    with pytest.raises(TypeError, match="takes 1 positional argument but 4 were given"):
        Later(AT, "x", timedelta(0))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (Point, "Point.__init__.. missing 1 required positional argument: 'x'"),
        (lambda: Point(1, 2, 3), "takes from 2 to 3 positional arguments but 4 were given"),  # type: ignore[call-arg]
        (lambda: Point(1, x=2), "multiple values for argument 'x'"),  # type: ignore[misc]
        (lambda: Point(1, z=2), "unexpected keyword argument 'z'"),  # type: ignore[call-arg]
        (lambda: Later(at=AT), "missing 1 required keyword-only argument: 'delay'"),  # type: ignore[call-arg]
    ],
)
def test_wrong_arguments_are_type_errors_as_python_words_them(make: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()  # type: ignore[operator]


def test_values_are_frozen_and_have_no_dict() -> None:
    point = Point(1, 2)
    with pytest.raises(AttributeError, match="frozen"):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del point.x
    with pytest.raises(AttributeError):
        point.z = 1
    assert not hasattr(point, "__dict__")


def test_equality_and_hash_follow_the_values_and_the_class() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert Point(1, 2) != Point(2, 1)
    assert Stamped(at=AT) != Later(at=AT, delay=timedelta(0))  # another class, even if related
    assert len({Point(1, 2), Point(1, 2), Point(0, 0)}) == 2


def test_repr_names_every_field() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert repr(KeepAwake(True, "who", "why")) == "KeepAwake(held=True, who='who', why='why')"


def test_each_class_has_its_own_init_even_after_its_base_made_one() -> None:
    Stamped(at=AT)  # the base compiles its `__init__` first...
    later = Later(at=AT, delay=timedelta(seconds=1))  # ...which its subclass must not take
    assert later.delay == timedelta(seconds=1)
    assert Later.__init__ is not Stamped.__init__


def test_copies_and_pickles_are_equal_values() -> None:
    started = SessionStarted(
        at=AT,
        app_id="org.example.a",
        session_id="s1",
        state=SessionState.RUNNING,
        session_type=SessionType.MINDFULNESS,
        expiration_date=AT + timedelta(hours=1),
    )
    for twin in (copy.copy(started), copy.deepcopy(started), pickle.loads(pickle.dumps(started))):
        assert twin == started
        assert type(twin) is SessionStarted
    assert pickle.loads(pickle.dumps(Point(4, 5))) == Point(4, 5)
    assert isinstance(started, SessionEvent)


def test_positional_fields_without_default_may_not_follow_defaults() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(Value, kw_only=False):
            a: int = 0
            b: int  # type: ignore[misc]
