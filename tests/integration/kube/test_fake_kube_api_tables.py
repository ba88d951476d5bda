"""Server-side Tables: the columns kubectl prints, for lists, gets and watches."""

from __future__ import annotations

import http.client
import json
from typing import Any

from nvinformers.testing.kube_api import FakeKubeAPIServer

from .conftest import WAIT, raw

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
KUBECTL_GET = f"{TABLE},application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


def columns(table: dict[str, Any], *, wide: bool = False) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if wide or c["priority"] == 0]


class TestNodeTables:
    def test_list_has_kubectls_node_columns(self, server: FakeKubeAPIServer) -> None:
        server.add_node(
            "gpu-1",
            labels={"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "gpu"},
            conditions={"Ready": "True"},
            status={
                "nodeInfo": {"kubeletVersion": "v1.32.1", "osImage": "Ubuntu"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
            },
        )
        server.add_node("gpu-2", spec={"unschedulable": True}, conditions={"Ready": "False"})
        server.add_node("gpu-3")
        code, _, table = raw(server, "GET", "/api/v1/nodes?limit=500", accept=KUBECTL_GET)
        assert code == 200
        assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
        assert table["metadata"]["resourceVersion"] == str(server.revision)
        assert columns(table) == ["Name", "Status", "Roles", "Age", "Version"]
        assert columns(table, wide=True)[5:] == [
            "Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime",
        ]  # fmt: skip
        rows = [row["cells"] for row in table["rows"]]
        assert rows[0][:3] == ["gpu-1", "Ready", "gpu,worker"]
        assert rows[0][4:] == ["v1.32.1", "10.0.0.7", "<none>", "Ubuntu", "<unknown>", "<unknown>"]
        assert rows[0][3].endswith("s")  # an age in seconds
        assert rows[1][1:3] == ["NotReady,SchedulingDisabled", "<none>"]
        assert rows[2][1] == "Unknown"
        meta = table["rows"][0]["object"]
        assert meta["kind"] == "PartialObjectMetadata" and meta["metadata"]["name"] == "gpu-1"

    def test_get_and_include_object(self, server: FakeKubeAPIServer) -> None:
        server.add_node("n1", labels={"a": "b"})
        _, _, table = raw(server, "GET", "/api/v1/nodes/n1?includeObject=Object", accept=TABLE)
        (row,) = table["rows"]
        assert row["object"]["kind"] == "Node" and row["object"]["spec"] == {}
        _, _, table = raw(server, "GET", "/api/v1/nodes/n1?includeObject=None", accept=TABLE)
        assert "object" not in table["rows"][0]
        code, _, status = raw(server, "GET", "/api/v1/nodes?includeObject=All", accept=TABLE)
        assert (code, status["reason"]) == (400, "BadRequest")

    def test_an_unacceptable_media_type_is_406(self, server: FakeKubeAPIServer) -> None:
        code, _, status = raw(server, "GET", "/api/v1/nodes", accept="application/yaml")
        assert (code, status["reason"]) == (406, "NotAcceptable")


class TestPodTables:
    def test_pods_of_every_namespace(self, server: FakeKubeAPIServer) -> None:
        server.add_pod("web", node_name="n1")
        server.add_pod("job", namespace="batch", phase="Succeeded")

        last_exit = {"terminated": {"exitCode": 1, "finishedAt": "2020-01-01T00:00:00Z"}}

        def crash(pod: dict[str, Any]) -> None:
            pod["status"]["containerStatuses"] = [
                {
                    "name": "main", "ready": False, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": last_exit,
                }
            ]  # fmt: skip
            pod["status"]["podIPs"] = [{"ip": "10.1.0.3"}]

        server.update("pods", "web", namespace="default", mutate=crash)
        _, _, table = raw(server, "GET", "/api/v1/pods", accept=KUBECTL_GET)
        assert columns(table) == ["Name", "Ready", "Status", "Restarts", "Age"]
        assert columns(table, wide=True)[5:] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
        job, web = table["rows"]
        assert job["cells"][:4] == ["job", "0/1", "Succeeded", "0"]
        assert job["conditions"][0]["type"] == "Completed"
        assert job["object"]["metadata"]["namespace"] == "batch"
        name, ready, status, restarts, _, ip, node, nominated, gates = web["cells"]
        assert (name, ready, status) == ("web", "0/1", "CrashLoopBackOff")
        assert restarts.startswith("4 (") and restarts.endswith(" ago)")
        assert (ip, node, nominated, gates) == ("10.1.0.3", "n1", "<none>", "<none>")


class TestWatchTables:
    def test_only_the_first_event_carries_the_columns(self, server: FakeKubeAPIServer) -> None:
        server.add_node("n1")
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
        try:
            conn.request("GET", "/api/v1/nodes?watch=true", headers={"Accept": KUBECTL_GET})
            response = conn.getresponse()
            first = json.loads(response.readline())
            assert server.wait_for_watches(1)
            server.update_node("n1", conditions={"Ready": "True"})
            server.delete_node("n1")
            second = json.loads(response.readline())
            third = json.loads(response.readline())
        finally:
            conn.close()
        assert (first["type"], first["object"]["kind"]) == ("ADDED", "Table")
        assert columns(first["object"])[:2] == ["Name", "Status"]
        assert second["type"] == "MODIFIED" and second["object"]["columnDefinitions"] is None
        assert second["object"]["rows"][0]["cells"][:2] == ["n1", "Ready"]
        assert third["type"] == "DELETED"
        assert third["object"]["metadata"]["resourceVersion"] == str(server.revision)
