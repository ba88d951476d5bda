"""Kubernetes API objects as immutable views over their JSON bytes.

A :class:`KubeObject` keeps the object's JSON (a ``bytes``) plus a small header decoded once, when
the object arrives: name, namespace, resource version, uid and labels. The decoded ``dict`` is
dropped right away. Every other field is decoded from the bytes when it is read. This is the GPU
view's design (:mod:`nvinformers.api.device.v1alpha1._types`) applied to JSON, and it is what makes
a cached Node cost about the size of its JSON instead of the 6-10x of a ``json.loads`` tree or
the far larger official ``V1Node`` model.

* ``obj.metadata`` is a plain attribute (no decoding, no allocation): ``name``, ``namespace``
  (``""`` for cluster-scoped objects), ``resource_version``, ``uid`` and ``labels`` (a read-only
  :class:`~nvinformers.kube._label_tables.Labels` mapping) are stored; ``annotations``,
  ``generation``, ``creation_timestamp``, ``deletion_timestamp``, ``finalizers`` and
  ``owner_references`` are decoded on each read.
* ``obj.get("status", "conditions")`` decodes the bytes and returns the value at that path (dict
  keys and list indexes), a fresh copy the caller owns; ``obj.to_dict()`` returns the whole object
  the same way, with ``kind`` and ``apiVersion`` filled in. Bind what you read to a name when
  reading several fields: each call decodes again.
* ``obj.conditions`` returns ``status.conditions`` as :class:`Condition` values, so the condition
  helpers of :mod:`nvinformers.meta` work on Nodes and Pods as they do on GPUs.
* Everything here is immutable: assigning an attribute raises ``AttributeError``, mappings are
  read-only, sequences are tuples; ``copy.copy`` and ``copy.deepcopy`` return the object itself.
  Objects pickle (as their bytes) and compare equal when their decoded contents are equal.
* The bytes are the server's own for watch events and :meth:`KubeObject.from_bytes`; list items
  and objects whose ``managedFields`` could not be cut from the text are re-serialized as compact
  JSON (the same content).

A list response is a :class:`KubeList` (:func:`parse_list`); its ``metadata`` is
:class:`nvinformers.meta.ListMeta`, the one list metadata of nvinformers. The list-watch drops
``metadata.managedFields`` (the server-side-apply bookkeeping no controller reads, 20-30 % of a
typical object) at ingest by default; :func:`strip_managed_fields` does it for objects from
elsewhere, for example as an informer transform.

Malformed JSON, an object without ``metadata.name``, or a field of the wrong type raises
:class:`~nvinformers.errors.MalformedObjectError`.

Thread-safety: all objects are immutable and may be shared between threads freely.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, NoReturn

from nvinformers._frozen import Frozen
from nvinformers.errors import MalformedObjectError
from nvinformers.kube._label_tables import Labels
from nvinformers.kube._managed_fields_cut import object_bytes
from nvinformers.meta import ListMeta

__all__ = [
    "KubeObject",
    "ObjectMeta",
    "Condition",
    "from_decoded",
    "KubeList",
    "ListMeta",
    "parse_list",
    "strip_managed_fields",
]

_EMPTY_MAPPING: Final[Mapping[str, str]] = MappingProxyType({})
_compact_dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_set: Final = object.__setattr__


def _malformed(message: str) -> NoReturn:
    raise MalformedObjectError(f"malformed Kubernetes object from the server: {message}")


def _int_field(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key) or 0
    try:
        return int(value)
    except (TypeError, ValueError):
        _malformed(f"{where}.{key} is {value!r}, not an integer")


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One entry of ``status.conditions`` (Node, Pod and most other kinds).

    Implements :class:`nvinformers.meta.Condition`, plus ``last_heartbeat_time`` (Nodes only).
    ``last_transition_time`` and ``last_heartbeat_time`` are aware datetimes, or None when
    absent.
    """

    type: str
    status: str
    reason: str = ""
    message: str = ""
    observed_generation: int = 0
    last_transition_time: datetime | None = None
    last_heartbeat_time: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        """Build a condition from its JSON form (missing fields read as defaults).

        Raises:
            MalformedObjectError: ``observedGeneration`` is not a number.
        """
        return cls(
            type=str(data.get("type") or ""),
            status=str(data.get("status") or ""),
            reason=str(data.get("reason") or ""),
            message=str(data.get("message") or ""),
            observed_generation=_int_field(data, "observedGeneration", "condition"),
            last_transition_time=_parse_time(data.get("lastTransitionTime")),
            last_heartbeat_time=_parse_time(data.get("lastHeartbeatTime")),
        )


