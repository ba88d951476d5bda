"""Kubernetes API objects as immutable views over their JSON bytes.

A :class:`KubeObject` keeps the object's JSON exactly as the server sent it (a ``bytes``), plus a
small header decoded once, when the object arrives: name, namespace, resource version, uid and
labels. The decoded ``dict`` is dropped right away. Every other field is decoded from the bytes
when it is read. This is the GPU view's design (:mod:`nvinformers.api.device.v1alpha1.types`)
applied to JSON, and it is what makes a cached Node cost about the size of its JSON instead of
the 6-10x of a ``json.loads`` tree or the far larger official ``V1Node`` model.

* ``obj.metadata`` is a plain attribute (no decoding, no allocation): ``name``, ``namespace``
  (``""`` for cluster-scoped objects), ``resource_version``, ``uid`` and ``labels`` (a read-only
  :class:`Labels` mapping) are stored; ``annotations``, ``generation``, ``creation_timestamp``,
  ``deletion_timestamp``, ``finalizers`` and ``owner_references`` are decoded on each read.
* ``obj.get("status", "conditions")`` decodes the bytes and returns the value at that path (dict
  keys and list indexes), a fresh copy the caller owns; ``obj.to_dict()`` returns the whole object
  the same way, with ``kind`` and ``apiVersion`` filled in. Bind what you read to a name when
  reading several fields: each call decodes again.
* ``obj.conditions`` returns ``status.conditions`` as :class:`Condition` values, so the condition
  helpers of :mod:`nvinformers.meta` work on Nodes and Pods as they do on GPUs.
* Everything here is immutable: assigning an attribute raises ``AttributeError``, mappings are
  read-only, sequences are tuples; ``copy.copy`` and ``copy.deepcopy`` return the object itself.
  Objects pickle (as their bytes) and compare equal when their decoded contents are equal.
* Label maps are compact: objects whose labels have the same keys in the same order (the Nodes of
  a cluster, the Pods of a Deployment) share one interned key table, and each object stores only
  a tuple of values; common values are interned in a bounded table.

Malformed JSON, or an object without ``metadata.name``, raises
:class:`~nvinformers.errors.MalformedObjectError`.

Thread-safety: all objects are immutable and may be shared between threads freely. The interning
tables are module-level dicts whose races (under the GIL) can only cost a duplicate string.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, NoReturn, Self

from nvinformers.errors import MalformedObjectError

__all__ = [
    "KubeObject",
    "KubeList",
    "ObjectMeta",
    "ListMeta",
    "Labels",
    "Condition",
    "parse_list",
    "strip_managed_fields",
    "EMPTY_LABELS",
]

_EMPTY_MAPPING: Final[Mapping[str, str]] = MappingProxyType({})

# The C scanner of the stdlib decoder: ``scan(s, idx) -> (value, end)``. It lets the list and
# watch decoders find where each object starts and ends in the text, so an object's bytes are a
# slice of what the server sent (no re-serialization).
_DECODER: Final = json.JSONDecoder()
_scan: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]
_scanstring: Final[Callable[[str, int], tuple[str, int]]] = json.decoder.scanstring  # type: ignore[attr-defined]
_skip_ws: Final = re.compile(r"[ \t\n\r]*").match
_compact_dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: Distinct label key sets whose interned key table is shared (beyond it, tables are private).
_MAX_SCHEMAS: Final = 4096
#: Distinct label values interned (the table stops growing when full; lookups continue).
_MAX_VALUES: Final = 16384


def _malformed(message: str) -> NoReturn:
    raise MalformedObjectError(f"malformed Kubernetes object from the server: {message}")


class _Frozen:
    """Mixin: attribute assignment and deletion raise; copies are the object itself."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(
            f"{type(self).__name__} is immutable (cannot set {name!r}); "
            "use to_dict() for a mutable copy"
        )

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot delete {name!r})")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


_new = object.__new__


