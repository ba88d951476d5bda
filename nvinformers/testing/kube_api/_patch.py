"""PATCH bodies for the fake Kubernetes API server: JSON merge, strategic merge and JSON patch.

* ``application/merge-patch+json``: RFC 7386 (lists replace).
* ``application/strategic-merge-patch+json``: a merge patch in which the keyed lists of the core
  types merge by their key instead of being replaced (``status.conditions`` and
  ``status.addresses`` by ``type``, ``spec.containers`` by ``name``, ``spec.taints`` by
  ``key``), ``{"$patch": "delete", <key>: ...}`` removes a list entry, and the other ``$``
  directives (``$setElementOrder``, ``$retainKeys``...) are accepted and ignored.
* ``application/json-patch+json``: RFC 6902 ``add``/``replace``/``remove``/``test``
  (:func:`nvinformers.testing._patch.apply_json_patch`, shared with the Device API fake).

Errors are the API server's: 415 for another content type, 400 for a body that does not
decode, 422 for a JSON patch that does not apply.

Thread-safety: pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from nvinformers.errors import BadRequestError
from nvinformers.testing._patch import apply_json_patch, apply_merge_patch
from nvinformers.testing.kube_api._errors import FakeKubeAPIError, bad_request, invalid

__all__ = ["MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "JSON_PATCH", "PATCH_TYPES", "apply"]

MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
PATCH_TYPES: Final = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# Strategic merge: list fields merged by a key instead of replaced (the core types' patch tags).
_MERGE_KEYS: Final[Mapping[tuple[str, ...], str]] = {
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("spec", "containers"): "name",
    ("spec", "taints"): "key",
}


def apply(content_type: str, current: dict[str, Any], body: bytes) -> dict[str, Any]:
    """``current`` (not modified) with the patch ``body`` of ``content_type`` applied.

    Raises:
        FakeKubeAPIError: 415 unsupported content type, 400 undecodable body, 422 a JSON patch
            that does not apply or a result that is not an object.
    """
    if content_type not in PATCH_TYPES:
        raise FakeKubeAPIError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}",
        )
    try:
        doc = json.loads(body) if body else None
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc
    if content_type == JSON_PATCH:
        if not isinstance(doc, list):
            raise bad_request("error decoding patch: a JSON patch must be a list of operations")
        try:
            patched = apply_json_patch(current, doc)
        except BadRequestError as exc:
            raise invalid(exc.message) from exc
    elif not isinstance(doc, dict):
        raise bad_request("error decoding patch: a merge patch must be a JSON object")
    elif content_type == MERGE_PATCH:
        patched = apply_merge_patch(current, doc)
    else:
        patched = _strategic(current, doc, ())
    if not isinstance(patched, dict):
        raise invalid("the patched object is not a JSON object")
    return patched


def _strategic(target: Any, patch: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(patch, dict):
        return patch
    out: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $setElementOrder, $retainKeys...: ordering hints, not modelled
        here = (*path, key)
        if value is None:
            out.pop(key, None)
        elif here in _MERGE_KEYS and isinstance(value, list):
            out[key] = _merge_keyed_list(out.get(key), value, _MERGE_KEYS[here])
        else:
            out[key] = _strategic(out.get(key), value, here)
    return out


def _merge_keyed_list(current: Any, patch: list[Any], key: str) -> list[Any]:
    items: list[Any] = list(current) if isinstance(current, list) else []
    for entry in patch:
        if not isinstance(entry, dict) or key not in entry:
            raise bad_request(f"strategic merge patch: list entries need the merge key {key!r}")
        position = next(
            (i for i, x in enumerate(items) if isinstance(x, dict) and x.get(key) == entry[key]),
            None,
        )
        if entry.get("$patch") == "delete":
            if position is not None:
                del items[position]
        elif position is None:
            items.append({k: v for k, v in entry.items() if not k.startswith("$")})
        else:
            items[position] = _strategic(items[position], entry, ())
    return items
