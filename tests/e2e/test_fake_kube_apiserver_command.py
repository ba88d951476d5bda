"""``nvinformers fake-kube-apiserver`` as a subprocess, used through the kubeconfig it prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.e2e.procs import WAIT, Background, cli
from tests.unit.cache.scripted import eventually

pytestmark = pytest.mark.e2e


def test_serves_nodes_and_pods_through_the_kubeconfig_it_prints(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kube.json"
    command = Background(
        "-m", "nvinformers._cli", "fake-kube-apiserver", "--kubeconfig", str(kubeconfig),
        "--node", "gpu-a", "--node", "gpu-b", "--pods", "2", "--heartbeat", "0.05",
    )  # fmt: skip
    api: Any = None
    try:
        command.expect("Fake Kubernetes API listening on http://127.0.0.1:")
        assert command.expect("kubeconfig:") == f"kubeconfig: {kubeconfig}"
        api = config.new_client_from_config(config_file=str(kubeconfig))
        core = client.CoreV1Api(api)
        nodes = core.list_node().items
        assert [n.metadata.name for n in nodes] == ["gpu-a", "gpu-b"]
        assert nodes[0].status.allocatable["nvidia.com/gpu"] == "8"
        pods = core.list_pod_for_all_namespaces().items
        assert sorted(p.spec.node_name for p in pods) == ["gpu-a", "gpu-a", "gpu-b", "gpu-b"]
        # The kubelet's part: heartbeats are Node events.
        before = int(nodes[0].metadata.resource_version)
        assert eventually(
            lambda: int(core.read_node("gpu-a").metadata.resource_version) > before, WAIT
        )
    finally:
        if api is not None:
            api.close()
        code = command.terminate()
    assert code == 143, "\n".join(command.lines)  # SIGTERM: 128 + 15, like every command
    assert "Stopping server..." in command.lines
    assert not kubeconfig.exists()  # it removes the kubeconfig it wrote


def test_never_overwrites_a_kubeconfig_it_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "config"
    mine.write_text("apiVersion: v1\nkind: Config\ncurrent-context: prod\n")
    result = cli("fake-kube-apiserver", "--kubeconfig", str(mine), timeout=WAIT)
    assert result.returncode == 1
    assert "is not a fake kubeconfig" in result.stderr
    assert mine.read_text().endswith("current-context: prod\n")


def test_listed_in_the_commands_help() -> None:
    result = cli("--help")
    assert "fake-kube-apiserver" in result.stdout
    usage = cli("fake-kube-apiserver", "--help")
    assert usage.returncode == 0 and "--heartbeat" in usage.stdout