class ObjectMeta(Frozen):
    """The metadata of a :class:`KubeObject`: implements :class:`nvinformers.meta.ObjectMeta`.

    ``name``, ``namespace``, ``resource_version``, ``uid`` and ``labels`` are stored attributes
    (free to read: the cache reads them for every event). The other fields are decoded from the
    object's bytes on each read.
    """

    __slots__ = ("name", "namespace", "resource_version", "uid", "labels", "_raw")
    name: str
    namespace: str
    resource_version: str
    uid: str
    labels: Labels
    _raw: bytes

    def __init__(self) -> None:
        raise TypeError("ObjectMeta is read from obj.metadata; build objects with KubeObject")

    def _decode(self) -> dict[str, Any]:
        metadata = json.loads(self._raw).get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    @property
    def annotations(self) -> Mapping[str, str]:
        """The annotations, as a read-only mapping (decoded on each read)."""
        annotations = self._decode().get("annotations")
        if not annotations or not isinstance(annotations, dict):
            return _EMPTY_MAPPING
        return MappingProxyType(annotations)

    @property
    def generation(self) -> int:
        """``metadata.generation`` (0 when absent); MalformedObjectError when not a number."""
        return _int_field(self._decode(), "generation", "metadata")

    @property
    def creation_timestamp(self) -> datetime | None:
        return _parse_time(self._decode().get("creationTimestamp"))

    @property
    def deletion_timestamp(self) -> datetime | None:
        return _parse_time(self._decode().get("deletionTimestamp"))

    @property
    def finalizers(self) -> tuple[str, ...]:
        return tuple(self._decode().get("finalizers") or ())

    @property
    def owner_references(self) -> tuple[Mapping[str, Any], ...]:
        """Owner references, each a read-only mapping of its JSON fields (``kind``, ``name``...)."""
        refs = self._decode().get("ownerReferences") or ()
        return tuple(MappingProxyType(ref) for ref in refs if isinstance(ref, dict))

    def to_dict(self) -> dict[str, Any]:
        """The metadata's JSON form, a new ``dict`` owned by the caller."""
        return self._decode()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectMeta):
            return NotImplemented
        return self._raw == other._raw or self._decode() == other._decode()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        ns = f"namespace={self.namespace!r}, " if self.namespace else ""
        return f"ObjectMeta(name={self.name!r}, {ns}resource_version={self.resource_version!r})"


