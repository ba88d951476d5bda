"""Request routing for the fake Kubernetes API server: which endpoint a path names, which verb a
method means, and which representation the client accepts.

Paths served::

    /version  /healthz  /livez  /readyz (and their /<check> sub-paths)
    /api  /api/v1  /apis
    /api/v1/<plural>[/<name>[/<sub>]]                        cluster-scoped, or all namespaces
    /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]]        namespaced

``/api/v1/namespaces/<name>[/status]`` is the Namespace object itself (namespaces are a
cluster-scoped resource whose path looks like a namespace prefix).

Thread-safety: pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

from nvinformers.testing.kube_api._errors import FakeKubeAPIError, path_not_found
from nvinformers.testing.kube_api._resources import RESOURCES, Resource

__all__ = ["Route", "route", "verb_for", "parse_accept", "MediaRange", "HEALTH_PATHS"]

HEALTH_PATHS: Final = ("/healthz", "/livez", "/readyz")
_SIMPLE: Final = frozenset({"/version", "/api", "/api/v1", "/apis", *HEALTH_PATHS})

#: One ``Accept`` entry: the media type and its parameters (``as``, ``g``, ``v``...).
MediaRange = tuple[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Route:
    """What a request names. ``endpoint`` is the path for the fixed endpoints (``/api``,
    ``/healthz``...) and ``"resource"`` for an object or collection."""

    endpoint: str
    path: str
    query: Mapping[str, str]
    resource: Resource | None = None
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def route(raw_path: str) -> Route:
    """Parse a request target.

    Raises:
        FakeKubeAPIError: 404 for a path the fake does not serve.
    """
    split = urlsplit(raw_path)
    path = split.path.rstrip("/") or "/"
    query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    if path in _SIMPLE:
        return Route(path, path, query)
    head, _, check = path.rpartition("/")
    if head in HEALTH_PATHS and check:
        return Route(head, path, query)
    parts = path.split("/")[1:]
    if parts[:2] != ["api", "v1"] or len(parts) < 3:
        raise path_not_found()
    segments = parts[2:]
    namespace = ""
    if (
        segments[0] == "namespaces"
        and len(segments) >= 3
        and segments[2] in RESOURCES
        and RESOURCES[segments[2]].namespaced
    ):
        namespace, segments = segments[1], segments[2:]
    if len(segments) > 3 or not all(segments):
        raise path_not_found()
    res = RESOURCES.get(segments[0])
    name = segments[1] if len(segments) > 1 else ""
    sub = segments[2] if len(segments) > 2 else ""
    if res is None or (sub and sub not in res.subresources):
        raise path_not_found()
    if res.namespaced and name and not namespace:
        raise path_not_found()
    return Route("resource", path, query, res, namespace, name, sub)


def verb_for(method: str, rt: Route) -> str:
    """The Kubernetes verb of ``method`` on ``rt``.

    Raises:
        FakeKubeAPIError: 405 for a method the endpoint does not take.
    """
    verb = ""
    if method == "GET":
        if rt.name:
            verb = "get"
        else:
            watch = rt.query.get("watch")
            verb = "watch" if watch is not None and watch.lower() in ("true", "1") else "list"
    elif method == "POST":
        verb = "" if rt.name else "create"
    elif rt.name:
        verb = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "")
    if verb == "" or (rt.subresource and verb not in ("get", "update", "patch")):
        raise FakeKubeAPIError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    return verb


def parse_accept(header: str | None) -> list[MediaRange]:
    """The entries of an ``Accept`` header, most preferred first (``q`` respected, ``q=0``
    dropped, ties in the order given). No header: ``application/json``."""
    entries: list[tuple[float, int, MediaRange]] = []
    for position, part in enumerate((header or "application/json").split(",")):
        media, *raw_params = (p.strip() for p in part.split(";"))
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 1.0
        if media and quality > 0:
            entries.append((-quality, position, (media.lower(), params)))
    return [entry for _, _, entry in sorted(entries)]