# ------------------------------------------------------------------------------------- labels


class _Schema:
    """An interned label key table shared by every label map with the same keys in order."""

    __slots__ = ("keys", "index")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.index: dict[str, int] = {key: i for i, key in enumerate(keys)}


_SCHEMAS: dict[tuple[str, ...], _Schema] = {}
_VALUES: dict[str, str] = {}


def _schema_for(keys: tuple[str, ...]) -> _Schema:
    schema = _SCHEMAS.get(keys)
    if schema is not None:
        return schema
    for key in keys:
        if type(key) is not str:  # JSON object keys always are; a caller's dict may not be
            _malformed(f"label key {key!r} is not a string")
    interned = tuple([sys.intern(key) for key in keys])
    schema = _Schema(interned)
    if len(_SCHEMAS) < _MAX_SCHEMAS:
        _SCHEMAS[interned] = schema
    return schema


def _intern_values(values: Iterable[Any]) -> tuple[str, ...]:
    table = _VALUES
    out: list[str] = []
    append = out.append
    for value in values:
        try:
            shared = table.get(value)
        except TypeError:  # unhashable: a list or an object
            shared = None
        if shared is None:
            if type(value) is not str:
                _malformed(f"label value {value!r} is not a string")
            if len(table) < _MAX_VALUES:
                table[value] = value
            shared = value
        append(shared)
    return tuple(out)


class Labels(Mapping[str, str]):
    """A read-only label map: a shared key table and this object's values.

    Supports everything a ``Mapping`` does (``get``, ``in``, iteration, ``items()``, equality
    with any mapping); :class:`nvinformers.labels.Selector` matches it directly. Build one with
    ``Labels.of({"k": "v"})``; read one from ``obj.metadata.labels``.
    """

    __slots__ = ("_schema", "_values")
    _schema: _Schema
    _values: tuple[str, ...]

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        schema, values = _split_labels(data or {})
        object.__setattr__(self, "_schema", schema)
        object.__setattr__(self, "_values", values)

    @classmethod
    def of(cls, data: Mapping[str, str] | None) -> Labels:
        """Return a label map with ``data``'s items (the shared empty map when empty).

        Raises:
            MalformedObjectError: a key or value is not a string.
        """
        if not data:
            return EMPTY_LABELS
        return _make_labels(data)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Labels is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Labels is immutable")

    def __getitem__(self, key: str) -> str:
        i = self._schema.index.get(key)
        if i is None:
            raise KeyError(key)
        return self._values[i]

    def get(self, key: str, default: Any = None) -> Any:
        i = self._schema.index.get(key)
        return default if i is None else self._values[i]

    def __contains__(self, key: object) -> bool:
        return key in self._schema.index

    def __iter__(self) -> Iterator[str]:
        return iter(self._schema.keys)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels) and other._schema is self._schema:
            return other._values == self._values
        if isinstance(other, Mapping):
            return dict(zip(self._schema.keys, self._values, strict=True)) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    def __reduce__(self) -> tuple[Any, tuple[dict[str, str]]]:
        return (Labels.of, (self.to_dict(),))

    def to_dict(self) -> dict[str, str]:
        """A new ``dict`` of the labels, owned by the caller."""
        return dict(zip(self._schema.keys, self._values, strict=True))

    def __repr__(self) -> str:
        return f"Labels({self.to_dict()!r})"


def _split_labels(data: Mapping[str, str]) -> tuple[_Schema, tuple[str, ...]]:
    return _schema_for(tuple(data)), _intern_values(data.values())


_set_labels_schema = Labels.__dict__["_schema"].__set__
_set_labels_values = Labels.__dict__["_values"].__set__


def _make_labels(data: Mapping[str, str]) -> Labels:
    obj = _new(Labels)
    _set_labels_schema(obj, _schema_for(tuple(data)))
    _set_labels_values(obj, _intern_values(data.values()))
    return obj