class KubeObject(Frozen):
    """A Kubernetes API object (a Node, a Pod, ...): an immutable view over its JSON bytes.

    See the module docstring for what is decoded when. Build one with :meth:`from_bytes` or
    :meth:`from_dict`; the list-watch source builds them for the informer.

    Attributes:
        metadata: :class:`ObjectMeta`.
        kind: ``"Node"``, ``"Pod"``, ... (filled in from the list's kind for list items, which
            the API server sends without it).
        api_version: ``"v1"``, ``"apps/v1"``, ...
    """

    __slots__ = ("metadata", "kind", "api_version")
    metadata: ObjectMeta
    kind: str
    api_version: str

    def __init__(self) -> None:
        raise TypeError("build a KubeObject with KubeObject.from_bytes() or .from_dict()")

    # -------------------------------------------------------------------------- construction

    @classmethod
    def from_bytes(
        cls,
        raw: bytes | bytearray | memoryview | str,
        *,
        kind: str = "",
        api_version: str = "",
    ) -> KubeObject:
        """Decode one object's JSON.

        Args:
            raw: the JSON text of one object.
            kind: the kind to assume when the JSON has none (list items have none).
            api_version: the API version to assume when the JSON has none.

        Raises:
            MalformedObjectError: ``raw`` is not a JSON object, or lacks ``metadata.name``.
        """
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        try:
            decoded = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedObjectError(
                f"malformed Kubernetes object from the server: {exc}"
            ) from exc
        return from_decoded(decoded, data, kind=kind, api_version=api_version)

    @classmethod
    def from_dict(
        cls, obj: Mapping[str, Any], *, kind: str = "", api_version: str = ""
    ) -> KubeObject:
        """Snapshot an object's JSON form (later changes to ``obj`` do not affect the result).

        Raises:
            MalformedObjectError: ``obj`` lacks ``metadata.name`` or is not JSON-serializable.
        """
        try:
            raw = _compact_dumps(obj).encode()
        except (TypeError, ValueError) as exc:
            raise MalformedObjectError(f"object is not JSON-serializable: {exc}") from exc
        return from_decoded(json.loads(raw), raw, kind=kind, api_version=api_version)

    # ----------------------------------------------------------------------------- reading

    def to_bytes(self) -> bytes:
        """The object's JSON (list items lack ``kind`` and ``apiVersion``; see the module doc)."""
        return self.metadata._raw

    def to_dict(self) -> dict[str, Any]:
        """The object's JSON form with ``kind`` and ``apiVersion``: a new dict the caller owns."""
        body: dict[str, Any] = json.loads(self.metadata._raw)
        if "kind" in body and "apiVersion" in body:
            return body
        out: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind}
        out.update(body)
        return out

    def get(self, *path: str | int, default: Any = None) -> Any:
        """Return the value at ``path`` (dict keys and list indexes), or ``default``.

        ``obj.get("status", "conditions", 0, "type")``; ``obj.get()`` is :meth:`to_dict`. The
        value is freshly decoded: the caller owns it and may change it.
        """
        value: Any = self.to_dict()
        for step in path:
            if isinstance(step, int) and not isinstance(step, bool):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return default
                value = value[step]
            elif isinstance(value, dict) and step in value:
                value = value[step]
            else:
                return default
        return value

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """``status.conditions`` as :class:`Condition` values (empty when absent)."""
        status = json.loads(self.metadata._raw).get("status")
        conditions = status.get("conditions") if isinstance(status, dict) else None
        if not isinstance(conditions, list):
            return ()
        return tuple(Condition.from_dict(c) for c in conditions if isinstance(c, dict))

    # ----------------------------------------------------------------------------- dunders

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KubeObject):
            return NotImplemented
        if self.kind != other.kind or self.api_version != other.api_version:
            return False
        mine, theirs = self.metadata._raw, other.metadata._raw
        return mine == theirs or self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, tuple[bytes, str, str]]:
        return (_restore, (self.metadata._raw, self.kind, self.api_version))

    def __repr__(self) -> str:
        meta = self.metadata
        ns = f"namespace={meta.namespace!r}, " if meta.namespace else ""
        return (
            f"KubeObject(kind={self.kind!r}, name={meta.name!r}, {ns}"
            f"resource_version={meta.resource_version!r})"
        )


def _restore(raw: bytes, kind: str, api_version: str) -> KubeObject:
    return KubeObject.from_bytes(raw, kind=kind, api_version=api_version)


def _str_field(metadata: dict[str, Any], name: str) -> str:
    value = metadata.get(name)
    if value is None:
        return ""
    if type(value) is not str:
        _malformed(f"metadata.{name} is {value!r}, not a string")
    return value


