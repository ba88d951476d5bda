"""Every example, run as a subprocess against a real fake server."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest

from nvinformers.clientset import DEFAULT_TARGET
from nvinformers.testing import FakeServer
from tests.e2e.procs import ROOT, Background, run

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, seed=5) as srv:
        yield srv


def test_basic_client_prints_every_gpu_and_its_readiness(server: FakeServer) -> None:
    server.set_ready("gpu-2", False)
    result = run("examples/basic-client/basic_client.py", NVIDIA_DEVICE_API_TARGET=server.target)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    assert "GPU: gpu-0 | Ready: True" in lines
    assert "GPU: gpu-2 | Ready: False" in lines
    assert "discovered GPUs count=8" in result.stderr


def test_basic_client_exits_1_when_the_socket_is_missing() -> None:
    result = run("examples/basic-client/basic_client.py", "--target", "unix:///tmp/nvinf-nope.sock")
    assert result.returncode == 1
    assert "unavailable" in result.stderr


def test_basic_client_readme_quotes_the_real_error() -> None:
    readme = (ROOT / "examples" / "basic-client" / "README.md").read_text()
    match = re.search(r"exits 1 with\s+`([^`]+)`", readme)
    assert match is not None
    target = "unix:///tmp/nvinf-nope.sock"
    result = run("examples/basic-client/basic_client.py", "--target", target)
    assert result.returncode == 1
    quoted = match.group(1).replace(DEFAULT_TARGET, target)
    for fragment in quoted.split("…"):
        assert fragment.strip() in result.stderr, (fragment, result.stderr)


def test_streaming_daemon_logs_transitions_serves_metrics_and_stops_on_sigterm(
    server: FakeServer,
) -> None:
    daemon = Background(
        "examples/streaming-daemon/streaming_daemon.py", "--metrics-port", "0",
        NVIDIA_DEVICE_API_TARGET=server.target,
    )  # fmt: skip
    try:
        line = daemon.expect("metrics and health on http://127.0.0.1:")
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match is not None
        base = f"http://127.0.0.1:{match.group(1)}"
        daemon.expect("starting long-lived watch stream")
        daemon.expect("cache synced: 8 GPUs")
        server.set_ready("gpu-4", False)
        changed = daemon.expect("gpu status changed name=gpu-4")
        assert "ready=False" in changed
        # The Manager's endpoints, in Kubernetes' text form (JSON on request).
        with urllib.request.urlopen(base + "/healthz?verbose", timeout=10) as response:
            assert "[+]informer/gpus ok" in response.read().decode()
        with urllib.request.urlopen(base + "/readyz?format=json", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert 'nvinformers_informer_synced{informer="gpus"} 1.0' in metrics
        assert "nvinformers_client_requests_total" in metrics
        assert (
            'nvinformers_informer_handler_backlog{handler="ready-logger",informer="gpus"}'
            in metrics
        )
    finally:
        code = daemon.terminate()
    assert code == 0
    assert any("stopped cleanly" in line for line in daemon.lines)