EMPTY_LABELS: Final[Labels] = _new(Labels)
_set_labels_schema(EMPTY_LABELS, _Schema(()))
_set_labels_values(EMPTY_LABELS, ())


# ----------------------------------------------------------------------------------- metadata


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

    ``last_transition_time`` and ``last_heartbeat_time`` (Nodes only) are aware datetimes, or
    None when absent.
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
        """Build a condition from its JSON form (missing fields read as defaults)."""
        return cls(
            type=str(data.get("type") or ""),
            status=str(data.get("status") or ""),
            reason=str(data.get("reason") or ""),
            message=str(data.get("message") or ""),
            observed_generation=int(data.get("observedGeneration") or 0),
            last_transition_time=_parse_time(data.get("lastTransitionTime")),
            last_heartbeat_time=_parse_time(data.get("lastHeartbeatTime")),
        )


class ObjectMeta(_Frozen):
    """The metadata of a :class:`KubeObject` (Kubernetes ``ObjectMeta``), read-only.

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
        return int(self._decode().get("generation") or 0)

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


_meta_slots = ObjectMeta.__dict__
_set_meta_name = _meta_slots["name"].__set__
_set_meta_namespace = _meta_slots["namespace"].__set__
_set_meta_rv = _meta_slots["resource_version"].__set__
_set_meta_uid = _meta_slots["uid"].__set__
_set_meta_labels = _meta_slots["labels"].__set__
_set_meta_raw = _meta_slots["_raw"].__set__


# ------------------------------------------------------------------------------------ objects


class KubeObject(_Frozen):
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
        return _build(data, decoded, kind, api_version, strip=False, nameless=False)

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
        return _build(raw, json.loads(raw), kind, api_version, strip=False, nameless=False)

    # ----------------------------------------------------------------------------- reading

    def to_bytes(self) -> bytes:
        """The object's JSON as received (list items lack ``kind`` and ``apiVersion``)."""
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


_obj_slots = KubeObject.__dict__
_set_obj_metadata = _obj_slots["metadata"].__set__
_set_obj_kind = _obj_slots["kind"].__set__
_set_obj_api_version = _obj_slots["api_version"].__set__


def _restore(raw: bytes, kind: str, api_version: str) -> KubeObject:
    return KubeObject.from_bytes(raw, kind=kind, api_version=api_version)


def _str_field(metadata: dict[str, Any], name: str) -> str:
    value = metadata.get(name)
    if value is None:
        return ""
    if type(value) is not str:
        _malformed(f"metadata.{name} is {value!r}, not a string")
    return value


def _build(
    raw: bytes | None,
    obj: Any,
    kind: str,
    api_version: str,
    *,
    strip: bool,
    nameless: bool,
) -> KubeObject:
    """Make a KubeObject from its decoded form and its bytes (None: serialize ``obj``).

    The hot path of every list item and watch event: keep it free of avoidable calls.
    """
    if type(obj) is not dict:
        _malformed(f"expected a JSON object, got {type(obj).__name__}")
    metadata = obj.get("metadata")
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
    if namespace:
        namespace = sys.intern(namespace)
    labels = metadata.get("labels")
    if labels:
        if type(labels) is not dict:
            _malformed("metadata.labels is not an object")
        label_map = _make_labels(labels)
    else:
        label_map = EMPTY_LABELS
    if strip and "managedFields" in metadata:
        del metadata["managedFields"]
        raw = None
    if raw is None:
        raw = _compact_dumps(obj).encode()
    obj_kind = obj.get("kind") or kind
    obj_api_version = obj.get("apiVersion") or api_version
    if type(obj_kind) is not str or type(obj_api_version) is not str:
        _malformed("kind and apiVersion must be strings")
    meta = _new(ObjectMeta)
    _set_meta_name(meta, name)
    _set_meta_namespace(meta, namespace)
    _set_meta_rv(meta, _str_field(metadata, "resourceVersion"))
    _set_meta_uid(meta, _str_field(metadata, "uid"))
    _set_meta_labels(meta, label_map)
    _set_meta_raw(meta, raw)
    out = _new(KubeObject)
    _set_obj_metadata(out, meta)
    _set_obj_kind(out, sys.intern(obj_kind))
    _set_obj_api_version(out, sys.intern(obj_api_version))
    return out


