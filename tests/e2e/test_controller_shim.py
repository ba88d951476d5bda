"""controller-shim as a subprocess between a fake Device API and a fake Kubernetes API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from nvinformers.testing import FakeServer
from nvinformers.testing.kube_api import FakeKubeAPIServer
from tests.e2e.procs import WAIT, Background
from tests.unit.cache.scripted import eventually

pytestmark = pytest.mark.e2e

LABEL = "nvidia.com/gpu.health"


@pytest.fixture
def device_api() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, seed=11) as srv:
        yield srv


@pytest.fixture
def kube_api() -> Iterator[FakeKubeAPIServer]:
    server = FakeKubeAPIServer().start()
    server.add_node("node-a", conditions={"Ready": "True"})
    server.add_node("node-b", conditions={"Ready": "True"})
    try:
        yield server
    finally:
        server.stop()


def node_state(kube_api: FakeKubeAPIServer) -> tuple[str | None, str | None]:
    node = kube_api.get_node("node-a")
    label = node["metadata"].get("labels", {}).get(LABEL)
    conditions = node.get("status", {}).get("conditions", [])
    ours = next((c for c in conditions if c["type"] == "GPUHealthy"), None)
    return label, None if ours is None else ours["status"]


def test_a_not_ready_gpu_marks_the_node_and_recovery_clears_it(
    device_api: FakeServer, kube_api: FakeKubeAPIServer
) -> None:
    shim = Background(
        "examples/controller-shim/controller_shim.py", "--kube-api", kube_api.url,
        "--node-name", "node-a", "--probe-port", "0",
        NVIDIA_DEVICE_API_TARGET=device_api.target,
    )  # fmt: skip
    try:
        shim.expect("controller-shim for node node-a")
        # Every GPU is Ready: the first reconcile writes GPUHealthy=True and no label.
        assert eventually(lambda: node_state(kube_api) == (None, "True"), WAIT)

        started = time.monotonic()
        device_api.set_ready("gpu-3", False)
        assert eventually(lambda: node_state(kube_api) == ("unhealthy", "False"), WAIT)
        marked_after = time.monotonic() - started
        shim.expect("set label nvidia.com/gpu.health (not ready: gpu-3)")
        condition = next(
            c
            for c in kube_api.get_node("node-a")["status"]["conditions"]
            if c["type"] == "GPUHealthy"
        )
        assert condition["reason"] == "GPUNotReady"
        assert condition["message"] == "not ready: gpu-3"
        ready = next(
            c for c in kube_api.get_node("node-a")["status"]["conditions"] if c["type"] == "Ready"
        )
        assert ready["status"] == "True"  # the kubelet's condition is untouched

        device_api.set_ready("gpu-3", True)
        assert eventually(lambda: node_state(kube_api) == (None, "True"), WAIT)
        shim.expect("removed label nvidia.com/gpu.health")
        # Only its own node is touched.
        assert LABEL not in kube_api.get_node("node-b")["metadata"].get("labels", {})
        print(f"GPU status change -> Node marked in {marked_after * 1000:.0f} ms")
    finally:
        code = shim.terminate()
    assert code == 0
    assert any("stopped cleanly" in line for line in shim.lines)


def test_a_label_removed_by_hand_is_put_back(
    device_api: FakeServer, kube_api: FakeKubeAPIServer
) -> None:
    device_api.set_ready("gpu-0", False)
    shim = Background(
        "examples/controller-shim/controller_shim.py", "--kube-api", kube_api.url,
        "--node-name", "node-a", "--probe-port", "0",
        NVIDIA_DEVICE_API_TARGET=device_api.target,
    )  # fmt: skip
    try:
        assert eventually(lambda: node_state(kube_api)[0] == "unhealthy", WAIT)
        kube_api.update_node("node-a", labels={})  # someone clears the labels
        assert eventually(lambda: node_state(kube_api)[0] == "unhealthy", WAIT)
    finally:
        assert shim.terminate() == 0
