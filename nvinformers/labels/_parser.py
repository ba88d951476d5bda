"""The label selector lexer and parser: text to requirements, as ``labels.Parse`` reads it.

:func:`parse_requirements` accepts exactly what Kubernetes accepts and raises
:class:`SelectorParseError` naming the selector, the 0-based position of the offending token and
what was expected there. Building the :class:`~nvinformers.labels.Selector` (and caching it) is
:func:`nvinformers.labels.parse`'s work.

Thread-safety: a parser lives for one call; everything shared is immutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final, NoReturn

from nvinformers.errors import NvInformersError
from nvinformers.labels._requirement import (
    INT_OPS,
    OP_SPELLING,
    SET_OPS,
    Operator,
    Requirement,
    trusted_requirement,
)
from nvinformers.labels._validation import key_error, parse_int64, value_error


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
# An operator's token is its spelling (``OP_SPELLING``, without the spaces around in / notin).
_OPERATORS: Final[Mapping[_Tok, Operator]] = {
    _Tok(spelling.strip()): op for op, spelling in OP_SPELLING.items()
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
        err = key_error(key)
        if err is not None:
            raise SelectorParseError(self._text, key_pos, f'invalid label key "{key}": {err}')
        after = self._peek()
        if after[0] is _Tok.END or after[0] is _Tok.COMMA:
            op = Operator.DOES_NOT_EXIST if negated else Operator.EXISTS
            return trusted_requirement(key, op, ())
        if negated:
            self._fail('"," or end of string', after)
        op_tok = self._next_operator()
        operator = _OPERATORS.get(op_tok[0])
        if operator is None:
            self._fail('an operator ("=", "==", "!=", "in", "notin", ">" or "<")', op_tok)
        values = self._set_values() if operator in SET_OPS else self._exact_value()
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
            err = value_error(value)
            if err is not None:
                raise SelectorParseError(self._text, pos, f'invalid label value "{value}": {err}')
        if operator in INT_OPS:
            value, pos = values[0]
            if parse_int64(value) is None:
                raise SelectorParseError(
                    self._text,
                    pos,
                    f'operator "{OP_SPELLING[operator]}" needs an int64 value, got "{value}"',
                    expected="an integer",
                    found=value,
                )
        return trusted_requirement(key, operator, (v for v, _ in values))


def parse_requirements(selector: str) -> tuple[Requirement, ...]:
    """The requirements of ``selector`` in the order written (empty for "").

    Raises:
        SelectorParseError: the text is not a valid selector.
    """
    return _Parser(selector).parse()
