"""Frozen value classes that cost nothing to define.

Theory
------
The engine speaks in small frozen values (its events and effects, `events.py`): a few dozen
classes, each a handful of typed fields, built by the thousand and compared in tests. A
`@dataclass` would suit them, but it writes the source of each class's `__init__`, `__eq__`,
`__repr__`, `__hash__` and `__setattr__` and compiles it when the class is defined: about a
millisecond per class, paid by every process that imports the engine, before its first session.

`Value` gives the same behaviour from shared methods instead. Its metaclass reads the fields a
class declares (its annotations, in order, after those of its bases), takes their defaults out
of the class body and gives the class `__slots__` of exactly those fields; the methods
(`__init__`, equality, hashing, `repr`, refusing to be changed, copying) are written once here
and read the class's `__fields__`. Defining a class costs a few microseconds; an instance is as
small as a slotted dataclass's.

The metaclass is declared a dataclass transform (PEP 681), so type checkers see the generated
`__init__` and the frozen fields as they would for a dataclass. A value class takes keyword
arguments only, unless it says `kw_only=False` (as each effect does: `KeepAwake(True)`); as for
a dataclass, the flag is the class's own, not inherited. Keyword-only classes may put fields
without defaults after fields with defaults, which inheritance needs; positional ones may not.
"""

from __future__ import annotations

from typing import Any, ClassVar, dataclass_transform, get_origin

__all__ = ["Value"]

_MISSING: Any = object()


def _base_value(bases: tuple[type, ...]) -> Any:
    """The value class this one extends (two with fields cannot be: their slots conflict)."""
    found = [b for b in bases if isinstance(b, _ValueMeta)]
    return max(found, key=lambda b: len(b.__fields__), default=None)


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
        cls = super().__new__(mcls, name, bases, namespace)
        inherited = _base_value(bases)
        fields = inherited.__fields__ + own if inherited else own
        cls.__fields__ = fields
        cls.__kw_only__ = kw_only
        cls.__defaults__ = {**(inherited.__defaults__ if inherited else {}), **defaults}
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if args and cls.__kw_only__:
            raise TypeError(f"{cls.__name__}() takes keyword arguments only")
        fields = cls.__fields__
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} arguments, {len(args)} given")
        set_field = object.__setattr__
        for name, value in zip(fields, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got {name!r} twice")
            set_field(self, name, value)
        for name in fields[len(args) :]:
            value = kwargs.pop(name, _MISSING)
            if value is _MISSING:
                value = cls.__defaults__.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{cls.__name__}() is missing {name!r}")
            set_field(self, name, value)
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected {', '.join(map(repr, kwargs))}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__fields__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

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


def _rebuild(cls: type[Value], values: dict[str, Any]) -> Value:
    return cls(**values) if cls.__kw_only__ else cls(*values.values())
