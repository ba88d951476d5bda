"""Objects shaped as the API server writes them, for the kube unit tests."""

from __future__ import annotations

import json
from typing import Any

#: A managedFields value as the API server writes it (entries with fixed keys, prefixed fieldsV1).
MANAGED: list[dict[str, Any]] = [
    {
        "manager": "kubelet",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2026-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {".": {}}}}},
    }
]

#: managedFields among look-alikes that must not be taken for metadata's.
DECOYS: dict[str, Any] = {
    "metadata": {
        "name": "n",
        "labels": {"managedFields": "x"},
        "annotations": {"a": ',"managedFields":[1]},"spec":'},
        "managedFields": MANAGED,
    },
    "spec": {"b": 2},
}


def node(name: str = "node-1", **extra: Any) -> dict[str, Any]:
    """A Node in the API server's key order; ``metadata=`` entries are merged into its metadata."""
    metadata: dict[str, Any] = {
        "name": name,
        "uid": "6f1a",
        "resourceVersion": "42",
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "labels": {"kubernetes.io/os": "linux", "gpu": "true"},
        "annotations": {"note": "hi"},
    }
    metadata.update(extra.pop("metadata", {}))
    obj: dict[str, Any] = {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {"podCIDR": "10.0.0.0/24"},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-02T03:04:05Z"},
                {"type": "DiskPressure", "status": "False"},
            ]
        },
    }
    obj.update(extra)
    return obj


def compact(obj: Any) -> str:
    """``obj`` as the API server writes JSON: compact, non-ASCII kept."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def raw(obj: Any) -> bytes:
    return compact(obj).encode()
