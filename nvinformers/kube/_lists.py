"""List responses of the Kubernetes API: :class:`KubeList` and :func:`parse_list`.

A list's ``metadata`` is :class:`nvinformers.meta.ListMeta` (re-exported here and by
:mod:`nvinformers.kube`), the one list metadata of nvinformers.

Thread-safety: the results are immutable; :func:`parse_list` holds no state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nvinformers.errors import MalformedObjectError
from nvinformers.kube._objects import KubeObject, from_decoded
from nvinformers.meta import ListMeta

__all__ = ["KubeList", "ListMeta", "parse_list"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeList:
    """A list response: ``items`` (in server order), ``metadata``, ``kind`` and ``api_version``."""

    items: tuple[KubeObject, ...] = ()
    metadata: ListMeta = field(default_factory=ListMeta)
    kind: str = ""
    api_version: str = ""


def _malformed(message: str) -> MalformedObjectError:
    return MalformedObjectError(f"malformed list response from the server: {message}")


def parse_list(body: bytes | str, *, strip: bool = True) -> KubeList:
    """Decode a list response (``{"kind": "NodeList", "metadata": {...}, "items": [...]}``).

    Items without ``kind`` and ``apiVersion`` (the API server omits them) get the list's kind
    minus ``List`` and the list's API version; each item's bytes are its compact JSON.

    Args:
        body: the response body (UTF-8).
        strip: drop ``metadata.managedFields`` from items that have them.

    Raises:
        MalformedObjectError: the body is not a list response, or an item is malformed.
    """
    try:
        text = body if isinstance(body, str) else bytes(body).decode()
    except UnicodeDecodeError as exc:
        raise _malformed(f"not UTF-8: {exc}") from exc
    try:
        doc: Any = json.loads(text)
    except ValueError as exc:
        raise _malformed(str(exc)) from exc
    if type(doc) is not dict:
        raise _malformed(f"expected a JSON object, got {type(doc).__name__}")
    list_kind = doc.get("kind") or ""
    api_version = doc.get("apiVersion") or ""
    metadata = doc.get("metadata", {})
    items = doc.get("items")
    items = [] if items is None else items  # Go's nil slice
    if type(list_kind) is not str or type(api_version) is not str:
        raise _malformed("kind and apiVersion must be strings")
    if type(metadata) is not dict:
        raise _malformed("metadata is not an object")
    if type(items) is not list:
        raise _malformed("items is not an array")
    item_kind = list_kind[:-4] if list_kind.endswith("List") else ""
    remaining = metadata.get("remainingItemCount")
    return KubeList(
        items=tuple(
            [
                from_decoded(item, None, kind=item_kind, api_version=api_version, strip=strip)
                for item in items
            ]
        ),
        metadata=ListMeta(
            resource_version=str(metadata.get("resourceVersion") or ""),
            continue_=str(metadata.get("continue") or ""),
            remaining_item_count=remaining if type(remaining) is int else None,
        ),
        kind=list_kind,
        api_version=api_version,
    )
