"""grpcurl (the real Go client) against FakeServer through server reflection: no .proto files.

Runs when grpcurl is on PATH or in .venv/bin (``make test`` installs it there when Go is on PATH);
skipped, with that reason, otherwise, except under ``CI=true``, where a missing grpcurl fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from nvinformers.testing import FakeServer
from tests.e2e.procs import ROOT, WAIT

pytestmark = pytest.mark.e2e

SERVICE = "nvidia.nvsentinel.v1alpha1.GpuService"


@pytest.fixture
def grpcurl() -> str:
    local = ROOT / ".venv" / "bin" / "grpcurl"
    found = shutil.which("grpcurl") or (str(local) if local.exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("grpcurl is not installed, and CI=true requires it (make peers)")
        pytest.skip("grpcurl is not installed (make grpcurl builds it into .venv/bin)")
    return found


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, gpus=2, seed=3) as srv:
        yield srv


def call(grpcurl: str, server: FakeServer, *args: str, data: str | None = None) -> str:
    """``grpcurl [-d data] <target> args...``, with the target as the fake server prints it
    (``unix:///path``, which grpcurl dials as given)."""
    flags = ["-plaintext", *(["-d", data] if data is not None else [])]
    result = subprocess.run(
        [grpcurl, *flags, server.target, *args],
        capture_output=True, text=True, timeout=WAIT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_describe_and_call_through_reflection(grpcurl: str, server: FakeServer) -> None:
    services = call(grpcurl, server, "list").split()
    assert SERVICE in services
    description = call(grpcurl, server, "describe", SERVICE)
    assert "rpc WatchGpus ( .nvidia.nvsentinel.v1alpha1.WatchGpusRequest ) returns ( stream" in (
        description
    )
    gpu = json.loads(call(grpcurl, server, f"{SERVICE}/GetGpu", data='{"name": "gpu-1"}'))
    assert gpu["gpu"]["object_meta"]["name"] == "gpu-1"
