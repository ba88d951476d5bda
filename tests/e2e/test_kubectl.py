"""kubectl (the real binary) against the fake Kubernetes API server, through a kubeconfig file.

Skipped when kubectl is not on PATH, except under ``CI=true``, where that fails the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nvinformers.testing.kube_api import FakeKubeAPIServer
from nvinformers.testing.kube_api._command import add_kubelet_node
from tests.e2e.procs import WAIT, Background, kubectl, run

pytestmark = pytest.mark.e2e


class Kubectl:
    """Runs kubectl against one server, with its own kubeconfig and discovery cache."""

    def __init__(self, program: str, server: FakeKubeAPIServer, tmp: Path) -> None:
        self.program = program
        self.env = {
            "KUBECONFIG": str(server.write_kubeconfig(tmp / "kubeconfig")),
            "KUBECACHEDIR": str(tmp / "cache"),
        }

    def __call__(self, *args: str) -> str:
        result = run(*args, program=self.program, timeout=WAIT, **self.env)
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def watch(self, *args: str) -> Background:
        return Background(
            *args, program=self.program,
            KUBECONFIG=self.env["KUBECONFIG"], KUBECACHEDIR=self.env["KUBECACHEDIR"],
        )  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeKubeAPIServer]:
    with FakeKubeAPIServer() as running:
        add_kubelet_node(running, "node-1", 0)
        add_kubelet_node(running, "node-2", 1)
        running.update_node("node-1", labels={"node-role.kubernetes.io/control-plane": ""})
        running.add_pod("trainer", node_name="node-1")
        running.create("namespaces", {"metadata": {"name": "gpu-operator"}})
        running.add_pod("dcgm-exporter", "gpu-operator", node_name="node-2", phase="Pending")
        yield running


@pytest.fixture
def k(server: FakeKubeAPIServer, tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl(), server, tmp_path)


def table(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def test_version_reports_the_fake_servers(k: Kubectl) -> None:
    versions = json.loads(k("version", "-o", "json"))
    assert versions["serverVersion"]["gitVersion"] == "v1.32.0"
    print("kubectl", versions["clientVersion"]["gitVersion"])


def test_get_nodes_prints_kubectls_columns(k: Kubectl) -> None:
    rows = table(k("get", "nodes"))
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [r[:3] for r in rows[1:]] == [
        ["node-1", "Ready", "control-plane"],
        ["node-2", "Ready", "<none>"],
    ]
    assert {r[4] for r in rows[1:]} == {"v1.32.0"}
    wide = table(k("get", "nodes", "-o", "wide"))
    assert wide[0][5:7] == ["INTERNAL-IP", "EXTERNAL-IP"]
    assert wide[1][5:7] == ["10.0.0.1", "<none>"]


def test_get_nodes_as_yaml(k: Kubectl) -> None:
    doc = yaml.safe_load(k("get", "nodes", "-o", "yaml"))
    assert doc["kind"] == "List"
    assert [(n["kind"], n["metadata"]["name"]) for n in doc["items"]] == [
        ("Node", "node-1"),
        ("Node", "node-2"),
    ]
    assert doc["items"][1]["status"]["allocatable"]["nvidia.com/gpu"] == "8"


def test_get_pods_in_all_namespaces(k: Kubectl) -> None:
    rows = table(k("get", "pods", "-A"))
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:5] for r in rows[1:]] == [
        ["default", "trainer", "1/1", "Running", "0"],
        ["gpu-operator", "dcgm-exporter", "0/1", "Pending", "0"],
    ]
    assert table(k("get", "namespaces"))[1:] != []


def test_watch_sees_an_add_an_update_and_a_delete_made_from_python(
    k: Kubectl, server: FakeKubeAPIServer
) -> None:
    watch = k.watch("get", "nodes", "--watch", "--output-watch-events")
    try:
        watch.expect("node-2")  # the initial list is printed
        assert server.wait_for_watches(1)
        add_kubelet_node(server, "node-3", 2)
        assert watch.expect("node-3").split()[:3] == ["ADDED", "node-3", "Ready"]
        server.update_node("node-3", conditions={"Ready": "False"})
        assert watch.expect("node-3").split()[:3] == ["MODIFIED", "node-3", "NotReady"]
        server.delete_node("node-3")
        assert watch.expect("node-3").split()[:2] == ["DELETED", "node-3"]
    finally:
        watch.terminate()


def test_label_annotate_and_cordon(k: Kubectl, server: FakeKubeAPIServer) -> None:
    assert k("label", "node", "node-2", "nvidia.com/gpu.health=unhealthy").strip() == (
        "node/node-2 labeled"
    )
    assert k("annotate", "node", "node-2", "example.com/owner=team-a").strip() == (
        "node/node-2 annotated"
    )
    assert k("cordon", "node-2").strip() == "node/node-2 cordoned"
    node = server.get_node("node-2")
    assert node["metadata"]["labels"]["nvidia.com/gpu.health"] == "unhealthy"
    assert node["metadata"]["annotations"] == {"example.com/owner": "team-a"}
    assert node["spec"]["unschedulable"] is True
    assert table(k("get", "node", "node-2"))[1][1] == "Ready,SchedulingDisabled"
    assert table(k("get", "nodes", "--field-selector", "spec.unschedulable=true"))[1][0] == (
        "node-2"
    )
    k("label", "node", "node-2", "nvidia.com/gpu.health-")
    assert "nvidia.com/gpu.health" not in server.get_node("node-2")["metadata"]["labels"]


def test_patch_strategic_merge_and_json(k: Kubectl, server: FakeKubeAPIServer) -> None:
    # strategic (kubectl's default): conditions merge by type, the other ones stay
    k(
        "patch", "node", "node-1", "--subresource=status",
        "-p", '{"status":{"conditions":[{"type":"GPUHealthy","status":"False"}]}}',
    )  # fmt: skip
    types = [c["type"] for c in server.get_node("node-1")["status"]["conditions"]]
    assert types == ["Ready", "GPUHealthy"]
    # merge
    k(
        "patch", "node", "node-1", "--type", "merge",
        "-p", '{"metadata":{"labels":{"rack":"a1"}}}',
    )  # fmt: skip
    assert server.get_node("node-1")["metadata"]["labels"]["rack"] == "a1"
    # json: RFC 6902 operations
    k(
        "patch", "node", "node-1", "--type", "json",
        "-p", '[{"op":"replace","path":"/metadata/labels/rack","value":"b2"}]',
    )  # fmt: skip
    assert server.get_node("node-1")["metadata"]["labels"]["rack"] == "b2"
    failed = run(
        "patch", "node", "node-1", "--type", "json",
        "-p", '[{"op":"test","path":"/metadata/labels/rack","value":"zz"}]',
        program=k.program, timeout=WAIT, **k.env,
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr.startswith("The request is invalid: json patch test failed")


def test_a_missing_node_is_reported_by_name(k: Kubectl) -> None:
    result = run("get", "node", "ghost", program=k.program, timeout=WAIT, **k.env)
    assert result.returncode == 1
    assert 'nodes "ghost" not found' in result.stderr
