"""JSON patches for the fakes: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the
Kubernetes API server's strategic merge patch (for the fake Kubernetes API server); and, for the
fake Device API server's ``PatchGpu``, the Kubernetes JSON form of a GPU they apply to.

The patch type is a media type, as Kubernetes' ``types.PatchType`` and NVIDIA's device-apiserver
and Go client have it (the proto's comment says "json" / "merge", which that server refuses):

* ``application/merge-patch+json``: objects merge recursively, ``null`` deletes a key, anything
  else (including arrays such as ``status.conditions``) replaces. This is what the apiserver does
  for custom resources, which have no strategic merge.
* ``application/json-patch+json``: a list of operations ``add``, ``replace``, ``remove``,
  ``move``, ``copy`` and ``test`` with JSON pointers (``/metadata/labels/nvidia.com~1gpu.index``;
  ``-`` appends to an array).
* ``application/strategic-merge-patch+json`` (core types only, not ``PatchGpu``): a merge patch
  in which the keyed lists of the core types merge by their key instead of being replaced
  (``status.conditions`` and ``status.addresses`` by ``type``, ``spec.containers`` by ``name``,
  ``spec.taints`` by ``key``), ``{"$patch": "delete", <key>: ...}`` removes a list entry, and the
  other ``$`` directives (``$setElementOrder``, ``$retainKeys``...) are accepted and ignored.

The GPU's JSON form is that of ``kubectl get -o json`` with one difference: timestamps keep their
nanoseconds (protobuf's JSON form), so an untouched condition survives a round trip unchanged.
Unknown fields are dropped, as the device-apiserver (and the apiserver's pruning) drops them;
fields of the wrong type are refused.

Every problem raises :class:`~nvinformers.errors.BadRequestError` (INVALID_ARGUMENT on the wire).

Thread-safety: pure functions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from nvinformers.api.device.v1alpha1 import API_VERSION, KIND
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.errors import BadRequestError

__all__ = [
    "MERGE",
    "JSON",
    "gpu_to_json",
    "gpu_from_json",
    "apply_merge_patch",
    "apply_json_patch",
    "apply_strategic_merge_patch",
    "apply_patch",
    "STRATEGIC_MERGE",
]

#: The patch types (media types) ``PatchGpu`` accepts.
MERGE: Final = "application/merge-patch+json"
JSON: Final = "application/json-patch+json"
#: The patch type only the core types accept (the fake Kubernetes API server's).
STRATEGIC_MERGE: Final = "application/strategic-merge-patch+json"

# Strategic merge: list fields merged by a key instead of replaced (the core types' patch tags).
_MERGE_KEYS: Final[Mapping[tuple[str, ...], str]] = {
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("spec", "containers"): "name",
    ("spec", "taints"): "key",
}


def gpu_to_json(msg: pb.Gpu) -> dict[str, Any]:
    """The Kubernetes JSON form of ``msg`` (empty and unset fields omitted)."""
    meta = msg.object_meta
    metadata: dict[str, Any] = {"name": meta.name}
    created = meta.HasField("creation_timestamp") and meta.creation_timestamp.ToJsonString()
    optional: tuple[tuple[str, Any], ...] = (
        ("namespace", meta.namespace),
        ("uid", meta.uid),
        ("resourceVersion", meta.resource_version),
        ("generation", meta.generation),
        ("creationTimestamp", created),
        ("labels", dict(meta.labels)),
        ("annotations", dict(meta.annotations)),
    )
    metadata.update((key, value) for key, value in optional if value)  # unset: omitted
    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata}
    doc["spec"] = {"uuid": msg.spec.uuid} if msg.spec.uuid else {}
    status: dict[str, Any] = {}
    if msg.status.conditions:
        status["conditions"] = [_condition_to_json(c) for c in msg.status.conditions]
    if msg.status.HasField("recommended_action"):
        status["recommendedAction"] = msg.status.recommended_action
    doc["status"] = status
    return doc


def _condition_to_json(cond: pb.Condition) -> dict[str, Any]:
    out: dict[str, Any] = {"type": cond.type, "status": cond.status}
    if cond.HasField("observed_generation"):
        out["observedGeneration"] = cond.observed_generation
    if cond.HasField("last_transition_time"):
        out["lastTransitionTime"] = cond.last_transition_time.ToJsonString()
    if cond.reason:
        out["reason"] = cond.reason
    if cond.message:
        out["message"] = cond.message
    return out


def _bad(message: str) -> BadRequestError:
    return BadRequestError(message)


def _expect(value: Any, kind: type | tuple[type, ...], path: str) -> Any:
    # bool is an int in Python; JSON integers must not accept true/false.
    if isinstance(value, bool) and kind is int:
        raise _bad(f"{path}: expected an integer, got a boolean")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise _bad(f"{path}: expected {names}, got {type(value).__name__}")
    return value


def _field(obj: Mapping[str, Any], key: str, default: Any) -> Any:
    # Only absent or null means "default": a wrong-typed falsy value ({} for a list) must
    # still be reported.
    value = obj.get(key)
    return default if value is None else value


def _string_map(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    mapping = _expect(value, dict, path)
    for key, item in mapping.items():
        _expect(item, str, f"{path}.{key}")
    return dict(mapping)


def _set_timestamp(ts: Timestamp, value: Any, path: str) -> None:
    text = _expect(value, str, path)
    try:
        ts.FromJsonString(text)
    except ValueError as exc:
        raise _bad(f"{path}: invalid RFC 3339 timestamp {text!r}: {exc}") from None


def gpu_from_json(doc: Any) -> pb.Gpu:
    """Build a ``Gpu`` message from its JSON form (unknown fields are dropped).

    Raises:
        BadRequestError: wrong types, bad timestamps.
    """
    doc = _expect(doc, dict, "object")
    msg = pb.Gpu()
    msg.type_meta.kind = KIND
    msg.type_meta.api_version = API_VERSION
    meta_doc = _expect(_field(doc, "metadata", {}), dict, "metadata")
    meta = msg.object_meta
    for key, attr in (
        ("name", "name"),
        ("namespace", "namespace"),
        ("uid", "uid"),
        ("resourceVersion", "resource_version"),
    ):
        if meta_doc.get(key) is not None:
            setattr(meta, attr, _expect(meta_doc[key], str, f"metadata.{key}"))
    if meta_doc.get("generation") is not None:
        meta.generation = _expect(meta_doc["generation"], int, "metadata.generation")
    if meta_doc.get("creationTimestamp") is not None:
        _set_timestamp(
            meta.creation_timestamp, meta_doc["creationTimestamp"], "metadata.creationTimestamp"
        )
    meta.labels.update(_string_map(meta_doc.get("labels"), "metadata.labels"))
    meta.annotations.update(_string_map(meta_doc.get("annotations"), "metadata.annotations"))
    spec_doc = _expect(_field(doc, "spec", {}), dict, "spec")
    msg.spec.uuid = _expect(_field(spec_doc, "uuid", ""), str, "spec.uuid")
    status_doc = _expect(_field(doc, "status", {}), dict, "status")
    conditions = _expect(_field(status_doc, "conditions", []), list, "status.conditions")
    for index, item in enumerate(conditions):
        path = f"status.conditions[{index}]"
        cond_doc = _expect(item, dict, path)
        cond = msg.status.conditions.add()
        for key in ("type", "status", "reason", "message"):
            setattr(cond, key, _expect(_field(cond_doc, key, ""), str, f"{path}.{key}"))
        if cond_doc.get("observedGeneration") is not None:
            cond.observed_generation = _expect(
                cond_doc["observedGeneration"], int, f"{path}.observedGeneration"
            )
        if cond_doc.get("lastTransitionTime") is not None:
            _set_timestamp(
                cond.last_transition_time,
                cond_doc["lastTransitionTime"],
                f"{path}.lastTransitionTime",
            )
    if status_doc.get("recommendedAction") is not None:
        msg.status.recommended_action = _expect(
            status_doc["recommendedAction"], str, "status.recommendedAction"
        )
    return msg


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: ``target`` merged with ``patch`` (neither is modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def apply_strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """``target`` (at ``path`` in the object) merged with the strategic merge ``patch`` (neither
    is modified).

    Raises:
        BadRequestError: an entry of a keyed list without its merge key.
    """
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
            out[key] = apply_strategic_merge_patch(out.get(key), value, here)
    return out


def _merge_keyed_list(current: Any, patch: list[Any], key: str) -> list[Any]:
    items: list[Any] = list(current) if isinstance(current, list) else []
    for entry in patch:
        if not isinstance(entry, dict) or key not in entry:
            raise _bad(f"strategic merge patch: list entries need the merge key {key!r}")
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
            items[position] = apply_strategic_merge_patch(items[position], entry)
    return items


def _pointer(path: Any) -> list[str]:
    text = _expect(path, str, "json patch path")
    if text == "":
        return []
    if not text.startswith("/"):
        raise _bad(f'json patch path "{text}" must be empty or start with "/"')
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _bad(f'json patch path "{path}": "{token}" is not an array index')
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise _bad(f'json patch path "{path}": index {index} is out of range')
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise _bad(f'json patch path "{path}": "{token}" does not exist')
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, for_add=False)]
        else:
            raise _bad(f'json patch path "{path}": "{token}" is not an object or array')
    return node


def _get(doc: Any, tokens: list[str], path: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _bad(f'json patch path "{path}" does not exist')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, for_add=False)]
    raise _bad(f'json patch path "{path}": parent is not an object or array')


def apply_json_patch(target: Any, operations: Any) -> Any:
    """Apply RFC 6902 operations (``add``, ``replace``, ``remove``, ``move``, ``copy``,
    ``test``) to a copy of ``target`` and return it.

    Raises:
        BadRequestError: malformed operations, missing paths, a failed ``test``, or an
            unknown operation.
    """
    ops = _expect(operations, list, "json patch")
    doc = copy.deepcopy(target)
    for number, item in enumerate(ops):
        op_doc = _expect(item, dict, f"json patch operation {number}")
        op = op_doc.get("op")
        path = str(op_doc.get("path"))
        tokens = _pointer(op_doc.get("path"))
        if op in ("add", "replace", "test") and "value" not in op_doc:
            raise _bad(f"json patch operation {number} ({op}) needs a value")
        if op in ("move", "copy"):
            source = str(op_doc.get("from"))
            from_tokens = _pointer(op_doc.get("from"))
            value = copy.deepcopy(_get(doc, from_tokens, source))
            if op == "move":
                if tokens[: len(from_tokens)] == from_tokens and tokens != from_tokens:
                    raise _bad(f'json patch: cannot move "{source}" into itself ("{path}")')
                doc = _write(doc, "remove", from_tokens, source, None)
            doc = _write(doc, "add", tokens, path, value)
            continue
        value = copy.deepcopy(op_doc.get("value"))
        if op == "test":
            if _get(doc, tokens, path) != value:
                raise _bad(f'json patch test failed at "{path}"')
            continue
        if op not in ("add", "replace", "remove"):
            raise _bad(
                f"json patch operation {number}: unsupported op {op!r} "
                "(supported: add, replace, remove, move, copy, test)"
            )
        doc = _write(doc, op, tokens, path, value)
    return doc


def _write(doc: Any, op: str, tokens: list[str], path: str, value: Any) -> Any:
    """One ``add``, ``replace`` or ``remove`` at ``tokens``; returns the (new) document."""
    if not tokens:
        if op == "remove":
            raise _bad("json patch: cannot remove the whole document")
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if op != "add" and last not in parent:
            raise _bad(f'json patch path "{path}" does not exist')
        if op == "remove":
            del parent[last]
        else:
            parent[last] = value
    elif isinstance(parent, list):
        index = _index(parent, last, path, for_add=op == "add")
        if op == "add":
            parent.insert(index, value)
        elif op == "replace":
            parent[index] = value
        else:
            del parent[index]
    else:
        raise _bad(f'json patch path "{path}": parent is not an object or array')
    return doc


def apply_patch(current: pb.Gpu, patch_type: str, data: bytes) -> pb.Gpu:
    """Apply a patch of type :data:`MERGE` or :data:`JSON` (``data``, JSON text) to ``current``.

    Returns:
        The desired object (server-managed fields as the patch left them; the storage
        checks the resource version and uid and restores the rest).

    Raises:
        BadRequestError: unsupported patch type, invalid JSON, or a patch that cannot apply.
    """
    if patch_type not in (MERGE, JSON):
        # The device-apiserver's wording ("unsupported media type:" is the prefix its Go client
        # maps to 415), plus what is supported.
        raise _bad(f"unsupported media type: patch type: {patch_type} (supported: {MERGE}, {JSON})")
    try:
        body = json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"patch data is not valid JSON: {exc}") from None
    doc = gpu_to_json(current)
    if patch_type == MERGE:
        if not isinstance(body, dict):
            raise _bad("a merge patch must be a JSON object")
        patched = apply_merge_patch(doc, body)
    else:
        patched = apply_json_patch(doc, body)
    return gpu_from_json(patched)
