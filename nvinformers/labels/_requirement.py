"""One requirement of a label selector (``key``, ``operator``, ``values``), compiled to a matcher.

The peer of ``labels.Requirement`` and ``selection.Operator``. Each :class:`Requirement` compiles
its predicate once, when it is built, so matching does no dispatch on the operator; the selector
composes these predicates (:func:`matcher`).

Thread-safety: everything here is immutable; requirements may be shared between threads freely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Final, NoReturn

from nvinformers.labels._validation import key_error, parse_int64, value_error

#: What a requirement or selector reads: any mapping with ``get`` and ``in``.
LabelMapping = Mapping[str, str]
#: A compiled requirement or selector: True when the labels match.
Matcher = Callable[[LabelMapping], bool]

#: What ``None`` labels read as.
EMPTY_LABELS: Final[Mapping[str, str]] = {}


class Operator(StrEnum):
    """A requirement's operator; the values are those of ``k8s.io/apimachinery/pkg/selection``."""

    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    IN = "in"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    EXISTS = "exists"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


SET_OPS = frozenset({Operator.IN, Operator.NOT_IN})
_SINGLE_VALUE_OPS = frozenset(Operator) - SET_OPS - {Operator.EXISTS, Operator.DOES_NOT_EXIST}
INT_OPS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})

# How Requirement.__str__ spells each operator between key and value(s).
OP_SPELLING: Final[Mapping[Operator, str]] = {
    Operator.EQUALS: "=",
    Operator.DOUBLE_EQUALS: "==",
    Operator.NOT_EQUALS: "!=",
    Operator.IN: " in ",
    Operator.NOT_IN: " notin ",
    Operator.GREATER_THAN: ">",
    Operator.LESS_THAN: "<",
}


def _requirement_error(
    operator: Operator, values: tuple[str, ...], int_value: int | None
) -> tuple[int, str] | None:
    """(index of the offending value or -1, why) when values do not suit the operator."""
    if operator in SET_OPS:
        if not values:
            return -1, f"operator {operator.value!r} needs at least one value"
    elif operator in _SINGLE_VALUE_OPS:
        if len(values) != 1:
            return -1, f"operator {operator.value!r} needs exactly one value"
        if operator in INT_OPS and int_value is None:
            return 0, f'operator {operator.value!r} needs an integer value, got "{values[0]}"'
    elif values:
        return -1, f"operator {operator.value!r} takes no values"
    for index, value in enumerate(values):
        err = value_error(value)
        if err is not None:
            return index, f'invalid label value "{value}": {err}'
    return None


def _compile_requirement(
    key: str, operator: Operator, values: tuple[str, ...], int_value: int | None
) -> Matcher:
    """One closure per requirement: matching does no dispatch on the operator."""
    if operator is Operator.EQUALS or operator is Operator.DOUBLE_EQUALS:
        wanted = values[0]

        def equals(labels: LabelMapping) -> bool:
            # A missing key reads as None, which never equals a str.
            return labels.get(key) == wanted

        return equals
    if operator is Operator.NOT_EQUALS:
        unwanted = values[0]

        def not_equals(labels: LabelMapping) -> bool:
            # k8s: != matches objects that lack the key.
            return labels.get(key) != unwanted

        return not_equals
    if operator is Operator.IN:
        allowed = frozenset(values)

        def in_set(labels: LabelMapping) -> bool:
            value = labels.get(key)
            return value is not None and value in allowed

        return in_set
    if operator is Operator.NOT_IN:
        excluded = frozenset(values)

        def not_in_set(labels: LabelMapping) -> bool:
            # k8s: notin matches objects that lack the key.
            value = labels.get(key)
            return value is None or value not in excluded

        return not_in_set
    if operator is Operator.EXISTS:
        return lambda labels: key in labels
    if operator is Operator.DOES_NOT_EXIST:
        return lambda labels: key not in labels
    assert int_value is not None
    bound = int_value
    greater = operator is Operator.GREATER_THAN

    def compare(labels: LabelMapping) -> bool:
        # k8s: a missing key or a value that is not an int64 never matches > or <.
        value = labels.get(key)
        if value is None:
            return False
        number = parse_int64(value)
        if number is None:
            return False
        return number > bound if greater else number < bound

    return compare