_WS_CHARS: Final = " \t\n\r"


def _ws(text: str, idx: int) -> int:
    """The index of the first non-whitespace character at or after ``idx``."""
    # The API server writes compact JSON: test one character before paying for a regex call.
    if text[idx] in _WS_CHARS:
        return _skip_ws(text, idx).end()  # type: ignore[union-attr]
    return idx


def _managed_fields_cut(text: str, start: int) -> tuple[int, int] | None:
    """Where ``metadata.managedFields`` sits in the object at ``text[start:]``, with one of its
    separating commas: cutting ``text[a:b]`` leaves valid JSON. None when not found."""
    try:
        idx = _ws(text, start)
        if text[idx] != "{":
            return None
        idx = _ws(text, idx + 1)
        while text[idx] == '"':
            key, idx = _scanstring(text, idx + 1)
            idx = _ws(text, idx)
            if text[idx] != ":":
                return None
            idx = _ws(text, idx + 1)
            if key == "metadata":
                return _cut_in_metadata(text, idx)
            _, idx = _scan(text, idx)  # kind and apiVersion come first: short values
            idx = _ws(text, idx)
            if text[idx] != ",":
                return None
            idx = _ws(text, idx + 1)
    except (StopIteration, IndexError, ValueError):
        return None
    return None


# Keys of a managedFields entry; fieldsV1 keys start with f:, k:, v:, i: or are ".".
_MANAGED_ENTRY_KEYS: Final = frozenset(
    ("manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource")
)


def _metadata_leads(obj: dict[str, Any]) -> bool:
    """True when only kind and apiVersion precede metadata (dicts keep the text's key order)."""
    for key in obj:
        if key == "metadata":
            return True
        if key not in ("kind", "apiVersion"):
            return False
    return False


def _managed_fields_by_layout(
    text: str, start: int, end: int, obj: dict[str, Any], metadata: dict[str, Any]
) -> tuple[int, int] | None:
    """Locate managedFields without decoding it again, when the object has the API server's
    layout (read from the decoded dicts, which keep the text's key order): only kind and
    apiVersion before metadata (checked by the caller), and managedFields last in metadata.

    Then the first ``,"managedFields":[`` is metadata's (no other ObjectMeta field can hold
    that text: labels and annotations map to strings, owner references have fixed keys), and
    it ends where metadata closes: at ``},"<next key>":``, which cannot occur inside
    managedFields (its entries have fixed keys; fieldsV1 keys are prefixed) unless the next key
    is one of those, which is checked. None sends the caller to the slower ways.
    """
    if next(reversed(metadata)) != "managedFields":
        return None
    keys = iter(obj)
    for key in keys:
        if key == "metadata":
            break
    following = next(keys, None)
    pos = text.find(',"managedFields":[', start, end)
    if pos < 0:
        return None
    if following is None:
        close = end - 2  # '...]}}': metadata closes, then the object
        if text[close] != "}" or text[end - 1] != "}":
            return None
    else:
        if following in _MANAGED_ENTRY_KEYS or following[:2] in ("f:", "k:", "v:", "i:"):
            return None
        close = text.find('},"' + following + '":', pos, end)
        if close < 0:
            return None
    if text[close - 1] != "]":
        return None
    return pos, close


