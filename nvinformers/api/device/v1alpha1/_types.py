"""The Python-facing GPU types: immutable views over the wire bytes.

``GPU`` keeps the object's serialized protobuf bytes plus its name, namespace and resource version
(decoded once, when the object arrives), and nothing else. Every other field is decoded from the
bytes when it is read. This is what lets an informer cache a GPU in about the size of its wire form
(a parsed protobuf message costs ~2.6 KB per GPU, a dataclass tree about the same), and lets the
cache hand the very same object to every reader: nothing in it can be changed.

* ``gpu.metadata``, ``gpu.spec`` and ``gpu.status`` each return a fresh view. The first read of a
  field other than name / namespace / resource_version decodes the bytes (about 2 µs); a view keeps
  what it decoded for as long as *you* hold it, so bind it to a name when reading several fields::

      status = gpu.status
      ready = meta.is_status_condition_true(status.conditions, "Ready")

* Every class here is immutable (:class:`nvinformers._frozen.Frozen`): assigning an attribute
  raises ``AttributeError``, mappings are read-only, sequences are tuples. ``copy.copy`` and
  ``copy.deepcopy`` return the object itself.
* :class:`ObjectMeta` and :class:`Condition` implement the protocols of the same names in
  :mod:`nvinformers.meta`, as the Kubernetes source's JSON-backed views do; ``GPUList.metadata``
  is :class:`nvinformers.meta.ListMeta`.
* ``to_proto()`` returns a new protobuf message that the caller owns and may change;
  ``GPU.from_proto(msg)`` serializes ``msg``, so later changes to ``msg`` do not leak into the GPU.
* Absent sub-messages read as defaults (empty strings, 0, None for timestamps, empty mappings and
  tuples); decoding never fails on a missing field.

Thread-safety: all objects are immutable and may be shared between threads freely.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, ClassVar, Final, Generic, Self, TypeVar

from google.protobuf.message import DecodeError, Message

from nvinformers._collector_pause import decode_all
from nvinformers._frozen import Frozen
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1._wire import (
    decode_gpu,
    malformed_gpu,
    rfc3339,
    set_ts,
    ts_to_datetime,
)
from nvinformers.meta import ListMeta, register_header_accessors

__all__ = [
    "GROUP",
    "VERSION",
    "API_VERSION",
    "KIND",
    "LIST_KIND",
    "RESOURCE",
    "FrozenMap",
    "ObjectMeta",
    "ListMeta",
    "Condition",
    "GPUSpec",
    "GPUStatus",
    "GPU",
    "GPUList",
]

GROUP = "device.nvidia.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "GPU"
LIST_KIND = "GPUList"
RESOURCE = "gpus"

_EMPTY_MAP: Mapping[str, str] = {}

M = TypeVar("M", bound=Message)


#: Fills a slot of a frozen object (its own ``__setattr__`` raises).
_init_slot: Final = object.__setattr__


class FrozenMap(Mapping[str, str], Frozen):
    """A read-only mapping over a protobuf map field or a dict (labels, annotations).

    It does not copy: it reads through to the decoded message it came from.
    """

    __slots__ = ("_data",)
    _data: Mapping[str, str]
    _mutable_copy = "dict(...)"

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        _init_slot(self, "_data", _EMPTY_MAP if data is None else data)

    def __getitem__(self, key: str) -> str:
        data: Mapping[str, str] = self._data
        if key in data:
            return data[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self.items())!r})"


class _MessageView(Frozen, Generic[M]):
    """A frozen view over one protobuf message it does not copy (``Condition``, ``GPUSpec``,
    ``GPUStatus``): equal to a view of the same class over an equal message; unhashable, as
    protobuf messages are."""

    __slots__ = ("_msg",)
    _msg: M
    _mutable_copy = "to_proto()"

    @classmethod
    def _wrap(cls, msg: M) -> Self:
        obj = cls.__new__(cls)
        _init_slot(obj, "_msg", msg)
        return obj

    def to_proto(self) -> M:
        """A new, mutable message of the view's type, owned by the caller."""
        out = type(self._msg)()
        out.CopyFrom(self._msg)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self._msg == other._msg

    __hash__ = None  # type: ignore[assignment]


