"""Kubernetes label selectors: the Python peer of ``k8s.io/apimachinery/pkg/labels``.

Grammar (``labels.Parse``), requirements joined by commas (AND)::

    k=v   k==v   k!=v          equality / inequality (k==v keeps its spelling in str())
    k in (a,b)   k notin (a,b) set membership; "()" means the set {""}
    k     !k                   the key exists / does not exist
    k>n   k<n                  the label value, read as a base-10 int64, is greater / less than n
    ""                         the empty selector: matches everything

Whitespace (space, tab, CR, LF) may separate any two tokens. Keys are qualified names: an
optional DNS-1123 subdomain prefix (at most 253 characters) and ``/``, then a name of at most 63
characters of ``[A-Za-z0-9]`` with ``-``, ``_`` and ``.`` inside. Values are at most 63 characters
of the same alphabet and may be empty. As in Kubernetes, ``!=`` and ``notin`` match objects that
lack the key, while ``>`` and ``<`` never do (nor do values that are not integers).

:func:`parse` raises :class:`SelectorParseError` (a ``ValueError``) naming the selector, the
0-based position of the offending token and what was expected there::

    >>> parse("a in (b")
    Traceback (most recent call last):
    ...
    SelectorParseError: invalid label selector "a in (b": expected ")" at position 7

A :class:`Selector` is immutable and hashable; ``str(selector)`` is the canonical Kubernetes form
(requirements sorted by key, set values sorted), which parses back to an equal selector.
Matching is compiled once per requirement, so filtering a 10,000-object cache costs a few
milliseconds (one dictionary probe per object for the common ``key=value`` selector).

Thread-safety: everything here is immutable; selectors may be shared between threads freely.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum, StrEnum
from typing import Any, Final, NoReturn

from nvinformers.errors import NvInformersError

__all__ = [
    "Operator",
    "Requirement",
    "Selector",
    "SelectorParseError",
    "parse",
    "everything",
    "nothing",
    "selector_from_set",
    "selector_from_validated_set",
    "validate_label_key",
    "validate_label_value",
]

_Labels = Mapping[str, str]
_Matcher = Callable[[_Labels], bool]

_EMPTY_LABELS: Final[Mapping[str, str]] = {}

# k8s.io/apimachinery/pkg/util/validation: IsQualifiedName / IsDNS1123Subdomain / IsValidLabelValue.
_QUALIFIED_NAME_MAX = 63
_DNS1123_SUBDOMAIN_MAX = 253
_LABEL_VALUE_MAX = 63
_QUALIFIED_NAME_RE = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE_RE = re.compile(r"(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
# strconv.ParseInt(s, 10, 64): an optional sign and ASCII digits only (int() would also accept
# whitespace, underscores and non-ASCII digits).
_INT_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_NAME_CHARS_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName', 'my.name' or '123-abc')"
)


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


_SET_OPS = frozenset({Operator.IN, Operator.NOT_IN})
_SINGLE_VALUE_OPS = frozenset(
    {
        Operator.EQUALS,
        Operator.DOUBLE_EQUALS,
        Operator.NOT_EQUALS,
        Operator.GREATER_THAN,
        Operator.LESS_THAN,
    }
)
_NO_VALUE_OPS = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_INT_OPS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})

# How Requirement.__str__ spells each operator between key and value(s).
_OP_SPELLING: Final[Mapping[Operator, str]] = {
    Operator.EQUALS: "=",
    Operator.DOUBLE_EQUALS: "==",
    Operator.NOT_EQUALS: "!=",
    Operator.IN: " in ",
    Operator.NOT_IN: " notin ",
    Operator.GREATER_THAN: ">",
    Operator.LESS_THAN: "<",
}


# --------------------------------------------------------------------------------------------
# Validation


def _key_error(key: str) -> str | None:
    """Why ``key`` is not a valid label key (k8s ``IsQualifiedName``), or None when it is."""
    parts = key.split("/")
    if len(parts) > 2:
        return (
            f"a qualified name {_NAME_CHARS_MSG}, with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        )
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > _DNS1123_SUBDOMAIN_MAX:
            return f"prefix part must be no more than {_DNS1123_SUBDOMAIN_MAX} characters"
        if _DNS1123_SUBDOMAIN_RE.fullmatch(prefix) is None:
            return (
                "prefix part must be a lowercase RFC 1123 subdomain: lower case alphanumeric "
                "characters, '-' or '.', starting and ending with an alphanumeric character "
                "(e.g. 'example.com')"
            )
    else:
        name = parts[0]
    if not name:
        return "name part must be non-empty"
    if len(name) > _QUALIFIED_NAME_MAX:
        return f"name part must be no more than {_QUALIFIED_NAME_MAX} characters"
    if _QUALIFIED_NAME_RE.fullmatch(name) is None:
        return f"name part {_NAME_CHARS_MSG}"
    return None


def _value_error(value: str) -> str | None:
    """Why ``value`` is not a valid label value (k8s ``IsValidLabelValue``), or None."""
    if len(value) > _LABEL_VALUE_MAX:
        return f"must be no more than {_LABEL_VALUE_MAX} characters"
    if _LABEL_VALUE_RE.fullmatch(value) is None:
        return (
            "a valid label value must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'MyValue', 'my_value' or '12345')"
        )
    return None


def validate_label_key(key: str) -> None:
    """Check that ``key`` is a valid label key.

    Args:
        key: ``[prefix/]name``: an optional DNS-1123 subdomain prefix (≤253 characters), then a
            name of at most 63 characters of ``[A-Za-z0-9]`` with ``-_.`` inside.

    Raises:
        ValueError: ``key`` is not valid; the message says why.
    """
    err = _key_error(key)
    if err is not None:
        raise ValueError(f'invalid label key "{key}": {err}')


def validate_label_value(value: str) -> None:
    """Check that ``value`` is a valid label value (may be empty).

    Raises:
        ValueError: ``value`` is not valid; the message says why.
    """
    err = _value_error(value)
    if err is not None:
        raise ValueError(f'invalid label value "{value}": {err}')


def _parse_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: the integer, or None when ``text`` is not one."""
    if _INT_RE.fullmatch(text) is None:
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _requirement_error(
    operator: Operator, values: tuple[str, ...], int_value: int | None
) -> tuple[int, str] | None:
    """(index of the offending value or -1, why) when values do not suit the operator."""
    if operator in _SET_OPS:
        if not values:
            return -1, f"operator {operator.value!r} needs at least one value"
    elif operator in _SINGLE_VALUE_OPS:
        if len(values) != 1:
            return -1, f"operator {operator.value!r} needs exactly one value"
        if operator in _INT_OPS and int_value is None:
            return 0, f'operator {operator.value!r} needs an integer value, got "{values[0]}"'
    elif values:
        return -1, f"operator {operator.value!r} takes no values"
    for index, value in enumerate(values):
        err = _value_error(value)
        if err is not None:
            return index, f'invalid label value "{value}": {err}'
    return None


