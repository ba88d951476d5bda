"""The resources the fake Kubernetes API server serves: names, kinds, scope, selectable fields.

One :class:`Resource` per core/v1 resource. Discovery (:mod:`._discovery`), routing, field
selectors and the tables (:mod:`._tables`) all read this one table, so a resource added here is
served, advertised and selectable at once.

Thread-safety: immutable values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Resource", "RESOURCES", "VERBS", "SUBRESOURCE_VERBS", "resource_named"]

#: Verbs served on every resource (no ``deletecollection``: the fake does not serve it, and
#: discovery advertises only what is served).
VERBS: Final = ("create", "delete", "get", "list", "patch", "update", "watch")
#: Verbs served on the ``status`` subresource.
SUBRESOURCE_VERBS: Final = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class Resource:
    """One served resource (core group, version v1).

    ``fields`` maps each field a field selector may name to the value an object without that
    field has (``spec.unschedulable`` of a Node is ``"false"`` when unset, as Go's zero value).
    """

    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...]
    fields: Mapping[str, str]
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ("status",)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def typemeta(self) -> bytes:
        """The JSON text that starts an object of this kind (``{"kind":...,"apiVersion":"v1",``)."""
        return b'{"kind":"%s","apiVersion":"v1",' % self.kind.encode()

    def field_values(self, obj: Mapping[str, Any], namespace: str) -> dict[str, str]:
        """The selectable fields of ``obj``, as strings (booleans as ``"true"``/``"false"``)."""
        out: dict[str, str] = {}
        for dotted, default in self.fields.items():
            value: Any = obj
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            if isinstance(value, bool):
                out[dotted] = "true" if value else "false"
            else:
                out[dotted] = value if isinstance(value, str) else default
        if self.namespaced:
            out["metadata.namespace"] = namespace
        return out


_NAMESPACED: Final = {"metadata.name": "", "metadata.namespace": ""}

RESOURCES: Final[Mapping[str, Resource]] = {
    res.plural: res
    for res in (
        Resource(
            "namespaces", "namespace", "Namespace", False, ("ns",),
            {"metadata.name": "", "status.phase": ""},
        ),
        Resource(
            "nodes", "node", "Node", False, ("no",),
            {"metadata.name": "", "spec.unschedulable": "false"},
        ),
        Resource(
            "pods", "pod", "Pod", True, ("po",),
            {**_NAMESPACED, "spec.nodeName": "", "status.phase": ""},
            categories=("all",),
        ),
        Resource(
            "events", "event", "Event", True, ("ev",),
            {
                **_NAMESPACED, "involvedObject.kind": "", "involvedObject.name": "",
                "involvedObject.namespace": "", "reason": "", "type": "",
            },
            subresources=(),
        ),
    )
}  # fmt: skip


def resource_named(plural: str) -> Resource:
    """The resource called ``plural``.

    Raises:
        ValueError: the fake does not serve it (the message lists what it serves).
    """
    res = RESOURCES.get(plural)
    if res is None:
        raise ValueError(f"unknown resource {plural!r} (known: {', '.join(RESOURCES)})")
    return res