class ObjectMeta(Frozen):
    """Kubernetes ``ObjectMeta`` over protobuf: implements :class:`nvinformers.meta.ObjectMeta`.

    name, namespace, resource_version, uid, generation, creation_timestamp, labels, annotations.
    Build one with keyword arguments, or read ``gpu.metadata``.
    """

    __slots__ = ("_msg", "_owner")
    _msg: pb.ObjectMeta | None
    _owner: GPU | None
    _mutable_copy = "to_proto()"

    def __init__(
        self,
        *,
        name: str = "",
        namespace: str = "",
        resource_version: str = "",
        uid: str = "",
        generation: int = 0,
        creation_timestamp: datetime | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        msg = pb.ObjectMeta()
        if name:
            msg.name = name
        if namespace:
            msg.namespace = namespace
        if resource_version:
            msg.resource_version = resource_version
        if uid:
            msg.uid = uid
        if generation:
            msg.generation = generation
        if creation_timestamp is not None:
            set_ts(msg.creation_timestamp, creation_timestamp)
        if labels:
            msg.labels.update(labels)
        if annotations:
            msg.annotations.update(annotations)
        _init_slot(self, "_msg", msg)
        _init_slot(self, "_owner", None)

    @classmethod
    def _wrap(cls, msg: pb.ObjectMeta) -> ObjectMeta:
        obj = cls.__new__(cls)
        _init_slot(obj, "_msg", msg)
        _init_slot(obj, "_owner", None)
        return obj

    def _message(self) -> pb.ObjectMeta:
        msg = self._msg
        if msg is None:
            owner = self._owner
            assert owner is not None  # a view has a message, an owner, or both
            msg = decode_gpu(owner._raw).object_meta
            _init_slot(self, "_msg", msg)
        return msg

    @property
    def name(self) -> str:
        owner = self._owner
        return owner._name if owner is not None else self._message().name

    @property
    def namespace(self) -> str:
        owner = self._owner
        return owner._namespace if owner is not None else self._message().namespace

    @property
    def resource_version(self) -> str:
        owner = self._owner
        return owner._resource_version if owner is not None else self._message().resource_version

    @property
    def uid(self) -> str:
        return self._message().uid

    @property
    def generation(self) -> int:
        return self._message().generation

    @property
    def creation_timestamp(self) -> datetime | None:
        msg = self._message()
        return (
            ts_to_datetime(msg.creation_timestamp) if msg.HasField("creation_timestamp") else None
        )

    @property
    def labels(self) -> FrozenMap:
        return FrozenMap(self._message().labels)

    @property
    def annotations(self) -> FrozenMap:
        return FrozenMap(self._message().annotations)

    def to_proto(self) -> pb.ObjectMeta:
        """A new, mutable ``ObjectMeta`` message owned by the caller."""
        out = pb.ObjectMeta()
        out.CopyFrom(self._message())
        return out

    def to_dict(self) -> dict[str, Any]:
        """Kubernetes JSON form (camelCase keys, empty fields omitted)."""
        out: dict[str, Any] = {"name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        msg = self._message()
        if msg.uid:
            out["uid"] = msg.uid
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        if msg.generation:
            out["generation"] = msg.generation
        if msg.HasField("creation_timestamp"):
            out["creationTimestamp"] = rfc3339(self.creation_timestamp)
        if msg.labels:
            out["labels"] = dict(sorted(msg.labels.items()))
        if msg.annotations:
            out["annotations"] = dict(sorted(msg.annotations.items()))
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectMeta):
            return NotImplemented
        return self._message() == other._message()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ObjectMeta(name={self.name!r}, namespace={self.namespace!r}, "
            f"resource_version={self.resource_version!r})"
        )


class Condition(_MessageView[pb.Condition]):
    """A ``metav1.Condition`` over protobuf: implements :class:`nvinformers.meta.Condition`.

    type, status ("True"/"False"/"Unknown"), observed_generation, last_transition_time (an aware
    UTC ``datetime``, or None when unset), reason, message.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        type: str,
        status: str,
        reason: str = "",
        message: str = "",
        observed_generation: int = 0,
        last_transition_time: datetime | None = None,
    ) -> None:
        msg = pb.Condition(type=type, status=status, reason=reason, message=message)
        if observed_generation:
            msg.observed_generation = observed_generation
        if last_transition_time is not None:
            set_ts(msg.last_transition_time, last_transition_time)
        _init_slot(self, "_msg", msg)

    @property
    def type(self) -> str:
        return self._msg.type

    @property
    def status(self) -> str:
        return self._msg.status

    @property
    def reason(self) -> str:
        return self._msg.reason

    @property
    def message(self) -> str:
        return self._msg.message

    @property
    def observed_generation(self) -> int:
        return self._msg.observed_generation

    @property
    def last_transition_time(self) -> datetime | None:
        msg = self._msg
        if not msg.HasField("last_transition_time"):
            return None
        return ts_to_datetime(msg.last_transition_time)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "status": self.status}
        if self.observed_generation:
            out["observedGeneration"] = self.observed_generation
        if self._msg.HasField("last_transition_time"):
            out["lastTransitionTime"] = rfc3339(self.last_transition_time)
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        return out

    def __repr__(self) -> str:
        return (
            f"Condition(type={self.type!r}, status={self.status!r}, reason={self.reason!r}, "
            f"message={self.message!r})"
        )


class GPUSpec(_MessageView[pb.GpuSpec]):
    """``GPUSpec``: ``uuid`` (format ``GPU-<hex uuid>``)."""

    __slots__ = ()

    def __init__(self, *, uuid: str = "") -> None:
        _init_slot(self, "_msg", pb.GpuSpec(uuid=uuid))

    @property
    def uuid(self) -> str:
        return self._msg.uuid

    def to_proto(self) -> pb.GpuSpec:
        return pb.GpuSpec(uuid=self._msg.uuid)

    def to_dict(self) -> dict[str, Any]:
        return {"uuid": self.uuid} if self.uuid else {}

    def __repr__(self) -> str:
        return f"GPUSpec(uuid={self.uuid!r})"


class GPUStatus(_MessageView[pb.GpuStatus]):
    """``GPUStatus``: ``conditions`` (a tuple of :class:`Condition`) and ``recommended_action``."""

    __slots__ = ()

    def __init__(
        self, *, conditions: Iterable[Condition] = (), recommended_action: str | None = None
    ) -> None:
        msg = pb.GpuStatus()
        for condition in conditions:
            msg.conditions.append(condition._msg)
        if recommended_action is not None:
            msg.recommended_action = recommended_action
        _init_slot(self, "_msg", msg)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        wrap = Condition._wrap
        return tuple(wrap(c) for c in self._msg.conditions)

    @property
    def recommended_action(self) -> str:
        return self._msg.recommended_action

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._msg.conditions:
            out["conditions"] = [c.to_dict() for c in self.conditions]
        if self.recommended_action:
            out["recommendedAction"] = self.recommended_action
        return out

    def __repr__(self) -> str:
        return (
            f"GPUStatus(conditions={self.conditions!r}, "
            f"recommended_action={self.recommended_action!r})"
        )


class GPU(Frozen):
    """A GPU of the Device API (kind ``GPU``, ``device.nvidia.com/v1alpha1``, cluster-scoped).

    An immutable view over the object's serialized bytes: see the module docstring for what is
    decoded when. Build one with :meth:`new`, :meth:`from_proto` or :meth:`from_bytes`.

    Attributes:
        kind: always ``"GPU"``.
        api_version: always ``"device.nvidia.com/v1alpha1"``.
        metadata: :class:`ObjectMeta` (name, namespace, resource_version, labels, ...).
        spec: :class:`GPUSpec` (``uuid``).
        status: :class:`GPUStatus` (``conditions``, ``recommended_action``).
    """

    # The wire bytes and the header decoded from them: a cached GPU costs its four slots (S6).
    __slots__ = ("_raw", "_name", "_namespace", "_resource_version")
    _raw: bytes
    _name: str
    _namespace: str
    _resource_version: str

    kind: ClassVar[str] = KIND
    api_version: ClassVar[str] = API_VERSION
    _mutable_copy = "to_proto()"

    def __init__(self) -> None:
        raise TypeError("build a GPU with GPU.new(...), GPU.from_proto() or GPU.from_bytes()")

    @classmethod
    def from_bytes(cls, raw: bytes) -> GPU:
        """Decode a serialized ``Gpu`` message.

        The whole message is validated here, so reading any field later never fails.

        Raises:
            MalformedObjectError: ``raw`` is not a valid serialized ``Gpu``.
        """
        return gpu_from_wire(bytes(raw))

    @classmethod
    def from_proto(cls, msg: pb.Gpu) -> GPU:
        """Snapshot a protobuf ``Gpu`` (later changes to ``msg`` do not affect the result)."""
        meta = msg.object_meta
        return _build_gpu(msg.SerializeToString(), meta.name, meta.namespace, meta.resource_version)

    @classmethod
    def new(
        cls,
        name: str,
        *,
        uuid: str = "",
        namespace: str = "",
        resource_version: str = "",
        uid: str = "",
        generation: int = 0,
        creation_timestamp: datetime | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        conditions: Iterable[Condition] = (),
        recommended_action: str | None = None,
    ) -> GPU:
        """Build a GPU from field values (for tests, fakes and providers)."""
        msg = pb.Gpu()
        msg.type_meta.kind = KIND
        msg.type_meta.api_version = API_VERSION
        msg.object_meta.CopyFrom(
            ObjectMeta(
                name=name,
                namespace=namespace,
                resource_version=resource_version,
                uid=uid,
                generation=generation,
                creation_timestamp=creation_timestamp,
                labels=labels,
                annotations=annotations,
            )._message()
        )
        msg.spec.uuid = uuid
        msg.status.CopyFrom(
            GPUStatus(conditions=conditions, recommended_action=recommended_action)._msg
        )
        return cls.from_proto(msg)

    def to_proto(self) -> pb.Gpu:
        """A new, mutable ``Gpu`` message owned by the caller (``type_meta`` filled in)."""
        msg = decode_gpu(self._raw)
        msg.type_meta.kind = KIND
        msg.type_meta.api_version = API_VERSION
        return msg

    def to_bytes(self) -> bytes:
        """The serialized ``Gpu`` message this view reads from (exactly as received)."""
        return self._raw

    def to_dict(self) -> dict[str, Any]:
        """Kubernetes JSON form, as ``kubectl get -o json`` would print it."""
        msg = decode_gpu(self._raw)
        out: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": ObjectMeta._wrap(msg.object_meta).to_dict(),
            "spec": GPUSpec._wrap(msg.spec).to_dict(),
        }
        status = GPUStatus._wrap(msg.status).to_dict()
        if status:
            out["status"] = status
        return out

    @property
    def metadata(self) -> ObjectMeta:
        # Name, namespace and resource version come from this GPU's decoded header; the rest is
        # decoded on first read and kept by the (short-lived) view only.
        meta = ObjectMeta.__new__(ObjectMeta)
        _init_slot(meta, "_msg", None)
        _init_slot(meta, "_owner", self)
        return meta

    @property
    def spec(self) -> GPUSpec:
        return GPUSpec._wrap(decode_gpu(self._raw).spec)

    @property
    def status(self) -> GPUStatus:
        return GPUStatus._wrap(decode_gpu(self._raw).status)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GPU):
            return NotImplemented
        if self._raw == other._raw:
            return True
        mine, theirs = decode_gpu(self._raw), decode_gpu(other._raw)
        mine.ClearField("type_meta")
        theirs.ClearField("type_meta")
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (GPU.from_bytes, (self._raw,))

    def __repr__(self) -> str:
        ns = f"namespace={self._namespace!r}, " if self._namespace else ""
        return f"GPU(name={self._name!r}, {ns}resource_version={self._resource_version!r})"


def _build_gpu(raw: bytes, name: str, namespace: str, resource_version: str) -> GPU:
    gpu = GPU.__new__(GPU)
    _init_slot(gpu, "_raw", raw)
    _init_slot(gpu, "_name", name)
    _init_slot(gpu, "_namespace", namespace)
    _init_slot(gpu, "_resource_version", resource_version)
    return gpu


_parse_gpu = pb.Gpu.FromString

# The cache reads a GPU's header from its slots: gpu.metadata builds a view on every read.
register_header_accessors(
    GPU,
    name=attrgetter("_name"),
    namespace=attrgetter("_namespace"),
    resource_version=attrgetter("_resource_version"),
)


def gpu_from_wire(raw: bytes) -> GPU:
    """``GPU.from_bytes`` for a ``bytes`` object the caller owns (the clientset's receive path).

    One full parse validates the whole message (so reading any field later never fails) and
    yields the header; the parsed message is dropped, only ``raw`` is kept.

    Raises:
        MalformedObjectError: ``raw`` is not a valid serialized ``Gpu``.
    """
    try:  # decode_gpu inlined: this runs for every listed GPU and every watch event
        meta = _parse_gpu(raw).object_meta
    except DecodeError as exc:
        raise malformed_gpu(exc) from exc
    return _build_gpu(raw, meta.name, meta.namespace, meta.resource_version)


def gpus_from_wire(raws: Collection[bytes]) -> tuple[GPU, ...]:
    """:func:`gpu_from_wire` for every item of a list response (see
    :mod:`nvinformers._collector_pause` for what a large list costs the collector).

    Raises:
        MalformedObjectError: an item is not a valid serialized ``Gpu``.
    """
    return decode_all(gpu_from_wire, raws)


@dataclass(frozen=True, slots=True, kw_only=True)
class GPUList:
    """A list of GPUs and the revision the snapshot was taken at."""

    items: tuple[GPU, ...] = ()
    metadata: ListMeta = field(default_factory=ListMeta)
    kind: ClassVar[str] = LIST_KIND
    api_version: ClassVar[str] = API_VERSION

    def to_proto(self) -> pb.GpuList:
        """A new, mutable ``GpuList`` message owned by the caller."""
        msg = pb.GpuList()
        msg.type_meta.kind = LIST_KIND
        msg.type_meta.api_version = API_VERSION
        if self.metadata.resource_version:
            msg.list_meta.resource_version = self.metadata.resource_version
        for item in self.items:
            msg.items.append(item.to_proto())
        return msg

    @classmethod
    def from_proto(cls, msg: pb.GpuList) -> GPUList:
        return cls(
            items=tuple(GPU.from_proto(item) for item in msg.items),
            metadata=ListMeta(resource_version=msg.list_meta.resource_version),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": LIST_KIND,
            "metadata": self.metadata.to_dict(),
            "items": [item.to_dict() for item in self.items],
        }
