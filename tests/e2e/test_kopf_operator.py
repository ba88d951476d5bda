"""The kopf-operator example under ``kopf run``, against the fake Kubernetes API (through a
kubeconfig file) and the fake Device API: annotations appear, follow Ready flips, and SIGTERM
stops the operator after its cleanup ran."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nvinformers.testing import FakeServer
from nvinformers.testing.kube_api import FakeKubeAPIServer
from nvinformers.testing.kube_api._command import add_kubelet_node
from tests.e2e.procs import WAIT, Background
from tests.unit.cache.scripted import eventually

pytestmark = pytest.mark.e2e

NODE = "node-1"
GPUS = "nvinformers.io/gpus"
READY = "nvinformers.io/ready-gpus"


@pytest.fixture
def device_api() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, seed=7) as srv:
        yield srv


@pytest.fixture
def kube_api() -> Iterator[FakeKubeAPIServer]:
    with FakeKubeAPIServer() as server:
        add_kubelet_node(server, NODE, 0)
        add_kubelet_node(server, "node-2", 1)
        yield server


def node_annotations(kube_api: FakeKubeAPIServer, node: str = NODE) -> dict[str, str]:
    found: dict[str, str] = kube_api.get_node(node)["metadata"].get("annotations", {})
    return found


def heartbeat(kube_api: FakeKubeAPIServer) -> None:
    """What the kubelet does every few seconds: a Node event the operator reacts to."""

    def beat(node: dict[str, Any]) -> None:
        node["status"]["conditions"][0]["lastHeartbeatTime"] = "2030-01-01T00:00:00Z"
        node["metadata"].setdefault("labels", {})["beat"] = str(kube_api.revision)

    kube_api.update_node(NODE, mutate=beat)


def test_kopf_run_annotates_the_node_follows_ready_flips_and_stops_cleanly(
    device_api: FakeServer, kube_api: FakeKubeAPIServer, tmp_path: Path
) -> None:
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    operator = Background(
        "-m", "kopf", "run", "--standalone", "-A", "examples/kopf-operator/kopf_operator.py",
        KUBECONFIG=str(kubeconfig), NVIDIA_DEVICE_API_TARGET=device_api.target, NODE_NAME=NODE,
    )  # fmt: skip
    try:
        operator.expect("GPU cache synced", WAIT)
        assert eventually(lambda: node_annotations(kube_api).get(READY) == "8", WAIT)
        assert node_annotations(kube_api)[GPUS] == "8"
        assert GPUS not in node_annotations(kube_api, "node-2")  # only its own Node

        device_api.set_ready("gpu-3", False)
        operator.expect("GPU gpu-3 is now NOT Ready")  # the operator's cache has the flip
        heartbeat(kube_api)
        assert eventually(lambda: node_annotations(kube_api).get(READY) == "7", WAIT)

        device_api.set_ready("gpu-3", True)
        operator.expect("GPU gpu-3 is now Ready")
        heartbeat(kube_api)
        assert eventually(lambda: node_annotations(kube_api).get(READY) == "8", WAIT)
    finally:
        code = operator.terminate()
    output = "\n".join(operator.lines)
    assert code == 0, output
    assert "Signal SIGTERM is received" in output
    assert "GPU cache stopped" in output  # the cleanup handler ran
    assert "Activity 'stop_gpu_cache' succeeded" in output
    assert "Traceback" not in output
    # kopf found the Node watch through discovery and patched the Node over HTTP.
    assert kube_api.request_count("watch", "nodes") >= 1
    assert kube_api.request_count("patch", "nodes") >= 3
