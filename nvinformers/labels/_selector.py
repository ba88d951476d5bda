"""A label selector: a conjunction of requirements (``labels.Selector``), and :func:`parse`.

Requirements are kept sorted by key, so ``str(selector)`` is the canonical Kubernetes form, which
:func:`parse` reads back to an equal selector (that is how a selector pickles). Matching is
compiled once per selector from its requirements' matchers.

Thread-safety: everything here is immutable; selectors may be shared between threads freely.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn

from nvinformers.labels._parser import parse_requirements
from nvinformers.labels._requirement import (
    EMPTY_LABELS,
    LabelMapping,
    Matcher,
    Operator,
    Requirement,
    matcher,
    trusted_requirement,
)


def _always(_labels: LabelMapping) -> bool:
    return True


def _compile_selector(requirements: tuple[Requirement, ...]) -> Matcher:
    if not requirements:
        return _always
    if len(requirements) == 1:
        # The common case (a lister filtering on one label): no loop, no extra frame.
        return matcher(requirements[0])
    matchers = tuple(matcher(r) for r in requirements)

    def all_match(labels: LabelMapping) -> bool:
        # A plain loop: all() over a generator costs a frame per object on the lister path.
        for match in matchers:  # noqa: SIM110
            if not match(labels):
                return False
        return True

    return all_match


class Selector:
    """A conjunction of :class:`Requirement`; the Python peer of ``labels.Selector``.

    Build one with :func:`parse`, :func:`selector_from_set`, :func:`everything`, or
    ``Selector(requirements)``. Requirements are kept sorted by key (stable), as Kubernetes
    does, so ``str(selector)`` is canonical. Immutable and hashable; two selectors are equal when
    their requirements are.

    Thread-safety: immutable; share freely.
    """

    __slots__ = ("_match", "_requirements", "_str")

    _requirements: tuple[Requirement, ...]
    _match: Matcher
    _str: str

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        reqs = tuple(requirements)
        for req in reqs:
            if not isinstance(req, Requirement):
                raise TypeError(f"expected Requirement, got {type(req).__name__}")
        self._init(tuple(sorted(reqs, key=_by_key)))

    def _init(self, reqs: tuple[Requirement, ...]) -> None:
        setter = object.__setattr__
        setter(self, "_requirements", reqs)
        setter(self, "_match", _compile_selector(reqs))
        setter(self, "_str", ",".join(str(r) for r in reqs))

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """The requirements, sorted by key."""
        return self._requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """True when ``labels`` satisfy every requirement (None reads as no labels).

        Args:
            labels: any mapping with ``get`` and ``in`` (a dict, ``gpu.metadata.labels``).
        """
        return self._match(EMPTY_LABELS if labels is None else labels)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (no requirements)."""
        return not self._requirements

    def add(self, *requirements: Requirement) -> Selector:
        """A new selector with ``requirements`` added (this one is unchanged)."""
        return Selector(self._requirements + requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The value ``key`` must have (``k=v``, ``k==v``, ``k in (v)``), or None.

        Mirrors ``Selector.RequiresExactMatch``; an index lookup can replace a scan with it.
        """
        for req in self._requirements:
            if req.key != key:
                continue
            if req.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS) or (
                req.operator is Operator.IN and len(req.values) == 1
            ):
                return req.values[0]
        return None

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self._requirements)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Selector is immutable (cannot set {name!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return type(self) is type(other) and self._requirements == other._requirements

    def __hash__(self) -> int:
        return hash((type(self), self._requirements))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (parse, (self._str,))

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return f"Selector({self._str!r})"


def _by_key(req: Requirement) -> str:
    return req.key


class _NothingSelector(Selector):
    """``labels.Nothing()``: matches no object. ``str()`` is ``""`` as in Kubernetes, so it does
    not survive a round trip through :func:`parse` (which reads ``""`` as everything)."""

    __slots__ = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return False

    def empty(self) -> bool:
        return False

    def add(self, *requirements: Requirement) -> Selector:
        return self

    def requires_exact_match(self, key: str) -> str | None:
        return None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (nothing, ())

    def __repr__(self) -> str:
        return "Selector(<nothing>)"


_EVERYTHING = Selector()
_NOTHING = _NothingSelector()


def everything() -> Selector:
    """The selector that matches every object (``labels.Everything()``)."""
    return _EVERYTHING


def nothing() -> Selector:
    """The selector that matches no object (``labels.Nothing()``)."""
    return _NOTHING


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """A selector requiring ``key=value`` for every item of ``labels`` (empty → everything).

    Raises:
        ValueError: a key or value is not a valid label key/value.
    """
    if not labels:
        return _EVERYTHING
    return Selector(Requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items())


def selector_from_validated_set(labels: Mapping[str, str] | None) -> Selector:
    """Like :func:`selector_from_set` without validation, for labels known to be valid (for
    example taken from an object the server accepted)."""
    if not labels:
        return _EVERYTHING
    sel = Selector.__new__(Selector)
    reqs = (trusted_requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items())
    sel._init(tuple(sorted(reqs, key=_by_key)))
    return sel


@functools.lru_cache(maxsize=512)
def parse(selector: str) -> Selector:
    """Parse a Kubernetes label selector (``labels.Parse``).

    Results are cached (selectors are immutable), so parsing the same text on every lister call
    costs a dictionary lookup.

    Args:
        selector: e.g. ``"rack=a,gpu.index in (0,1),!drained"``; "" selects everything.

    Returns:
        The :class:`Selector`, requirements sorted by key.

    Raises:
        SelectorParseError: the text is not a valid selector; the message names the position
            and what was expected there.
        TypeError: ``selector`` is not a str.
    """
    if not isinstance(selector, str):
        raise TypeError(f"label selector must be a str, got {type(selector).__name__}")
    requirements = parse_requirements(selector)
    if not requirements:
        return _EVERYTHING
    sel = Selector.__new__(Selector)
    sel._init(tuple(sorted(requirements, key=_by_key)))
    return sel
