"""Discovery for the fake Kubernetes API server: ``/version``, ``/api``, ``/api/v1``, ``/apis``.

What clients ask for, and get:

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

Thread-safety: pure functions over the immutable resource table.
"""

from __future__ import annotations

from typing import Any, Final

from nvinformers.testing.kube_api._resources import RESOURCES, SUBRESOURCE_VERBS, VERBS

__all__ = [
    "SERVER_VERSION",
    "version_info",
    "api_versions",
    "resource_list",
    "group_list",
    "aggregated",
    "aggregated_version",
]

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
        kinds = {
            res.plural: {"group": "", "version": "v1", "kind": res.kind}
            for res in RESOURCES.values()
        }
        resources = []
        for res in RESOURCES.values():
            entry: dict[str, Any] = {
                "resource": res.plural,
                "responseKind": kinds[res.plural],
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
                        "responseKind": kinds[res.plural],
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
