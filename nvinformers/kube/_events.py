"""Watch-event decoding: one line of a Kubernetes watch stream into an :class:`Event`.

Thread-safety: :func:`decode_event` holds no state; the events it returns are immutable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NoReturn

from nvinformers.errors import MalformedObjectError
from nvinformers.kube._event_line import split_event_line
from nvinformers.kube._managed_fields_cut import object_bytes
from nvinformers.kube._objects import KubeObject, from_decoded
from nvinformers.kube._status import error_from_status
from nvinformers.watch import Event, EventType

__all__ = ["decode_event"]

_EVENT_TYPES: Final[Mapping[str, EventType]] = {t.value: t for t in EventType}


def _malformed(message: str, line: bytes | str) -> NoReturn:
    raise MalformedObjectError(f"malformed watch event from the server ({message}): {line!r:.200}")


def decode_event(
    line: bytes, *, strip: bool = True, kind: str = "", api_version: str = ""
) -> Event[KubeObject]:
    """Decode one watch line (``{"type": "ADDED", "object": {...}}``) into an event.

    The object keeps its slice of ``line`` as its bytes when the line has the API server's
    layout (``type`` then ``object``); other layouts are decoded generically and re-serialized.

    Args:
        line: one line of the stream (a trailing newline is allowed).
        strip: drop ``metadata.managedFields``.
        kind: the kind to assume for objects without one.
        api_version: the API version to assume for objects without one.

    Returns:
        The event; BOOKMARK objects carry only ``metadata.resource_version`` (and annotations).

    Raises:
        StatusError: an ``ERROR`` event, mapped by :mod:`nvinformers.kube._status`
            (410 → :class:`~nvinformers.errors.ExpiredError`, ...).
        MalformedObjectError: the line is not a valid event.
    """
    try:
        text = line.decode()
    except UnicodeDecodeError:
        _malformed("not UTF-8", line)
    raw: bytes | None = None  # None: from_decoded serializes the object
    type_name: Any
    split = split_event_line(text)
    if split is not None:
        type_name, obj, start, end = split
        raw = object_bytes(text, start, end, obj, strip=strip)
    else:
        try:
            event: Any = json.loads(text)
        except ValueError as exc:
            _malformed(str(exc), line)
        if not isinstance(event, dict):
            _malformed("not a JSON object", line)
        type_name = event.get("type")
        obj = event.get("object")
    etype = _EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if etype is None:
        _malformed(f"unknown event type {type_name!r}", line)
    if etype is EventType.ERROR:
        raise error_from_status(obj)
    if obj is None:
        _malformed("no object", line)
    bookmark = etype is EventType.BOOKMARK
    return Event(
        etype,
        from_decoded(obj, raw, kind=kind, api_version=api_version, strip=strip, nameless=bookmark),
    )
