"""Label keys and values: what Kubernetes accepts (``k8s.io/apimachinery/pkg/util/validation``).

:func:`key_error` and :func:`value_error` say why a key or value is invalid (or return None);
:func:`validate_label_key` and :func:`validate_label_value` raise with that reason. The
requirement constructor and the selector parser share them, so both reject the same text with the
same words. :func:`parse_int64` reads a value as ``strconv.ParseInt`` does, for ``>`` and ``<``.

Thread-safety: pure functions over immutable data.
"""

from __future__ import annotations

import re

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


def key_error(key: str) -> str | None:
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


def value_error(value: str) -> str | None:
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
    err = key_error(key)
    if err is not None:
        raise ValueError(f'invalid label key "{key}": {err}')


def validate_label_value(value: str) -> None:
    """Check that ``value`` is a valid label value (may be empty).

    Raises:
        ValueError: ``value`` is not valid; the message says why.
    """
    err = value_error(value)
    if err is not None:
        raise ValueError(f'invalid label value "{value}": {err}')


def parse_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: the integer, or None when ``text`` is not one."""
    if _INT_RE.fullmatch(text) is None:
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None
