"""Frozen value classes that cost nothing to define.

Theory
------
The engine speaks in small frozen values (its events and effects, `events.py`): a few dozen
classes, each a handful of typed fields, built by the thousand and compared in tests. A
`@dataclass` would suit them, but it writes the source of each class's `__init__`, `__eq__`,
`__repr__`, `__hash__` and `__setattr__` and compiles it when the class is defined: about a
millisecond per class, paid by every process that imports the engine, before its first session.

`Value` gives the same behaviour and defers the one cost that matters. Its metaclass reads the
fields a class declares (its annotations, in order, after those of its bases), takes their
defaults out of the class body and gives the class `__slots__` of exactly those fields; equality,
hashing, `repr`, refusing to be changed and copying are written once here and read the class's
`__fields__`. Only `__init__` is compiled per class, as a dataclass's is (a generic one costs
three times as much per instance, and the engine makes values on every timer it fires), but on
the class's first instance, not when it is defined: a process pays for the classes it uses, a
few of them in a short `xrs run`. Defining a class costs a few microseconds; an instance is as
small, and as quick to make, as a slotted dataclass's.

The metaclass is declared a dataclass transform (PEP 681), so type checkers see the generated
`__init__` and the frozen fields as they would for a dataclass. A value class takes keyword
arguments only, unless it says `kw_only=False` (as each effect does: `KeepAwake(True)`); as for
a dataclass, the flag is the class's own, not inherited. Keyword-only classes may put fields
without defaults after fields with defaults, which inheritance needs; positional ones may not.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, dataclass_transform, get_origin

__all__ = ["Value"]


def _base_value(bases: tuple[type, ...]) -> Any:
    """The value class this one extends (two with fields cannot be: their slots conflict)."""
    found = [b for b in bases if isinstance(b, _ValueMeta)]
    return max(found, key=lambda b: len(b.__fields__), default=None)


def _getter(fields: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """Reads the fields of a value as a tuple, in C (`attrgetter` of one name gives the value
    itself, so a one-field class gets a second name, its first again, sliced off)."""
    if not fields:
        return lambda value: ()
    if len(fields) == 1:
        both = attrgetter(fields[0], fields[0])
        return lambda value: both(value)[:1]
    return attrgetter(*fields)


def _is_class_var(annotation: object) -> bool:
    """A class variable, not a field (annotations are strings under postponed evaluation)."""
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def _check_order(name: str, fields: tuple[str, ...], defaults: dict[str, Any]) -> None:
    """Positional fields: none without a default may follow one with a default."""
    seen_default = False
    for field in fields:
        if field in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{name}: field {field!r} without a default follows one with a default")


@dataclass_transform(kw_only_default=True, frozen_default=True)
class _ValueMeta(type):
    """Builds a value class: its fields, their defaults and its slots."""

    __fields__: tuple[str, ...]
    __kw_only__: bool
    __defaults__: dict[str, Any]
    __values__: Callable[[Any], tuple[Any, ...]]

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        *,
        kw_only: bool = True,
    ) -> _ValueMeta:
        annotations = namespace.get("__annotations__", {})
        own = tuple(f for f, kind in annotations.items() if not _is_class_var(kind))
        defaults = {f: namespace.pop(f) for f in own if f in namespace}
        namespace["__slots__"] = own
        if bases:  # each class compiles its own `__init__` on first use (`Value.__init__`)
            namespace.setdefault("__init__", _first_init)
        cls = super().__new__(mcls, name, bases, namespace)
        inherited = _base_value(bases)
        fields = inherited.__fields__ + own if inherited else own
        cls.__fields__ = fields
        cls.__kw_only__ = kw_only
        cls.__defaults__ = {**(inherited.__defaults__ if inherited else {}), **defaults}
        cls.__values__ = _getter(fields)
        setattr(cls, "__match_args__", () if kw_only else fields)  # noqa: B010 (read-only to mypy)
        if not kw_only:
            _check_order(name, fields, cls.__defaults__)
        return cls


class Value(metaclass=_ValueMeta):
    """A frozen value: fields from annotations, compared, hashed and shown by their values."""

    __slots__ = ()
    __fields__: ClassVar[tuple[str, ...]]
    __kw_only__: ClassVar[bool]
    __defaults__: ClassVar[dict[str, Any]]
    #: The field values as a tuple, read in C (`operator.attrgetter`).
    __values__: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The first instance of a class compiles the class's own `__init__`, then uses it."""
        cls = type(self)
        init = _compile_init(cls)
        cls.__init__ = init  # type: ignore[method-assign]
        init(self, *args, **kwargs)

    def _values(self) -> tuple[Any, ...]:
        return type(self).__values__(self)

    def __eq__(self, other: object) -> bool:
        cls = self.__class__
        if other.__class__ is not cls:
            return NotImplemented
        values = cls.__values__
        return values(self) == values(other)

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__fields__)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self.__class__.__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self.__class__.__name__} is frozen: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Copies and pickles are rebuilt through `__init__` (the slots cannot be set)."""
        return (_rebuild, (self.__class__, dict(zip(self.__fields__, self._values(), strict=True))))


def _first_init(self: Value, *args: Any, **kwargs: Any) -> None:
    Value.__init__(self, *args, **kwargs)


def _compile_init(cls: type[Value]) -> Any:
    """`cls.__init__`, written for its fields as a dataclass's is: each field a parameter
    (keyword-only unless the class says otherwise), set through `object.__setattr__`."""
    defaults = cls.__defaults__
    star = ["*"] if cls.__kw_only__ and cls.__fields__ else []
    parameters = ", ".join(
        ["self", *star, *(f"{f}=_d[{f!r}]" if f in defaults else f for f in cls.__fields__)]
    )
    body = "".join(f"\n    _set(self, {f!r}, {f})" for f in cls.__fields__) or "\n    pass"
    namespace: dict[str, Any] = {"_d": defaults, "_set": object.__setattr__}
    exec(f"def __init__({parameters}):{body}", namespace)  # field names are identifiers
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _rebuild(cls: type[Value], values: dict[str, Any]) -> Value:
    return cls(**values) if cls.__kw_only__ else cls(*values.values())