# --------------------------------------------------------------------------------------------
# Requirement


def _compile_requirement(
    key: str, operator: Operator, values: tuple[str, ...], int_value: int | None
) -> _Matcher:
    """One closure per requirement: matching does no dispatch on the operator."""
    if operator is Operator.EQUALS or operator is Operator.DOUBLE_EQUALS:
        wanted = values[0]

        def equals(labels: _Labels) -> bool:
            # A missing key reads as None, which never equals a str.
            return labels.get(key) == wanted

        return equals
    if operator is Operator.NOT_EQUALS:
        unwanted = values[0]

        def not_equals(labels: _Labels) -> bool:
            # k8s: != matches objects that lack the key.
            return labels.get(key) != unwanted

        return not_equals
    if operator is Operator.IN:
        allowed = frozenset(values)

        def in_set(labels: _Labels) -> bool:
            value = labels.get(key)
            return value is not None and value in allowed

        return in_set
    if operator is Operator.NOT_IN:
        excluded = frozenset(values)

        def not_in_set(labels: _Labels) -> bool:
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

    def compare(labels: _Labels) -> bool:
        # k8s: a missing key or a value that is not an int64 never matches > or <.
        value = labels.get(key)
        if value is None:
            return False
        number = _parse_int64(value)
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
    _match: _Matcher

    def __init__(self, key: str, operator: Operator | str, values: Iterable[str] = ()) -> None:
        if isinstance(values, str):
            raise TypeError("values must be an iterable of strings, not a single str")
        key_err = _key_error(key)
        if key_err is not None:
            raise ValueError(f'invalid label key "{key}": {key_err}')
        try:
            op = Operator(operator)
        except ValueError:
            known = ", ".join(repr(o.value) for o in Operator)
            raise ValueError(f"unknown operator {operator!r}; expected one of {known}") from None
        vals = tuple(sorted(set(values)))
        int_value = _parse_int64(vals[0]) if op in _INT_OPS and len(vals) == 1 else None
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

    @classmethod
    def _trusted(cls, key: str, op: Operator, values: Iterable[str]) -> Requirement:
        """Build without validation (``selector_from_validated_set``, the parser)."""
        req = cls.__new__(cls)
        vals = tuple(sorted(set(values)))
        int_value = _parse_int64(vals[0]) if op in _INT_OPS and len(vals) == 1 else None
        req._init(key, op, vals, int_value)
        return req

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """True when ``labels`` (None reads as no labels) satisfy this requirement."""
        return self._match(_EMPTY_LABELS if labels is None else labels)

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
        if op in _SET_OPS:
            return f"{self.key}{_OP_SPELLING[op]}({joined})"
        return f"{self.key}{_OP_SPELLING[op]}{joined}"


