"""How the fake Kubernetes API server stores objects, and its verbs over them: what get,
create, update (PUT and PATCH), delete and selectors mean, shared by the HTTP handlers and the
Python object API.

A :class:`Record` is one stored object: its JSON text without ``kind``/``apiVersion`` (the form
list items take on the wire, so a list is a join of stored bytes), the labels and selectable
fields its selectors read, and its revision. :func:`_encode` makes one from a dict; the registry
decodes a fresh dict (:meth:`Record.body`) whenever it changes an object, so stored records are
never mutated and are shared by every reader and every watch.

Like the API server's registry, :class:`Registry` keys objects by scope, enforces the write rules
(server-set metadata, generated names, the status subresource, preconditions, no-op writes),
admits creates only into existing namespaces, deletes a namespace with its objects, and retries
an update computed from a stale read (``GuaranteedUpdate``), so callers' code (a test's
``mutate``, a patch) runs outside the store's lock.

Thread-safety: records are immutable and the functions pure; every method of the registry is
thread-safe (the tracker serializes writes).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Self

from nvinformers import labels
from nvinformers.testing.kube_api._errors import (
    FakeKubeAPIError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from nvinformers.testing.kube_api._resources import Resource
from nvinformers.testing.tracker import (
    Key,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectTracker,
    StaleRevisionError,
)

__all__ = [
    "Registry",
    "Matcher",
    "Change",
    "Record",
    "dumps",
    "now",
    "new_object",
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
    after :func:`_encode`."""

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


def _encode(res: Resource, namespace: str, obj: Mapping[str, Any], revision: int) -> Record:
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


def _prepare_create(res: Resource, namespace: str, obj: Any) -> tuple[str, str, dict[str, Any]]:
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


def _keep_server_fields(
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


def _split_status(
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


# The API server refuses to delete these.
_UNDELETABLE: Final = frozenset({"default", "kube-system", "kube-public"})
_FIELD_TERM: Final = re.compile(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)")

#: A compiled label and field selector.
Matcher = Callable[[Record], bool]
#: How a write changes an object: a new dict from a fresh copy of the stored one.
Change = Callable[[dict[str, Any]], dict[str, Any]]


class Registry:
    """The verbs over one :class:`~nvinformers.testing.tracker.ObjectTracker` of
    :class:`Record`."""

    def __init__(self, tracker: ObjectTracker[Record]) -> None:
        self.tracker = tracker

    @staticmethod
    def key(res: Resource, namespace: str, name: str) -> Key:
        if res.namespaced and not namespace:
            raise bad_request(f"{res.plural} are namespaced: a namespace is required")
        return (res.plural, namespace if res.namespaced else "", name)

    def get(self, res: Resource, namespace: str, name: str) -> Record:
        try:
            return self.tracker.get(self.key(res, namespace, name))
        except ObjectNotFoundError:
            raise not_found(res.plural, name) from None

    def create(self, res: Resource, namespace: str, obj: Any, *, admit: bool) -> Record:
        namespace, name, prepared = _prepare_create(res, namespace, obj)
        if admit and res.namespaced:
            # NamespaceLifecycle admission: no objects in a namespace that does not exist.
            try:
                self.tracker.get(("namespaces", "", namespace))
            except ObjectNotFoundError:
                raise not_found("namespaces", namespace) from None
        key = self.key(res, namespace, name)
        try:
            return self.tracker.create(key, lambda rev: _encode(res, namespace, prepared, rev))
        except ObjectExistsError:
            raise already_exists(res.plural, name) from None

    def update(
        self, res: Resource, namespace: str, name: str, subresource: str | None, change: Change
    ) -> Record:
        """GuaranteedUpdate: read, compute the new state outside the lock, write if the object
        is still the one read, else retry on the newer one.

        ``subresource``: None applies ``change`` as is (the test API); ``""`` and ``"status"``
        apply the status subresource rule. A ``metadata.resourceVersion`` in the changed object
        that differs from the stored one is a precondition: 409 StaleRevisionError.
        """
        key = self.key(res, namespace, name)
        while True:
            current = self.get(res, namespace, name)
            before = current.body()
            desired = change(current.body())
            if not isinstance(desired, dict) or not isinstance(desired.get("metadata"), dict):
                raise bad_request("the object must be a JSON object with metadata")
            wanted = str(desired["metadata"].get("resourceVersion") or "")
            if wanted and wanted != str(current.revision):
                raise conflict(res.plural, name)
            if subresource is not None:
                desired = _split_status(current.body(), desired, status=subresource == "status")
            _keep_server_fields(name, key[1], before, desired)
            if desired == before:
                return current  # a write that changes nothing writes nothing
            try:
                return self.tracker.update(
                    key, functools.partial(_encode, res, key[1], desired), revision=current.revision
                )
            except StaleRevisionError:
                continue  # written in between: compute again from the newer object
            except ObjectNotFoundError:
                raise not_found(res.plural, name) from None

    def delete(self, res: Resource, namespace: str, name: str) -> Record:
        key = self.key(res, namespace, name)
        if res.plural == "namespaces":
            if name in _UNDELETABLE:
                raise FakeKubeAPIError(
                    403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not '
                    "be deleted", name=name, kind="namespaces",
                )  # fmt: skip
            self.get(res, "", name)
            # The namespace controller's work, done at once: its objects go first.
            for plural in ("pods", "events"):
                for child in self.tracker.keys(plural):
                    if child[1] == name:
                        with contextlib.suppress(ObjectNotFoundError):
                            self.tracker.delete(child)
        try:
            return self.tracker.delete(key)
        except ObjectNotFoundError:
            raise not_found(res.plural, name) from None

    def matcher(self, res: Resource, label_selector: str, field_selector: str) -> Matcher | None:
        try:
            selector = labels.parse(label_selector) if label_selector else None
        except ValueError as exc:
            raise bad_request(f"unable to parse requirement: {exc}") from exc
        wanted: builtins.list[tuple[str, str, bool]] = []
        for term in filter(None, (t.strip() for t in field_selector.split(","))):
            match = _FIELD_TERM.fullmatch(term)
            if match is None:
                raise bad_request(f"invalid field selector: {term!r}")
            field, op, value = match.groups()
            if field not in res.fields:
                raise bad_request(f'field label not supported: "{field}"')
            wanted.append((field, value, op != "!="))
        if selector is None and not wanted:
            return None
        matches = selector.matches if selector is not None else None

        def filt(record: Record) -> bool:
            if matches is not None and not matches(record.labels):
                return False
            fields = record.fields
            return all((fields.get(f, "") == v) is eq for f, v, eq in wanted)

        return filt

    def list(
        self, res: Resource, namespace: str, label_selector: str, field_selector: str
    ) -> tuple[builtins.list[Record], int]:
        """The matching objects, sorted by key, and the revision they were read at."""
        matches = self.matcher(res, label_selector, field_selector)
        return self.tracker.list(res.plural, namespace, matches)
