"""How the fake Kubernetes API server stores objects, and the object rules it enforces.

A :class:`Record` is one stored object: its JSON text without ``kind``/``apiVersion`` (the form
list items take on the wire, so a list is a join of stored bytes), the labels and selectable
fields its selectors read, and its revision. :func:`encode` makes one from a dict; the server
decodes a fresh dict (:meth:`Record.body`) whenever it changes an object, so stored records are
never mutated and are shared by every reader and every watch.

The rules of writes live here too: which metadata a write cannot change, generated names, the
status subresource's rule, condition merging for the test helpers.

Thread-safety: records are immutable; the functions are pure.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Self

from nvinformers.testing.kube_api._errors import bad_request, invalid
from nvinformers.testing.kube_api._resources import Resource

__all__ = [
    "Record",
    "encode",
    "dumps",
    "now",
    "new_object",
    "prepare_create",
    "keep_server_fields",
    "split_status",
    "merge_conditions",
]

dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# The API server serializes Go structs: fields in declaration order.
_OBJECT_ORDER: Final = ("metadata", "spec", "status")
_METADATA_ORDER: Final = (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
)  # fmt: skip
# Metadata only the server sets: a write that changes it keeps the stored value.
_SERVER_SET: Final = ("uid", "creationTimestamp")
# Metadata maps and lists the API server omits when empty (Go's omitempty).
_OMIT_EMPTY: Final = ("labels", "annotations", "ownerReferences", "finalizers", "managedFields")
# Characters of generated name suffixes (no vowels, no look-alikes), as the API server uses.
_SUFFIX_CHARS: Final = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    """The current time as the API server writes timestamps (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Record:
    """One stored object (see the module docstring). Immutable by convention: never mutated
    after :func:`encode`."""

    __slots__ = ("resource", "namespace", "item", "labels", "fields", "revision", "_full")

    def __init__(
        self,
        resource: Resource,
        namespace: str,
        item: bytes,
        lbls: Mapping[str, str],
        fields: Mapping[str, str],
        revision: int,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.item = item
        self.labels = lbls
        self.fields = fields
        self.revision = revision
        self._full: bytes | None = None

    def full(self) -> bytes:
        """The object with kind and apiVersion, as GET and watch events carry it (cached)."""
        full = self._full
        if full is None:
            typemeta = self.resource.typemeta()
            full = typemeta[:-1] + b"}" if self.item == b"{}" else typemeta + self.item[1:]
            self._full = full
        return full

    def body(self) -> dict[str, Any]:
        """A new dict of the object without kind/apiVersion, owned by the caller."""
        obj = json.loads(self.item)
        assert isinstance(obj, dict)
        return obj

    def load(self) -> dict[str, Any]:
        """A new dict of the object with kind and apiVersion, owned by the caller."""
        obj = json.loads(self.full())
        assert isinstance(obj, dict)
        return obj

    def with_revision(self, revision: int) -> Self:
        """The same state stamped with ``revision`` (a DELETED event's object)."""
        body = self.body()
        body.setdefault("metadata", {})["resourceVersion"] = str(revision)
        item = dumps(body).encode()
        return type(self)(self.resource, self.namespace, item, self.labels, self.fields, revision)


def _ordered(data: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    out = {k: data[k] for k in order if k in data}
    out.update((k, v) for k, v in data.items() if k not in out)
    return out


def _omit_empty(meta: dict[str, Any]) -> None:
    for key in _OMIT_EMPTY:
        if meta.get(key) in ({}, []):
            del meta[key]


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(f"{what} must be a map of strings to strings")
    return value


def encode(res: Resource, namespace: str, obj: Mapping[str, Any], revision: int) -> Record:
    """Stamp ``obj`` (metadata required) with ``revision`` and store it in the API server's key
    order, without kind/apiVersion.

    Raises:
        FakeKubeAPIError: 422 when labels or annotations are not maps of strings.
    """
    body = _ordered(
        {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}, _OBJECT_ORDER
    )
    meta = _ordered(body["metadata"], _METADATA_ORDER)
    _omit_empty(meta)
    meta["resourceVersion"] = str(revision)
    body["metadata"] = meta
    lbls = _string_map(meta.get("labels"), "metadata.labels")
    _string_map(meta.get("annotations"), "metadata.annotations")
    item = dumps(body).encode()
    return Record(res, namespace, item, lbls, res.field_values(body, namespace), revision)


def new_object(
    kind: str,
    name: str,
    namespace: str,
    labels: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
) -> dict[str, Any]:
    """A new object's skeleton (kind, apiVersion, metadata)."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"kind": kind, "apiVersion": "v1", "metadata": meta}


def prepare_create(res: Resource, namespace: str, obj: Any) -> tuple[str, str, dict[str, Any]]:
    """Validate a new object and fill in what the server sets: a name from ``generateName``,
    the namespace, uid, creationTimestamp, and the defaults of its kind.

    Returns:
        (namespace, name, object), the object a new dict.

    Raises:
        FakeKubeAPIError: 400 when it is not an object with metadata or names another
            namespace than the URL, 422 when it has no valid name.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        raise bad_request("the object must be a JSON object with metadata")
    obj = json.loads(dumps(obj))  # a private copy
    meta = obj["metadata"]
    name = meta.get("name")
    if not name and isinstance(meta.get("generateName"), str) and meta["generateName"]:
        name = meta["generateName"] + "".join(secrets.choice(_SUFFIX_CHARS) for _ in range(5))
        meta["name"] = name
    if not isinstance(name, str) or not name or "/" in name:
        raise invalid(f"metadata.name: Invalid value: {name!r}: a name is required")
    if res.namespaced:
        stated = meta.get("namespace") or ""
        if namespace and stated and stated != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        namespace = namespace or stated
        if not namespace:
            raise bad_request(f"{res.plural} are namespaced: a namespace is required")
        meta["namespace"] = namespace
    else:
        namespace = ""
        meta.pop("namespace", None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now()
    meta.pop("deletionTimestamp", None)
    if res.kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    return namespace, name, obj


def keep_server_fields(
    name: str, namespace: str, before: Mapping[str, Any], after: dict[str, Any]
) -> None:
    """Restore what a write cannot change: name (400 if changed), namespace, uid,
    creationTimestamp and the stored resourceVersion (the write's own revision comes later).

    Raises:
        FakeKubeAPIError: 400 when ``after`` has no metadata or another name.
    """
    meta = after.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("the object must be a JSON object with metadata")
    if meta.get("name", name) != name:
        raise bad_request(f"metadata.name cannot change ({name!r})")
    meta["name"] = name
    _omit_empty(meta)
    for fixed in _SERVER_SET:
        if fixed in before["metadata"]:
            meta[fixed] = before["metadata"][fixed]
    if namespace:
        meta["namespace"] = namespace
    meta["resourceVersion"] = before["metadata"].get("resourceVersion")
    after.pop("kind", None)
    after.pop("apiVersion", None)


def split_status(
    current: dict[str, Any], desired: dict[str, Any], *, status: bool
) -> dict[str, Any]:
    """The status rule of the Node, Pod and Namespace strategies: through the ``status``
    subresource only ``status`` changes; through the main resource everything but ``status``.

    Returns the object to store (``current`` or ``desired``, modified).
    """
    if status:
        if "status" in desired:
            current["status"] = desired["status"]
        else:
            current.pop("status", None)
        return current
    if "status" in current:
        desired["status"] = current["status"]
    else:
        desired.pop("status", None)
    return desired


def merge_conditions(
    conditions: Mapping[str, str] | Iterable[Mapping[str, Any]], status: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``status["conditions"]`` with ``conditions`` set by type (``{"Ready": "False"}`` or
    condition dicts); a status change stamps ``lastTransitionTime``. Returns a new list."""
    current: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or ()]
    if isinstance(conditions, Mapping):
        updates: list[dict[str, Any]] = [{"type": t, "status": s} for t, s in conditions.items()]
    else:
        updates = [dict(c) for c in conditions]
    stamp = now()
    for update in updates:
        existing = next((c for c in current if c.get("type") == update.get("type")), None)
        if existing is None:
            update.setdefault("lastTransitionTime", stamp)
            current.append(update)
        else:
            if existing.get("status") != update.get("status"):
                update.setdefault("lastTransitionTime", stamp)
            existing.update(update)
    return current