def _managed_fields_fast(text: str, start: int, end: int, value: Any) -> tuple[int, int] | None:
    """Compact JSON with only kind and apiVersion before metadata (checked by the caller), so the
    first ``,"managedFields":`` in the object is metadata's; confirmed by its value. Cutting
    ``,"managedFields":<value>`` leaves valid JSON whatever follows. None sends the caller to
    the general walk."""
    pos = text.find(',"managedFields":', start, end)
    if pos < 0:
        return None
    try:
        found, value_end = _scan(text, pos + 17)
    except (StopIteration, ValueError):
        return None
    if text[value_end] not in ",}" or found != value:
        return None
    return pos, value_end


def _cut_in_metadata(text: str, idx: int) -> tuple[int, int] | None:
    if text[idx] != "{":
        return None
    idx = _ws(text, idx + 1)
    prev_comma = -1
    scan, scanstring, ws = _scan, _scanstring, _ws
    while text[idx] == '"':
        key_start = idx
        key, idx = scanstring(text, idx + 1)
        if text[idx] != ":":
            idx = ws(text, idx)
            if text[idx] != ":":
                return None
        idx += 1
        if text[idx] in _WS_CHARS:
            idx = ws(text, idx)
        _, value_end = scan(text, idx)
        idx = value_end
        if text[idx] in _WS_CHARS:
            idx = ws(text, idx)
        sep = text[idx]
        if key == "managedFields":
            if prev_comma >= 0:
                return prev_comma, value_end  # drop ',"managedFields":[...]'
            if sep == ",":
                return key_start, ws(text, idx + 1)  # drop '"managedFields":[...],'
            return key_start, value_end
        if sep != ",":
            return None
        prev_comma = idx
        idx += 1
        if text[idx] in _WS_CHARS:
            idx = ws(text, idx)
    return None


def _object_bytes(
    text: str, data: bytes | None, start: int, end: int, obj: Any, strip: bool
) -> bytes | None:
    """The bytes of the object at ``text[start:end]`` (``data``: ``text`` as bytes when the
    offsets agree, i.e. ASCII), cut without ``metadata.managedFields`` when ``strip``.

    Cutting the bytes costs a rescan of the metadata; re-serializing the object would cost as
    much as decoding it. Returns None when the cut cannot be located (the caller serializes).
    """
    if strip and type(obj) is dict:
        metadata = obj.get("metadata")
        if type(metadata) is dict and "managedFields" in metadata:
            cut = None
            if _metadata_leads(obj):
                # The first occurrence is metadata's only if nothing but strings precedes it.
                cut = _managed_fields_by_layout(text, start, end, obj, metadata)
                if cut is None:
                    cut = _managed_fields_fast(text, start, end, metadata["managedFields"])
            if cut is None:
                cut = _managed_fields_cut(text, start)
            if cut is None or not start < cut[0] < cut[1] < end:
                return None
            del metadata["managedFields"]
            return (text[start : cut[0]] + text[cut[1] : end]).encode()
    return data[start:end] if data is not None else text[start:end].encode()


def strip_managed_fields(obj: KubeObject) -> KubeObject:
    """Return ``obj`` without ``metadata.managedFields`` (``obj`` itself when it has none).

    Usable as an informer transform. The list-watch source already does this at ingest when
    built with ``strip_managed_fields=True`` (the default), at a lower cost.
    """
    raw = obj.metadata._raw
    if b'"managedFields"' not in raw:
        return obj
    text = raw.decode()
    decoded = json.loads(text)
    cut = _object_bytes(text, None, 0, len(text), decoded, True)
    return _build(cut, decoded, obj.kind, obj.api_version, strip=True, nameless=True)


# -------------------------------------------------------------------------------------- lists


@dataclass(frozen=True, slots=True, kw_only=True)
class ListMeta:
    """Kubernetes ``ListMeta``: the revision a list snapshot was taken at, and paging state."""

    resource_version: str = ""
    continue_: str = ""
    remaining_item_count: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeList:
    """A list response: ``items`` (in server order), ``metadata``, ``kind`` and ``api_version``."""

    items: tuple[KubeObject, ...] = ()
    metadata: ListMeta = field(default_factory=ListMeta)
    kind: str = ""
    api_version: str = ""


