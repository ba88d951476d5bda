"""What every API object shares: metadata, conditions, and how the cache reads an object's header.

The peer of ``k8s.io/apimachinery``'s ``pkg/apis/meta/v1`` types and ``pkg/api/meta`` helpers. Each
concept is defined here once: :class:`ObjectMeta` and :class:`Condition` (protocols, implemented by
the protobuf-backed views of :mod:`nvinformers.api.device.v1alpha1` and the JSON-backed views of
:mod:`nvinformers.kube`), :class:`ListMeta` (one class for both), the header accessors and the
condition helpers. The cache, listers and controllers are written against :class:`Object` (anything
with a Kubernetes-style ``metadata``; :class:`ObjectMetaLike` is the part they read), so the same
machinery serves GPUs, Kubernetes objects and the official client's models.

Header accessors: the cache reads an object's name, namespace and resource version several times
per event (keys, revision checks, the namespace index), through ``obj.metadata`` unless the class
registered readers of its own, as ``GPU`` does (its ``metadata`` is a view built on each read)::

    register_header_accessors(
        GPU,
        name=operator.attrgetter("_name"),
        namespace=operator.attrgetter("_namespace"),
        resource_version=operator.attrgetter("_resource_version"),
    )

Registered readers buy S1 (client CPU per watch event: +11 % and +34 % without them, GPUs read
through ``metadata`` in two alternating A/B runs) and S2 (client CPU from list to synced: +19 to
+30 % at 100,000 GPUs in three runs, +26 % at 10,000); see ``benchmarks/README.md``.

Example (the Go SDK's quick start)::

    for gpu in gpus.list().items:
        ready = meta.is_status_condition_true(gpu.status.conditions, "Ready")
        print(f"GPU: {gpu.metadata.name} | Ready: {ready}")
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

__all__ = [
    "ObjectMetaLike",
    "ObjectMeta",
    "Object",
    "ListMeta",
    "ConditionLike",
    "Condition",
    "HeaderAccessors",
    "register_header_accessors",
    "header_accessors",
    "find_status_condition",
    "is_status_condition_true",
    "is_status_condition_false",
    "is_status_condition_present_and_equal",
    "CONDITION_TRUE",
    "CONDITION_FALSE",
    "CONDITION_UNKNOWN",
]

CONDITION_TRUE = "True"
CONDITION_FALSE = "False"
CONDITION_UNKNOWN = "Unknown"


class ObjectMetaLike(Protocol):
    """The part of ``metav1.ObjectMeta`` the cache relies on (read-only)."""

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def resource_version(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str] | None: ...


class ObjectMeta(ObjectMetaLike, Protocol):
    """Kubernetes ``ObjectMeta``, read-only: what every object's metadata has in nvinformers.

    Implemented by :class:`nvinformers.api.device.v1alpha1.ObjectMeta` (over a GPU's protobuf
    bytes; buildable, with ``to_proto()``) and :class:`nvinformers.kube.ObjectMeta` (over an
    object's JSON; with ``deletion_timestamp``, ``finalizers`` and ``owner_references`` too).

    Attributes:
        name, namespace, resource_version: ``namespace`` is ``""`` for cluster-scoped objects.
        uid, generation: ``""`` and 0 when absent.
        creation_timestamp: an aware UTC ``datetime``, or None when absent.
        labels, annotations: read-only mappings.
    """

    @property
    def uid(self) -> str: ...

    @property
    def generation(self) -> int: ...

    @property
    def creation_timestamp(self) -> datetime | None: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def annotations(self) -> Mapping[str, str]: ...

    def to_dict(self) -> dict[str, Any]:
        """The Kubernetes JSON form (camelCase keys), a new ``dict`` owned by the caller."""
        ...


@runtime_checkable
class Object(Protocol):
    """Any API object: something with a Kubernetes-style ``metadata``."""

    @property
    def metadata(self) -> ObjectMetaLike: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ListMeta:
    """Kubernetes ``ListMeta``: the revision a list snapshot was taken at, and paging state.

    The one list metadata of nvinformers: ``GPUList.metadata`` and ``KubeList.metadata``. The
    Device API sends the resource version only.

    Attributes:
        resource_version: the revision the snapshot was taken at (watch from it).
        continue_: the token of the next page (``""``: the last page).
        remaining_item_count: items after this page, when the server says; else None.
    """

    resource_version: str = ""
    continue_: str = ""
    remaining_item_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The Kubernetes JSON form (empty fields omitted), a new ``dict``."""
        out: dict[str, Any] = {}
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        if self.continue_:
            out["continue"] = self.continue_
        if self.remaining_item_count is not None:
            out["remainingItemCount"] = self.remaining_item_count
        return out


class ConditionLike(Protocol):
    """The part of ``metav1.Condition`` the helpers read."""

    @property
    def type(self) -> str: ...

    @property
    def status(self) -> str: ...


class Condition(ConditionLike, Protocol):
    """A status condition (``metav1.Condition``), read-only: what every condition here has.

    Implemented by :class:`nvinformers.api.device.v1alpha1.Condition` (a view over a GPU's
    protobuf; buildable, with ``to_proto()`` and ``to_dict()``) and
    :class:`nvinformers.kube.Condition` (Nodes, Pods, ...; with ``last_heartbeat_time`` too).

    Attributes:
        type: ``"Ready"``, ...
        status: ``"True"``, ``"False"`` or ``"Unknown"``.
        reason: a CamelCase machine-readable reason (``""`` when absent).
        message: a human-readable message (``""`` when absent).
        observed_generation: the generation the condition was set for (0 when absent).
        last_transition_time: an aware UTC ``datetime``, or None when absent.
    """

    @property
    def reason(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def observed_generation(self) -> int: ...

    @property
    def last_transition_time(self) -> datetime | None: ...


# ----------------------------------------------------------------------------- header accessors

#: A header reader: ``reader(obj)`` returns the object's name, namespace or resource version.
HeaderReader = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class HeaderAccessors:
    """The readers of an object's name, namespace and resource version (see the module doc).

    Attributes:
        name, namespace, resource_version: ``reader(obj) -> value``.
        direct: True when the readers were registered for the class (they read the object
            itself); False for the generic ones, which read ``obj.metadata``.
    """

    name: HeaderReader
    namespace: HeaderReader
    resource_version: HeaderReader
    direct: bool


_GENERIC: Final = HeaderAccessors(
    attrgetter("metadata.name"),
    attrgetter("metadata.namespace"),
    attrgetter("metadata.resource_version"),
    False,
)
#: Classes seen at most (a program that makes classes without end must not grow the table).
_MAX_CLASSES: Final = 1024
# Registered classes; written under _registry_lock, read freely (a dict read is atomic).
_registered: dict[type, HeaderAccessors] = {}
_registry_lock = threading.Lock()


class _ByClass(dict[type, HeaderAccessors]):
    """Class → its accessors: the registered ones of the class or its nearest registered base,
    else the generic ones. Filled on the first lookup of a class (``__missing__``), so a hit is
    one dict lookup in C. Written without a lock: racing threads compute the same value."""

    __slots__ = ()

    def __missing__(self, cls: type) -> HeaderAccessors:
        accessors = next((_registered[b] for b in cls.__mro__ if b in _registered), _GENERIC)
        if len(self) < _MAX_CLASSES:
            self[cls] = accessors
        return accessors


_by_class: Final = _ByClass()

#: ``header_accessors(cls)`` returns the :class:`HeaderAccessors` for instances of ``cls``: the
#: registered ones (of ``cls`` or its nearest registered base class), else the generic readers
#: through ``metadata``. A bound ``dict`` lookup (no Python call): the cache calls it for every
#: event. Thread-safety: safe from any thread.
header_accessors: Final[Callable[[type], HeaderAccessors]] = _by_class.__getitem__


def register_header_accessors(
    cls: type,
    *,
    name: HeaderReader,
    namespace: HeaderReader,
    resource_version: HeaderReader,
) -> None:
    """Declare how the cache reads the name, namespace and resource version of ``cls`` objects.

    The cache (key functions, revision checks, the namespace index) then calls these readers on
    instances of ``cls`` and its subclasses instead of reading ``obj.metadata``. Each reader must
    return what ``obj.metadata.<field>`` would (a ``str``; ``""`` for no namespace), be pure and
    fast, and not raise for any instance. Registering a class again replaces its readers. Register
    at import time, next to the class: objects seen before are read the old way until then.

    Thread-safety: safe from any thread.

    Args:
        cls: the class.
        name, namespace, resource_version: ``reader(obj) -> str``, typically
            ``operator.attrgetter("<attribute>")`` (a C call).

    Raises:
        TypeError: ``cls`` is not a class, or a reader is not callable.
    """
    if not isinstance(cls, type):
        raise TypeError(f"header accessors are registered for a class, got {cls!r}")
    readers = {"name": name, "namespace": namespace, "resource_version": resource_version}
    for field_name, reader in readers.items():
        if not callable(reader):
            raise TypeError(f"{cls.__name__}'s {field_name} reader is not callable: {reader!r}")
    with _registry_lock:
        _registered[cls] = HeaderAccessors(name, namespace, resource_version, True)
        _by_class.clear()  # classes looked up before are looked up again


# ----------------------------------------------------------------------------- condition helpers

C = TypeVar("C", bound=ConditionLike)


def find_status_condition(conditions: Iterable[C] | None, condition_type: str) -> C | None:
    """Return the first condition of ``condition_type``, or None when absent."""
    if conditions is None:
        return None
    for condition in conditions:
        if condition.type == condition_type:
            return condition
    return None


def is_status_condition_present_and_equal(
    conditions: Iterable[ConditionLike] | None, condition_type: str, status: str
) -> bool:
    """True when a condition of ``condition_type`` exists with exactly ``status``."""
    condition = find_status_condition(conditions, condition_type)
    return condition is not None and condition.status == status


def is_status_condition_true(
    conditions: Iterable[ConditionLike] | None, condition_type: str
) -> bool:
    """True when the condition exists with status ``"True"`` (absent or Unknown → False)."""
    return is_status_condition_present_and_equal(conditions, condition_type, CONDITION_TRUE)


def is_status_condition_false(
    conditions: Iterable[ConditionLike] | None, condition_type: str
) -> bool:
    """True when the condition exists with status ``"False"`` (absent or Unknown → False)."""
    return is_status_condition_present_and_equal(conditions, condition_type, CONDITION_FALSE)