class Requirement:
    """One requirement of a selector: ``key``, ``operator`` and ``values``.

    ``values`` is a sorted tuple without duplicates (the set semantics of ``NewRequirement``).
    Immutable and hashable; equal when key, operator and values are equal (``=`` and ``==`` are
    different operators that match the same objects, as in Kubernetes).

    Args:
        key: a valid label key.
        operator: an :class:`Operator` or its string value (``"="``, ``"in"``, ``"exists"``...).
        values: exactly one for ``=``, ``==``, ``!=``, ``gt``, ``lt`` (an int64 for the last
            two); at least one for ``in``/``notin``; none for ``exists`` and ``!``.

    Raises:
        ValueError: invalid key, unknown operator, or values that do not suit the operator.
    """

    __slots__ = ("_int", "_match", "key", "operator", "values")

    key: str
    operator: Operator
    values: tuple[str, ...]
    _int: int | None
    _match: Matcher

    def __init__(self, key: str, operator: Operator | str, values: Iterable[str] = ()) -> None:
        if isinstance(values, str):
            raise TypeError("values must be an iterable of strings, not a single str")
        key_err = key_error(key)
        if key_err is not None:
            raise ValueError(f'invalid label key "{key}": {key_err}')
        try:
            op = Operator(operator)
        except ValueError:
            known = ", ".join(repr(o.value) for o in Operator)
            raise ValueError(f"unknown operator {operator!r}; expected one of {known}") from None
        vals = tuple(sorted(set(values)))
        int_value = parse_int64(vals[0]) if op in INT_OPS and len(vals) == 1 else None
        err = _requirement_error(op, vals, int_value)
        if err is not None:
            raise ValueError(f'invalid requirement for key "{key}": {err[1]}')
        self._init(key, op, vals, int_value)

    def _init(self, key: str, op: Operator, vals: tuple[str, ...], int_value: int | None) -> None:
        setter = object.__setattr__
        setter(self, "key", key)
        setter(self, "operator", op)
        setter(self, "values", vals)
        setter(self, "_int", int_value)
        setter(self, "_match", _compile_requirement(key, op, vals, int_value))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """True when ``labels`` (None reads as no labels) satisfy this requirement."""
        return self._match(EMPTY_LABELS if labels is None else labels)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Requirement is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Requirement is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Requirement):
            return NotImplemented
        return (self.key, self.operator, self.values) == (other.key, other.operator, other.values)

    def __hash__(self) -> int:
        return hash((self.key, self.operator, self.values))

    def __reduce__(self) -> tuple[type[Requirement], tuple[str, str, tuple[str, ...]]]:
        return (Requirement, (self.key, self.operator.value, self.values))

    def __repr__(self) -> str:
        return f"Requirement({self.key!r}, {self.operator.value!r}, {self.values!r})"

    def __str__(self) -> str:
        """The Kubernetes spelling (``Requirement.String()``): ``!k``, ``k``, ``k in (a,b)``..."""
        op = self.operator
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        if op is Operator.EXISTS:
            return self.key
        joined = ",".join(self.values)
        if op in SET_OPS:
            return f"{self.key}{OP_SPELLING[op]}({joined})"
        return f"{self.key}{OP_SPELLING[op]}{joined}"


def trusted_requirement(key: str, op: Operator, values: Iterable[str]) -> Requirement:
    """Build without validation: for the parser (which has validated) and
    ``selector_from_validated_set``."""
    req = Requirement.__new__(Requirement)
    vals = tuple(sorted(set(values)))
    int_value = parse_int64(vals[0]) if op in INT_OPS and len(vals) == 1 else None
    req._init(key, op, vals, int_value)
    return req


def matcher(requirement: Requirement) -> Matcher:
    """The requirement's compiled predicate (no None handling), for a selector to compose."""
    return requirement._match