def _expect(text: str, idx: int, char: str) -> int:
    idx = _skip_ws(text, idx).end()  # type: ignore[union-attr]
    if text[idx] != char:
        _malformed(f"expected {char!r} at offset {idx}")
    return _skip_ws(text, idx + 1).end()  # type: ignore[union-attr]


def parse_list(body: bytes | str, *, strip: bool = True) -> KubeList:
    """Decode a list response (``{"kind": "NodeList", "metadata": {...}, "items": [...]}``).

    Each item keeps its own slice of ``body`` as its bytes; items without ``kind`` and
    ``apiVersion`` (the API server omits them) get the list's kind minus ``List`` and the list's
    API version.

    Args:
        body: the response body.
        strip: drop ``metadata.managedFields`` from items that have them.

    Raises:
        MalformedObjectError: the body is not a list response, or an item is malformed.
    """
    if isinstance(body, str):
        text = body
        data = body.encode()
    else:
        data = bytes(body)
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise MalformedObjectError(f"list response is not UTF-8: {exc}") from exc
    # Offsets in ``text`` are byte offsets too when the body is ASCII (the common case).
    ascii_body = len(text) == len(data)
    top: dict[str, Any] = {}
    spans: list[tuple[Any, int, int]] = []
    try:
        idx = _expect(text, 0, "{")
        if text[idx] != "}":
            while True:
                if text[idx] != '"':
                    _malformed(f"expected a key at offset {idx}")
                key, idx = _scanstring(text, idx + 1)
                idx = _expect(text, idx, ":")
                if key == "items" and text[idx] == "[":
                    idx = _skip_ws(text, idx + 1).end()  # type: ignore[union-attr]
                    if text[idx] == "]":
                        idx += 1
                    else:
                        while True:
                            start = idx
                            item, idx = _scan(text, idx)
                            spans.append((item, start, idx))
                            idx = _skip_ws(text, idx).end()  # type: ignore[union-attr]
                            sep = text[idx]
                            idx = _skip_ws(text, idx + 1).end()  # type: ignore[union-attr]
                            if sep == "]":
                                break
                            if sep != ",":
                                _malformed(f"expected ',' or ']' at offset {idx - 1}")
                else:
                    value, idx = _scan(text, idx)
                    top[key] = value
                idx = _skip_ws(text, idx).end()  # type: ignore[union-attr]
                sep = text[idx]
                idx = _skip_ws(text, idx + 1).end()  # type: ignore[union-attr]
                if sep == "}":
                    break
                if sep != ",":
                    _malformed(f"expected ',' or '}}' at offset {idx - 1}")
    except (StopIteration, IndexError, ValueError) as exc:
        raise MalformedObjectError(f"malformed list response from the server: {exc!r}") from exc
    list_kind = top.get("kind") or ""
    api_version = top.get("apiVersion") or ""
    metadata = top.get("metadata", {})
    if not isinstance(list_kind, str) or not isinstance(api_version, str):
        _malformed("list kind and apiVersion must be strings")
    if not isinstance(metadata, dict):
        _malformed("list metadata is not an object")
    item_kind = list_kind[:-4] if list_kind.endswith("List") else ""
    items: list[KubeObject] = []
    append = items.append
    offsets_data = data if ascii_body else None
    for item, start, end in spans:
        raw = _object_bytes(text, offsets_data, start, end, item, strip)
        append(_build(raw, item, item_kind, api_version, strip=strip, nameless=False))
    remaining = metadata.get("remainingItemCount")
    return KubeList(
        items=tuple(items),
        metadata=ListMeta(
            resource_version=str(metadata.get("resourceVersion") or ""),
            continue_=str(metadata.get("continue") or ""),
            remaining_item_count=remaining if isinstance(remaining, int) else None,
        ),
        kind=list_kind,
        api_version=api_version,
    )