def from_decoded(
    decoded: Any,
    raw: bytes | None,
    *,
    kind: str = "",
    api_version: str = "",
    strip: bool = False,
    nameless: bool = False,
) -> KubeObject:
    """Make a :class:`KubeObject` from its decoded JSON and its bytes (the kube decoders' door).

    Args:
        decoded: the object's decoded JSON; read, and changed only by ``strip``.
        raw: its bytes, or None to serialize ``decoded``.
        kind: the kind to assume when ``decoded`` has none (list items have none).
        api_version: the API version to assume when ``decoded`` has none.
        strip: drop ``metadata.managedFields`` (the bytes are then re-serialized).
        nameless: accept an object without a name (a BOOKMARK's).

    Raises:
        MalformedObjectError: ``decoded`` is not an object with metadata and a name, or a header
            field has the wrong type.
    """
    if type(decoded) is not dict:
        _malformed(f"expected a JSON object, got {type(decoded).__name__}")
    metadata = decoded.get("metadata")
    if type(metadata) is not dict:
        _malformed("the object has no metadata")
    name = metadata.get("name")
    if type(name) is not str or not name:
        if not nameless:
            _malformed(f"metadata.name is {name!r} (a non-empty string is required)")
        name = ""
    namespace = metadata.get("namespace") or ""
    if type(namespace) is not str:
        _malformed(f"metadata.namespace is {namespace!r}, not a string")
    labels = metadata.get("labels")
    if labels and type(labels) is not dict:
        _malformed("metadata.labels is not an object")
    if strip and "managedFields" in metadata:
        del metadata["managedFields"]
        raw = None
    if raw is None:
        raw = _compact_dumps(decoded).encode()
    obj_kind = decoded.get("kind") or kind
    obj_api_version = decoded.get("apiVersion") or api_version
    if type(obj_kind) is not str or type(obj_api_version) is not str:
        _malformed("kind and apiVersion must be strings")
    meta = object.__new__(ObjectMeta)
    _set(meta, "name", name)
    _set(meta, "namespace", namespace)
    _set(meta, "resource_version", _str_field(metadata, "resourceVersion"))
    _set(meta, "uid", _str_field(metadata, "uid"))
    _set(meta, "labels", Labels.of(labels))
    _set(meta, "_raw", raw)
    out = object.__new__(KubeObject)
    _set(out, "metadata", meta)
    _set(out, "kind", obj_kind)
    _set(out, "api_version", obj_api_version)
    return out


def strip_managed_fields(obj: KubeObject) -> KubeObject:
    """Return ``obj`` without ``metadata.managedFields`` (``obj`` itself when it has none).

    Thread-safety: pure; ``obj`` is not changed.
    """
    raw = obj.to_bytes()
    if b'"managedFields"' not in raw:
        return obj
    text = raw.decode()
    decoded = json.loads(text)
    if "managedFields" not in decoded["metadata"]:
        return obj
    cut = object_bytes(text, 0, len(text), decoded, strip=True)
    return from_decoded(
        decoded, cut, kind=obj.kind, api_version=obj.api_version, strip=True, nameless=True
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeList:
    """A list response: ``items`` (in server order), ``metadata``, ``kind`` and ``api_version``."""

    items: tuple[KubeObject, ...] = ()
    metadata: ListMeta = field(default_factory=ListMeta)
    kind: str = ""
    api_version: str = ""


def _malformed_list(message: str) -> MalformedObjectError:
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
        raise _malformed_list(f"not UTF-8: {exc}") from exc
    try:
        doc: Any = json.loads(text)
    except ValueError as exc:
        raise _malformed_list(str(exc)) from exc
    if type(doc) is not dict:
        raise _malformed_list(f"expected a JSON object, got {type(doc).__name__}")
    list_kind = doc.get("kind") or ""
    api_version = doc.get("apiVersion") or ""
    metadata = doc.get("metadata", {})
    items = doc.get("items")
    items = [] if items is None else items  # Go's nil slice
    if type(list_kind) is not str or type(api_version) is not str:
        raise _malformed_list("kind and apiVersion must be strings")
    if type(metadata) is not dict:
        raise _malformed_list("metadata is not an object")
    if type(items) is not list:
        raise _malformed_list("items is not an array")
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
