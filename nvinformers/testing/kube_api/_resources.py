"""The resources the fake Kubernetes API server serves (names, kinds, scope, selectable fields),
and discovery, which advertises them.

One :class:`Resource` per core/v1 resource. Discovery, routing, field selectors and the tables
(:mod:`._tables`) all read this one table, so a resource added here is served, advertised and
selectable at once. What discovery clients ask for, and get:

* ``/version``: the server's version (``v1.32.0``, a minor kubectl 1.32 supports without skew
  warnings).
* ``/api``: ``APIVersions`` (the core group's one version, ``v1``).
* ``/api/v1``: ``APIResourceList``: every served resource with its singular name, kind, scope,
  verbs, short names and categories, and each subresource as its own ``<plural>/<sub>`` entry.
* ``/apis``: ``APIGroupList`` with no groups (the fake serves only the core group).
* Aggregated discovery: a request for ``/api`` or ``/apis`` whose ``Accept`` prefers
  ``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`` (kubectl 1.30+ and
  client-go ask for it first; ``v2beta1`` too) gets an ``APIGroupDiscoveryList`` with that
  ``Content-Type``, as the API server answers; any other ``Accept`` gets the legacy documents,
  which is what older clients (and kopf) read.

Thread-safety: immutable values and pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "Resource",
    "RESOURCES",
    "VERBS",
    "SUBRESOURCE_VERBS",
    "resource_named",
    "SERVER_VERSION",
    "version_info",
    "api_versions",
    "resource_list",
    "group_list",
    "aggregated",
    "aggregated_version",
]

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


SERVER_VERSION: Final = "v1.32.0"
_DISCOVERY_GROUP: Final = "apidiscovery.k8s.io"
_AGGREGATED_KIND: Final = "APIGroupDiscoveryList"
_AGGREGATED_VERSIONS: Final = ("v2", "v2beta1")


def version_info() -> dict[str, str]:
    """The ``/version`` document."""
    major, minor, _ = SERVER_VERSION[1:].split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": SERVER_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """The legacy ``/api`` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def resource_list() -> dict[str, Any]:
    """The ``/api/v1`` document."""
    resources: list[dict[str, Any]] = []
    for res in RESOURCES.values():
        entry: dict[str, Any] = {
            "name": res.plural,
            "singularName": res.singular,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": list(VERBS),
            "shortNames": list(res.short_names),
        }
        if res.categories:
            entry["categories"] = list(res.categories)
        resources.append(entry)
        resources.extend(
            {
                "name": f"{res.plural}/{sub}",
                "singularName": "",
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": list(SUBRESOURCE_VERBS),
            }
            for sub in res.subresources
        )
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}


def group_list() -> dict[str, Any]:
    """The legacy ``/apis`` document: no groups besides the core one."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}


def aggregated_version(media_type: str, params: dict[str, str]) -> str | None:
    """The aggregated discovery version an ``Accept`` entry asks for (None: not aggregated)."""
    if media_type != "application/json":
        return None
    if params.get("g") != _DISCOVERY_GROUP or params.get("as") != _AGGREGATED_KIND:
        return None
    version = params.get("v", "")
    return version if version in _AGGREGATED_VERSIONS else None


def aggregated(version: str, *, core: bool) -> tuple[str, dict[str, Any]]:
    """The aggregated document for ``/api`` (``core``) or ``/apis``, and its Content-Type."""
    items: list[dict[str, Any]] = []
    if core:
        resources = []
        for res in RESOURCES.values():
            kind = {"group": "", "version": "v1", "kind": res.kind}
            entry: dict[str, Any] = {
                "resource": res.plural,
                "responseKind": kind,
                "scope": "Namespaced" if res.namespaced else "Cluster",
                "singularResource": res.singular,
                "verbs": list(VERBS),
                "shortNames": list(res.short_names),
            }
            if res.categories:
                entry["categories"] = list(res.categories)
            if res.subresources:
                entry["subresources"] = [
                    {
                        "subresource": sub,
                        "responseKind": kind,
                        "verbs": list(SUBRESOURCE_VERBS),
                    }
                    for sub in res.subresources
                ]
            resources.append(entry)
        items.append(
            {
                "metadata": {"creationTimestamp": None},
                "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}],
            }
        )
    content_type = f"application/json;g={_DISCOVERY_GROUP};v={version};as={_AGGREGATED_KIND}"
    document = {
        "kind": _AGGREGATED_KIND,
        "apiVersion": f"{_DISCOVERY_GROUP}/{version}",
        "metadata": {},
        "items": items,
    }
    return content_type, document
