"""The ``nvinformers`` command, run as a subprocess against a real fake server."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvinformers.testing import FakeServer
from tests.e2e.procs import Background, cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, seed=3) as srv:
        yield srv


def test_get_gpus_prints_a_table(server: FakeServer) -> None:
    result = cli("get", "gpus", "--target", server.target)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "UUID", "READY", "REASON", "AGE"]
    assert [line.split()[0] for line in lines[1:]] == [f"gpu-{i}" for i in range(8)]
    assert all(line.split()[2] == "True" for line in lines[1:])


def test_get_gpus_honours_the_target_environment_variable(server: FakeServer) -> None:
    result = cli("get", "gpus", "-o", "name", NVIDIA_DEVICE_API_TARGET=server.target)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"gpu/gpu-{i}" for i in range(8)]


def test_label_selector_is_applied_by_the_server(server: FakeServer) -> None:
    result = cli(
        "get",
        "gpus",
        "-l",
        "nvidia.com/gpu.index in (1,2)",
        "-o",
        "name",
        "--target",
        server.target,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["gpu/gpu-1", "gpu/gpu-2"]


@pytest.mark.parametrize("fmt", ["json", "yaml", "wide"])
def test_output_formats(server: FakeServer, fmt: str) -> None:
    result = cli("get", "gpus", "-o", fmt, "--target", server.target)
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        data = json.loads(result.stdout)
        assert [item["metadata"]["name"] for item in data["items"]] == [
            f"gpu-{i}" for i in range(8)
        ]
        assert data["items"][0]["apiVersion"] == "device.nvidia.com/v1alpha1"
        assert data["items"][0]["status"]["conditions"][0]["type"] == "Ready"
    elif fmt == "yaml":
        assert "kind: List" in result.stdout
        assert "  - apiVersion: device.nvidia.com/v1alpha1" in result.stdout
        assert "name: gpu-7" in result.stdout
    else:
        assert "RESOURCE-VERSION" in result.stdout.splitlines()[0]


def test_get_one_gpu_as_json(server: FakeServer) -> None:
    result = cli("get", "gpu", "gpu-3", "-o", "json", "--target", server.target)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "GPU"
    assert data["metadata"]["name"] == "gpu-3"
    assert data["spec"]["uuid"].startswith("GPU-")


def test_not_found_exits_1_with_a_kubernetes_style_message(server: FakeServer) -> None:
    result = cli("get", "gpu", "gpu-99", "--target", server.target)
    assert result.returncode == 1
    assert (
        'Error from server (NotFound): gpus.device.nvidia.com "gpu-99" not found' in result.stderr
    )


def test_bad_selector_exits_1_with_the_servers_reason(server: FakeServer) -> None:
    result = cli("get", "gpus", "-l", "a in (b", "--target", server.target)
    assert result.returncode == 1
    assert "BadRequest" in result.stderr


def test_missing_socket_exits_1_naming_the_target() -> None:
    target = "unix:///tmp/nvinformers-e2e-does-not-exist.sock"
    result = cli("get", "gpus", "--target", target)
    assert result.returncode == 1
    assert "ServiceUnavailable" in result.stderr
    assert target in result.stderr


def test_garbage_target_and_bad_usage_exit_2() -> None:
    result = cli("get", "gpus", "--target", "ftp://nope")
    assert result.returncode == 2
    assert "ftp://nope" in result.stderr
    assert cli("frobnicate").returncode == 2
    assert cli("get", "gpu").returncode == 2


def test_watch_prints_one_line_per_event(server: FakeServer) -> None:
    rv = str(server.revision)
    server.set_ready("gpu-5", False)
    server.set_ready("gpu-5", True)
    result = cli(
        "watch", "gpus", "--resource-version", rv, "--timeout", "1", "--target", server.target
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:2] == ["MODIFIED", "gpu-5"]
    assert "Ready=False" in lines[0]
    assert "Ready=True" in lines[1]


def test_fake_server_command_serves_and_stops_cleanly_on_sigterm() -> None:
    socket_path = os.path.join(tempfile.mkdtemp(dir="/tmp"), "api.sock")
    proc = Background(
        "-m", "nvinformers.cli", "fake-server", "--socket", socket_path, "--gpus", "3"
    )
    try:
        proc.expect("listening")
        result = cli("get", "gpus", "-o", "name", "--target", f"unix://{socket_path}")
        assert result.stdout.splitlines() == ["gpu/gpu-0", "gpu/gpu-1", "gpu/gpu-2"]
        assert oct(os.stat(socket_path).st_mode & 0o777) == "0o660"
    finally:
        code = proc.terminate()
    assert code == 0
    assert not Path(socket_path).exists()


def test_demo_shows_the_cache_and_live_transitions() -> None:
    result = cli("demo", "--duration", "4", "--flip-interval", "0.3", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Cache synced in" in out
    assert "gpu-7" in out
    assert "->" in out  # at least one Ready transition
    assert "Stopped after" in out
