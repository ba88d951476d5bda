"""Security properties: the fake server's socket is 0660 and it never follows or deletes what is
not its own socket; metrics and health endpoints listen on loopback unless told otherwise; the SDK
never writes to the Device API.

Already covered in tests/integration/testing/test_fake_server_faults.py and not repeated: the
socket is 0660 and missing parents 0755; a regular file, directory, symlink or dangling symlink at
the path is refused and left untouched; the default socket lives in a private directory removed on
stop. tests/unit/clientset/test_clientset_gpus.py checks the write verbs on an unconnected client.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client import CollectorRegistry

from nvinformers import errors
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.clientset import Clientset
from nvinformers.controller import Manager
from nvinformers.options import GetOptions
from nvinformers.testing import FakeServer, FakeServerError
from tests.e2e.procs import Background
from tests.integration.reliability.conftest import WAIT, RunInformer, cache_matches_server
from tests.unit.cache.scripted import eventually

REPO = Path(__file__).resolve().parents[3]
WRITE_RPCS = {"CreateGpu", "UpdateGpu", "UpdateGpuStatus", "DeleteGpu", "PatchGpu"}


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-sec-")
    yield Path(directory)
    shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------- the fake server's socket


def test_the_socket_is_0660_even_under_a_permissive_umask(tmp_dir: Path) -> None:
    previous = os.umask(0)
    try:
        with FakeServer(socket_path=tmp_dir / "api.sock", flip_interval=None) as server:
            st = os.lstat(server.socket_path)
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o660  # never world-accessible
    finally:
        os.umask(previous)


def test_the_default_socket_directory_is_private(tmp_dir: Path) -> None:
    with FakeServer(flip_interval=None, gpus=0) as server:
        parent = os.path.dirname(server.socket_path)
        assert stat.S_IMODE(os.stat(parent).st_mode) == 0o700
        assert os.stat(parent).st_uid == os.geteuid()


def test_stop_never_deletes_what_replaced_its_socket(tmp_dir: Path) -> None:
    path = tmp_dir / "api.sock"
    server = FakeServer(socket_path=path, flip_interval=None, gpus=0).start()
    try:
        os.unlink(path)
        path.write_text("an operator's file, not ours")
    finally:
        server.stop()
    assert path.read_text() == "an operator's file, not ours"
    # And a restart refuses the path rather than replacing the file.
    with pytest.raises(FakeServerError, match="not a socket"):
        server.start()
    assert path.read_text() == "an operator's file, not ours"


def test_a_symlink_swapped_in_while_serving_is_neither_followed_nor_deleted(
    tmp_dir: Path,
) -> None:
    path, precious = tmp_dir / "api.sock", tmp_dir / "precious"
    precious.write_text("keep")
    server = FakeServer(socket_path=path, flip_interval=None, gpus=0).start()
    try:
        os.unlink(path)
        path.symlink_to(precious)
    finally:
        server.stop()
    assert path.is_symlink() and precious.read_text() == "keep"
    with pytest.raises(FakeServerError, match="symbolic link"):
        server.start()
    assert path.is_symlink() and precious.read_text() == "keep"


# ------------------------------------------------------------------- endpoints bind loopback


def _listening_addresses(port: int) -> set[str]:
    me = psutil.Process()
    return {
        c.laddr.ip
        for c in me.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def test_the_managers_metrics_and_health_endpoint_binds_loopback_by_default() -> None:
    manager = Manager(registry=CollectorRegistry(), port=0)
    manager.start()
    try:
        port = manager.port
        assert port is not None
        assert manager.url == f"http://127.0.0.1:{port}"
        assert _listening_addresses(port) == {"127.0.0.1"}
        other = _non_loopback_address()
        with pytest.raises(OSError):  # refused (or dropped) on any other local address
            socket.create_connection((other, port), timeout=2).close()
    finally:
        assert manager.stop(WAIT)


def _non_loopback_address() -> str:
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                return str(addr.address)
    pytest.skip("no non-loopback IPv4 address on this machine to probe from")


def test_the_streaming_daemons_metrics_and_health_endpoint_binds_loopback() -> None:
    # The daemon serves them through Manager (bound as above); check what it actually listens on.
    with FakeServer(flip_interval=None, gpus=1) as server:
        daemon = Background(
            str(REPO / "examples" / "streaming-daemon" / "streaming_daemon.py"),
            "--metrics-port", "0", NVIDIA_DEVICE_API_TARGET=server.target,
        )  # fmt: skip
        try:
            line = daemon.expect("metrics and health on http://")
            match = re.search(r"http://([^:]+):(\d+)", line)
            assert match is not None and match.group(1) == "127.0.0.1"
            port = int(match.group(2))
            listening = {
                c.laddr.ip
                for c in psutil.Process(daemon.proc.pid).net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            }
            assert listening == {"127.0.0.1"}
        finally:
            assert daemon.terminate() == 0


# ------------------------------------------------------------------------------ read-only SDK


def test_the_sdk_never_writes_to_the_device_api(
    server: FakeServer, clientset: Clientset, run_informer: RunInformer
) -> None:
    gpus = clientset.device_v1alpha1().gpus()
    gpu = gpus.get("gpu-0", GetOptions())
    verbs: dict[str, Any] = {
        "create": lambda: gpus.create(GPU.new("gpu-new")),
        "update": lambda: gpus.update(gpu),
        "update_status": lambda: gpus.update_status(gpu),
        "delete": lambda: gpus.delete("gpu-0"),
        "patch": lambda: gpus.patch("gpu-0", "merge", b"{}"),
    }
    for verb, call in verbs.items():
        with pytest.raises(errors.MethodNotSupportedError, match=f"read-only: {verb} is not"):
            call()
    # A whole informer life (list, watch, events, a relist) next to it: reads only.
    informer = run_informer(clientset)
    assert informer.wait_for_sync(WAIT)
    server.set_ready("gpu-1", False)
    server.compact()
    server.end_watches(None)  # the re-watch asks for a compacted revision: relist
    assert server.wait_for_calls("ListGpus", 2, WAIT)
    server.set_ready("gpu-1", True)
    assert eventually(lambda: cache_matches_server(informer, server))
    calls = server.calls
    assert not WRITE_RPCS & set(calls), calls
    assert set(calls) <= {"GetGpu", "ListGpus", "WatchGpus"}