# --------------------------------------------------------------------------------------------
# Selector


def _always(_labels: _Labels) -> bool:
    return True


def _compile_selector(requirements: tuple[Requirement, ...]) -> _Matcher:
    if not requirements:
        return _always
    if len(requirements) == 1:
        # The common case (a lister filtering on one label): no loop, no extra frame.
        return requirements[0]._match
    matchers = tuple(r._match for r in requirements)

    def all_match(labels: _Labels) -> bool:
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
    _match: _Matcher
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
        return self._match(_EMPTY_LABELS if labels is None else labels)

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
    reqs = (Requirement._trusted(k, Operator.EQUALS, (v,)) for k, v in labels.items())
    sel._init(tuple(sorted(reqs, key=_by_key)))
    return sel


# --------------------------------------------------------------------------------------------
# Parser


class SelectorParseError(NvInformersError, ValueError):
    """A label selector that cannot be parsed.

    ``str(err)`` reads ``invalid label selector "<selector>": <detail> at position <n>``.

    Attributes:
        selector: the text that was parsed.
        position: 0-based index of the offending token (``len(selector)`` at the end).
        expected: what the grammar allowed there, or None for a validation failure.
        found: the offending token text, or None at the end of the string.
        detail: the message without the selector and position.
    """

    def __init__(
        self,
        selector: str,
        position: int,
        detail: str,
        *,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        super().__init__(f'invalid label selector "{selector}": {detail} at position {position}')
        self.selector = selector
        self.position = position
        self.detail = detail
        self.expected = expected
        self.found = found


class _Tok(Enum):
    END = "end of string"
    IDENT = "identifier"
    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER = ">"
    LESS = "<"
    BANG = "!"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","


_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")
_SYMBOLS: Final[Mapping[str, _Tok]] = {
    "==": _Tok.DOUBLE_EQUALS,
    "!=": _Tok.NOT_EQUALS,
    "=": _Tok.EQUALS,
    "!": _Tok.BANG,
    "(": _Tok.OPEN,
    ")": _Tok.CLOSE,
    ",": _Tok.COMMA,
    ">": _Tok.GREATER,
    "<": _Tok.LESS,
}
_KEYWORDS: Final[Mapping[str, _Tok]] = {"in": _Tok.IN, "notin": _Tok.NOT_IN}
_OPERATORS: Final[Mapping[_Tok, Operator]] = {
    _Tok.EQUALS: Operator.EQUALS,
    _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
    _Tok.IN: Operator.IN,
    _Tok.NOT_IN: Operator.NOT_IN,
    _Tok.GREATER: Operator.GREATER_THAN,
    _Tok.LESS: Operator.LESS_THAN,
}
_Token = tuple[_Tok, str, int]  # kind, text, position


def _lex(text: str) -> list[_Token]:
    """Split ``text`` as the Kubernetes lexer does.

    Identifiers run up to whitespace or one of ``=!(),><``; ``in``/``notin`` are keywords; the
    symbols are the longest of ``==``/``!=`` or a single character. Always ends with END.
    """
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            tokens.append((_Tok.END, "", n))
            return tokens
        start = i
        if text[i] in _SPECIAL:
            pair = text[i : i + 2]
            sym = pair if pair in _SYMBOLS else text[i]
            tokens.append((_SYMBOLS[sym], sym, start))
            i += len(sym)
            continue
        while i < n and text[i] not in _SPECIAL and text[i] not in _WHITESPACE:
            i += 1
        word = text[start:i]
        tokens.append((_KEYWORDS.get(word, _Tok.IDENT), word, start))


class _Parser:
    """Recursive descent over the token list; accepts exactly what ``labels.Parse`` accepts."""

    __slots__ = ("_i", "_text", "_tokens")

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _lex(text)
        self._i = 0

    # In "values" position the keywords are ordinary identifiers (``in in (in)`` is valid);
    # only where an operator is expected are they keywords (k8s ParserContext Values vs
    # KeyAndOperator).
    def _peek(self) -> _Token:
        kind, text, pos = self._tokens[self._i]
        if kind is _Tok.IN or kind is _Tok.NOT_IN:
            return _Tok.IDENT, text, pos
        return kind, text, pos

    def _next(self) -> _Token:
        tok = self._peek()
        if tok[0] is not _Tok.END:
            self._i += 1
        return tok

    def _next_operator(self) -> _Token:
        tok = self._tokens[self._i]
        if tok[0] is not _Tok.END:
            self._i += 1
        return tok

    def _fail(self, expected: str, tok: _Token) -> NoReturn:
        kind, text, pos = tok
        if kind is _Tok.END:
            raise SelectorParseError(self._text, pos, f"expected {expected}", expected=expected)
        raise SelectorParseError(
            self._text,
            pos,
            f'expected {expected}, found "{text}"',
            expected=expected,
            found=text,
        )

    def parse(self) -> tuple[Requirement, ...]:
        requirements: list[Requirement] = []
        tok = self._peek()
        if tok[0] is _Tok.END:
            return ()
        while True:
            if tok[0] is not _Tok.IDENT and tok[0] is not _Tok.BANG:
                self._fail('"!" or a label key', tok)
            requirements.append(self._requirement())
            tok = self._next()
            if tok[0] is _Tok.END:
                return tuple(requirements)
            if tok[0] is not _Tok.COMMA:
                self._fail('"," or end of string', tok)
            tok = self._peek()

    def _requirement(self) -> Requirement:
        tok = self._next()
        negated = tok[0] is _Tok.BANG
        if negated:
            tok = self._next()
        if tok[0] is not _Tok.IDENT:
            self._fail("a label key", tok)
        key, key_pos = tok[1], tok[2]
        err = _key_error(key)
        if err is not None:
            raise SelectorParseError(self._text, key_pos, f'invalid label key "{key}": {err}')
        after = self._peek()
        if after[0] is _Tok.END or after[0] is _Tok.COMMA:
            op = Operator.DOES_NOT_EXIST if negated else Operator.EXISTS
            return Requirement._trusted(key, op, ())
        if negated:
            self._fail('"," or end of string', after)
        op_tok = self._next_operator()
        operator = _OPERATORS.get(op_tok[0])
        if operator is None:
            self._fail('an operator ("=", "==", "!=", "in", "notin", ">" or "<")', op_tok)
        values = self._set_values() if operator in _SET_OPS else self._exact_value()
        return self._build(key, operator, values)

    def _set_values(self) -> list[tuple[str, int]]:
        tok = self._next()
        if tok[0] is not _Tok.OPEN:
            self._fail('"("', tok)
        tok = self._peek()
        if tok[0] is _Tok.CLOSE:
            # "()" is the set {""}, as in Kubernetes.
            self._next()
            return [("", tok[2])]
        if tok[0] is not _Tok.IDENT and tok[0] is not _Tok.COMMA:
            self._fail('a value, "," or ")"', tok)
        values: list[tuple[str, int]] = []
        while True:
            tok = self._next()
            if tok[0] is _Tok.IDENT:
                values.append((tok[1], tok[2]))
                after = self._peek()
                if after[0] is _Tok.COMMA:
                    continue
                if after[0] is _Tok.CLOSE:
                    break
                # At the end of the string only ")" can complete the list.
                self._fail('")"' if after[0] is _Tok.END else '"," or ")"', after)
            elif tok[0] is _Tok.COMMA:
                # Empty items are empty values: "(,a)", "(a,)" and "(a,,b)" all contain "".
                if not values:
                    values.append(("", tok[2]))
                after = self._peek()
                if after[0] is _Tok.CLOSE:
                    values.append(("", after[2]))
                    break
                if after[0] is _Tok.COMMA:
                    self._next()
                    values.append(("", after[2]))
            else:
                self._fail('a value, "," or ")"', tok)
        self._next()  # the ")" seen by the lookahead that ended the loop
        return values

    def _exact_value(self) -> list[tuple[str, int]]:
        tok = self._peek()
        if tok[0] is _Tok.END or tok[0] is _Tok.COMMA:
            return [("", tok[2])]  # "a=" selects the empty value
        tok = self._next()
        if tok[0] is not _Tok.IDENT:
            self._fail("a value", tok)
        return [(tok[1], tok[2])]

    def _build(self, key: str, operator: Operator, values: list[tuple[str, int]]) -> Requirement:
        for value, pos in values:
            err = _value_error(value)
            if err is not None:
                raise SelectorParseError(self._text, pos, f'invalid label value "{value}": {err}')
        if operator in _INT_OPS:
            value, pos = values[0]
            if _parse_int64(value) is None:
                raise SelectorParseError(
                    self._text,
                    pos,
                    f'operator "{_OP_SPELLING[operator]}" needs an int64 value, got "{value}"',
                    expected="an integer",
                    found=value,
                )
        return Requirement._trusted(key, operator, (v for v, _ in values))


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
    requirements = _Parser(selector).parse()
    if not requirements:
        return _EVERYTHING
    sel = Selector.__new__(Selector)
    sel._init(tuple(sorted(requirements, key=_by_key)))
    return sel
