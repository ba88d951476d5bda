"""The fake Kubernetes API server's printers and request parsing, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nvinformers.testing.kube_api import FakeKubeAPIError
from nvinformers.testing.kube_api._http import parse_accept, route, verb_for
from nvinformers.testing.kube_api._resources import RESOURCES
from nvinformers.testing.kube_api._tables import table


def pod_row(**status: Any) -> list[Any]:
    created = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    spec = status.pop("spec", {"containers": [{"name": "a"}, {"name": "b"}]})
    pod = {"metadata": {"name": "p", "creationTimestamp": created}, "spec": spec, "status": status}
    cells: list[Any] = table(RESOURCES["pods"], [pod], resource_version="1")["rows"][0]["cells"]
    return cells


def running(ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {"ready": ready, "restartCount": restarts, "state": {"running": {}}}


def test_pod_status_follows_the_containers() -> None:
    assert pod_row(phase="Running", containerStatuses=[running(), running()])[:5] == [
        "p", "2/2", "Running", "0", "5m",
    ]  # fmt: skip
    assert pod_row(phase="Running", containerStatuses=[running(), running(False)])[1] == "1/2"
    waiting = {"ready": False, "restartCount": 2, "state": {"waiting": {"reason": "ErrImagePull"}}}
    assert pod_row(phase="Pending", containerStatuses=[running(), waiting])[1:4] == [
        "1/2", "ErrImagePull", "2",
    ]  # fmt: skip
    failed = {"state": {"terminated": {"exitCode": 137, "signal": 9}}}
    assert pod_row(phase="Failed", containerStatuses=[failed])[2] == "Signal:9"


def test_init_containers_and_sidecars() -> None:
    spec = {
        "initContainers": [{"name": "setup"}, {"name": "proxy", "restartPolicy": "Always"}],
        "containers": [{"name": "main"}],
    }
    setup_waiting = {"name": "setup", "state": {"waiting": {"reason": "PodInitializing"}}}
    assert pod_row(spec=spec, phase="Pending", initContainerStatuses=[setup_waiting])[1:3] == [
        "0/2", "Init:0/2",
    ]  # fmt: skip
    setup_failed = {"name": "setup", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    assert pod_row(spec=spec, phase="Pending", initContainerStatuses=[setup_failed])[2] == (
        "Init:Error"
    )
    done = {"name": "setup", "state": {"terminated": {"exitCode": 0}}}
    sidecar = {"name": "proxy", "started": True, "ready": True, "restartCount": 1}
    cells = pod_row(
        spec=spec, phase="Running", initContainerStatuses=[done, sidecar],
        containerStatuses=[{"name": "main", **running()}],
    )  # fmt: skip
    assert cells[1:4] == ["2/2", "Running", "1"]


def test_terminating_and_wide_columns() -> None:
    cells = pod_row(phase="Running", podIPs=[{"ip": "10.0.0.9"}], nominatedNodeName="n2")
    assert cells[5:] == ["10.0.0.9", "<none>", "n2", "<none>"]
    pod = {
        "metadata": {"name": "p", "deletionTimestamp": "2030-01-01T00:00:00Z"},
        "spec": {"containers": []},
        "status": {"phase": "Running"},
    }
    row = table(RESOURCES["pods"], [pod], resource_version="1")["rows"][0]
    assert row["cells"][2] == "Terminating" and row["cells"][4] == "<unknown>"


def test_routes_and_verbs() -> None:
    ns = route("/api/v1/namespaces/default")
    assert (ns.resource and ns.resource.plural, ns.name) == ("namespaces", "default")
    pods = route("/api/v1/namespaces/default/pods/p1/status?dryRun=All")
    assert (pods.namespace, pods.name, pods.subresource, pods.query) == (
        "default", "p1", "status", {"dryRun": "All"},
    )  # fmt: skip
    assert verb_for("GET", route("/api/v1/pods?watch=1")) == "watch"
    assert route("/livez/etcd").endpoint == "/livez"
    for bad in ("/api/v2/nodes", "/api/v1/pods/p1", "/api/v1/nodes/n1/proxy", "/apis/apps/v1"):
        with pytest.raises(FakeKubeAPIError) as caught:
            route(bad)
        assert caught.value.code == 404, bad
    with pytest.raises(FakeKubeAPIError) as not_allowed:
        verb_for("DELETE", route("/api/v1/nodes/n1/status"))
    assert not_allowed.value.code == 405


def test_accept_headers_in_preference_order() -> None:
    assert parse_accept(None) == [("application/json", {})]
    assert parse_accept("application/json;q=0.5, application/json;as=Table;g=meta.k8s.io") == [
        ("application/json", {"as": "Table", "g": "meta.k8s.io"}),
        ("application/json", {}),
    ]
    assert parse_accept("text/html;q=0") == []
