"""Server-side printing for the fake Kubernetes API server: ``Table`` responses.

kubectl's ``get`` asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints
the columns the server sends. Like the API server's printers, this module gives each resource
its kubectl columns (the table ``_PRINTERS`` below: name, type, format, priority and description
of each, and the function computing a row's cells), every column always included (``-o wide``
only shows the ``priority: 1`` ones).

Each row carries the object as ``includeObject`` asks: ``Metadata`` (the default: a
``PartialObjectMetadata``, which kubectl reads for ``-A``'s NAMESPACE column and
``--show-labels``), ``Object`` or ``None``. In a watch, only the first event's table carries the
column definitions, as the API server sends them.

Ages follow apimachinery's ``HumanDuration`` (``45s``, ``3m20s``, ``5h10m``, ``3d4h``, ``2y``).

Thread-safety: pure functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from nvinformers._printers import human_duration
from nvinformers.testing.kube_api._errors import bad_request
from nvinformers.testing.kube_api._resources import Resource

__all__ = ["table_version", "include_object", "table"]

_GROUP: Final = "meta.k8s.io"
_VERSIONS: Final = ("v1", "v1beta1")
_INCLUDE: Final = ("None", "Metadata", "Object")
_NONE: Final = "<none>"
_UNKNOWN: Final = "<unknown>"
_ROLE_PREFIX: Final = "node-role.kubernetes.io/"
_ROLE_LABEL: Final = "kubernetes.io/role"

#: (name, type, format, priority, description) per column.
_Column = tuple[str, str, str, int, str]
_Cells = Callable[[Mapping[str, Any]], list[Any]]


def table_version(media_type: str, params: Mapping[str, str]) -> str | None:
    """The Table version an ``Accept`` entry asks for (None: it does not ask for a Table)."""
    if media_type != "application/json" or params.get("as") != "Table":
        return None
    if params.get("g") != _GROUP:
        return None
    version = params.get("v", "")
    return version if version in _VERSIONS else None


def include_object(query: Mapping[str, str]) -> str:
    """The ``includeObject`` query parameter (default ``Metadata``).

    Raises:
        FakeKubeAPIError: 400 for a value other than None, Metadata, Object.
    """
    value = query.get("includeObject") or "Metadata"
    if value not in _INCLUDE:
        raise bad_request(
            f"includeObject: Unsupported value: {value!r}: supported: None, Metadata, Object"
        )
    return value


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(value: Any) -> str:
    """``translateTimestampSince``: the age of a timestamp, ``<unknown>`` without one."""
    then = _parse_time(value)
    if then is None:
        return _UNKNOWN
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) and value else default


# ------------------------------------------------------------------------------------ nodes


def _node_cells(node: Mapping[str, Any]) -> list[Any]:
    status: list[str] = []
    for cond in _get(node, "status", "conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            status.append("Ready" if cond.get("status") == "True" else "NotReady")
            break
    if not status:
        status.append("Unknown")
    if _get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    roles = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX) :]:
            roles.add(key[len(_ROLE_PREFIX) :])
        elif key == _ROLE_LABEL and value:
            roles.add(value)
    info = _get(node, "status", "nodeInfo") or {}

    def address(kind: str) -> str:
        for entry in _get(node, "status", "addresses") or ():
            if isinstance(entry, Mapping) and entry.get("type") == kind:
                return _text(entry.get("address"), _NONE)
        return _NONE

    return [
        _get(node, "metadata", "name"),
        ",".join(status),
        ",".join(sorted(roles)) or _NONE,
        _since(_get(node, "metadata", "creationTimestamp")),
        _text(info.get("kubeletVersion")),
        address("InternalIP"),
        address("ExternalIP"),
        _text(info.get("osImage"), _UNKNOWN),
        _text(info.get("kernelVersion"), _UNKNOWN),
        _text(info.get("containerRuntimeVersion"), _UNKNOWN),
    ]


# ------------------------------------------------------------------------------------- pods


def _terminated_reason(term: Mapping[str, Any], prefix: str) -> str:
    if term.get("reason"):
        return f"{prefix}{term['reason']}"
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _condition_true(status: Mapping[str, Any], ctype: str) -> bool:
    return any(
        isinstance(c, Mapping) and c.get("type") == ctype and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )


def _pod_status(pod: Mapping[str, Any]) -> tuple[str, int, int, int, datetime | None]:
    """(STATUS, ready containers, total containers, restarts, last restart) as kubectl shows."""
    spec: Mapping[str, Any] = pod.get("spec") or {}
    status: Mapping[str, Any] = pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or ()}
    sidecars = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or ()) + len(sidecars)
    ready = restarts = sidecar_restarts = 0
    last: datetime | None = None
    sidecar_last: datetime | None = None
    phase = _text(status.get("phase"))
    reason = _text(status.get("reason"), phase)
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def finished(cs: Mapping[str, Any]) -> datetime | None:
        return _parse_time(_get(cs, "lastState", "terminated", "finishedAt"))

    initializing = False
    for index, cs in enumerate(status.get("initContainerStatuses") or ()):
        count = int(cs.get("restartCount") or 0)
        restarts += count
        last = max(filter(None, (last, finished(cs))), default=None)
        sidecar = cs.get("name") in sidecars
        if sidecar:
            sidecar_restarts += count
            sidecar_last = max(filter(None, (sidecar_last, finished(cs))), default=None)
        term = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if isinstance(term, Mapping) and not term.get("exitCode"):
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        initializing = True
        if isinstance(term, Mapping):
            reason = _terminated_reason(term, "Init:")
        elif isinstance(waiting, Mapping) and _text(waiting.get("reason")) not in (
            "", "PodInitializing"
        ):  # fmt: skip
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        break
    if not initializing or _condition_true(status, "Initialized"):
        restarts, last = sidecar_restarts, sidecar_last
        running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += int(cs.get("restartCount") or 0)
            last = max(filter(None, (last, finished(cs))), default=None)
            waiting = _get(cs, "state", "waiting")
            term = _get(cs, "state", "terminated")
            if isinstance(waiting, Mapping) and waiting.get("reason"):
                reason = waiting["reason"]
            elif isinstance(term, Mapping):
                reason = _terminated_reason(term, "")
            elif cs.get("ready") and isinstance(_get(cs, "state", "running"), Mapping):
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"
    if _get(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, total, restarts, last


def _pod_cells(pod: Mapping[str, Any]) -> list[Any]:
    reason, ready, total, restarts, last = _pod_status(pod)
    restarts_cell = str(restarts)
    if restarts and last is not None:
        restarts_cell += f" ({_since(last.isoformat())} ago)"
    spec: Mapping[str, Any] = pod.get("spec") or {}
    status: Mapping[str, Any] = pod.get("status") or {}
    ips = status.get("podIPs") or ()
    gates = spec.get("readinessGates") or ()
    gates_cell = _NONE
    if gates:
        passed = sum(1 for gate in gates if _condition_true(status, str(gate.get("conditionType"))))
        gates_cell = f"{passed}/{len(gates)}"
    return [
        _get(pod, "metadata", "name"),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _since(_get(pod, "metadata", "creationTimestamp")),
        _text(_get(ips[0], "ip") if ips else None, _NONE),
        _text(spec.get("nodeName"), _NONE),
        _text(status.get("nominatedNodeName"), _NONE),
        gates_cell,
    ]


def _pod_conditions(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    phase = _get(pod, "status", "phase")
    if phase not in ("Succeeded", "Failed"):
        return []
    message = "The pod has completed successfully." if phase == "Succeeded" else "The pod failed."
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


# --------------------------------------------------------------------- namespaces and events


def _namespace_cells(ns: Mapping[str, Any]) -> list[Any]:
    return [
        _get(ns, "metadata", "name"),
        _text(_get(ns, "status", "phase")),
        _since(_get(ns, "metadata", "creationTimestamp")),
    ]


def _event_cells(event: Mapping[str, Any]) -> list[Any]:
    first = event.get("firstTimestamp") or event.get("eventTime")
    last = event.get("lastTimestamp") or first
    count = event.get("count") or 1
    series = event.get("series")
    if isinstance(series, Mapping):
        last = series.get("lastObservedTime") or last
        count = series.get("count") or count
    involved: Mapping[str, Any] = event.get("involvedObject") or {}
    kind = _text(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = _text(_get(event, "source", "component"), _text(event.get("reportingComponent")))
    instance = _text(_get(event, "source", "host"), _text(event.get("reportingInstance")))
    source = ", ".join(filter(None, (component, instance))) if component else ""
    return [
        _since(last),
        _text(event.get("type")),
        _text(event.get("reason")),
        target,
        _text(involved.get("fieldPath")),
        source,
        _text(event.get("message")).strip(),
        _since(first),
        int(count),
        _get(event, "metadata", "name"),
    ]


# ------------------------------------------------------------------------------------ tables

_NAME: Final[_Column] = ("Name", "string", "name", 0, "The object's name.")
_AGE: Final[_Column] = ("Age", "string", "", 0, "Time since the object was created.")

_PRINTERS: Final[Mapping[str, tuple[Sequence[_Column], _Cells]]] = {
    "nodes": (
        (
            _NAME,
            ("Status", "string", "", 0, "Readiness, and whether scheduling is disabled."),
            ("Roles", "string", "", 0, "The node-role labels of the node."),
            _AGE,
            ("Version", "string", "", 0, "The kubelet's version."),
            ("Internal-IP", "string", "", 1, "The node's first InternalIP address."),
            ("External-IP", "string", "", 1, "The node's first ExternalIP address."),
            ("OS-Image", "string", "", 1, "The node's operating system image."),
            ("Kernel-Version", "string", "", 1, "The node's kernel version."),
            ("Container-Runtime", "string", "", 1, "The node's container runtime and version."),
        ),
        _node_cells,
    ),
    "pods": (
        (
            _NAME,
            ("Ready", "string", "", 0, "Ready containers out of all containers."),
            ("Status", "string", "", 0, "The pod's phase, refined by its containers' states."),
            ("Restarts", "string", "", 0, "Container restarts, and how long ago the last was."),
            _AGE,
            ("IP", "string", "", 1, "The pod's first IP address."),
            ("Node", "string", "", 1, "The node the pod is bound to."),
            ("Nominated Node", "string", "", 1, "The node nominated for preemption."),
            ("Readiness Gates", "string", "", 1, "Readiness gates passed out of all gates."),
        ),
        _pod_cells,
    ),
    "namespaces": (
        (_NAME, ("Status", "string", "", 0, "The namespace's phase."), _AGE),
        _namespace_cells,
    ),
    "events": (
        (
            ("Last Seen", "string", "", 0, "Time since the event last occurred."),
            ("Type", "string", "", 0, "Normal or Warning."),
            ("Reason", "string", "", 0, "Why the event was emitted."),
            ("Object", "string", "", 0, "The object the event is about."),
            ("Subobject", "string", "", 1, "The part of the object the event is about."),
            ("Source", "string", "", 1, "The component that emitted the event."),
            ("Message", "string", "", 0, "What happened."),
            ("First Seen", "string", "", 1, "Time since the event first occurred."),
            ("Count", "integer", "", 1, "How often the event occurred."),
            ("Name", "string", "name", 1, "The event's name."),
        ),
        _event_cells,
    ),
}


def _row(res: Resource, obj: Mapping[str, Any], include: str, version: str) -> dict[str, Any]:
    _, cells = _PRINTERS[res.plural]
    row: dict[str, Any] = {"cells": cells(obj)}
    if res.plural == "pods" and (conditions := _pod_conditions(obj)):
        row["conditions"] = conditions
    if include == "Object":
        row["object"] = obj
    elif include == "Metadata":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": f"{_GROUP}/{version}",
            "metadata": obj.get("metadata") or {},
        }
    return row


def table(
    res: Resource,
    objects: Iterable[Mapping[str, Any]],
    *,
    resource_version: str,
    version: str = "v1",
    include: str = "Metadata",
    headers: bool = True,
) -> dict[str, Any]:
    """A ``Table`` of ``objects`` (full objects, with kind and apiVersion).

    Args:
        res: their resource.
        objects: the rows, in order.
        resource_version: the table's ``metadata.resourceVersion``.
        version: ``v1`` or ``v1beta1`` (meta.k8s.io).
        include: what each row's ``object`` holds: ``None``, ``Metadata`` or ``Object``.
        headers: include the column definitions (a watch sends them in its first event only).
    """
    columns, _ = _PRINTERS[res.plural]
    return {
        "kind": "Table",
        "apiVersion": f"{_GROUP}/{version}",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {"name": n, "type": t, "format": f, "description": d, "priority": p}
            for n, t, f, p, d in columns
        ]
        if headers
        else None,
        "rows": [_row(res, obj, include, version) for obj in objects],
    }
