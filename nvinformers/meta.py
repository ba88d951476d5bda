"""Object-metadata protocols and the condition helpers of ``k8s.io/apimachinery/pkg/api/meta``.

The cache, listers and controllers are written against :class:`Object` (anything with a
Kubernetes-style ``metadata``), so the same machinery serves GPUs from the Device API and objects
from the Kubernetes API. Conditions are anything with ``type`` and ``status`` attributes.

Example (the Go SDK's quick start)::

    for gpu in gpus.list().items:
        ready = meta.is_status_condition_true(gpu.status.conditions, "Ready")
        print(f"GPU: {gpu.metadata.name} | Ready: {ready}")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar, runtime_checkable

__all__ = [
    "ObjectMetaLike",
    "Object",
    "ConditionLike",
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


@runtime_checkable
class Object(Protocol):
    """Any API object: something with a Kubernetes-style ``metadata``."""

    @property
    def metadata(self) -> ObjectMetaLike: ...


class ConditionLike(Protocol):
    """The part of ``metav1.Condition`` the helpers read."""

    @property
    def type(self) -> str: ...

    @property
    def status(self) -> str: ...


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
