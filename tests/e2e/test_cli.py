"""The ``nvinformers`` command, run as a subprocess against a real fake server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import nvinformers
from nvinformers.testing import FakeServer
from tests.e2e.procs import Background, cli
from tests.e2e.silent import SilentServer

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


def test_not_found_prints_one_kubernetes_style_line(server: FakeServer) -> None:
    result = cli("get", "gpu", "gpu-99", "--target", server.target)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'Error from server (NotFound): gpus.device.nvidia.com "gpu-99" not found'
    ]


def test_bad_selector_prints_one_line_with_the_servers_reason(server: FakeServer) -> None:
    result = cli("get", "gpus", "-l", "a in (b", "--target", server.target)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error from server (BadRequest):")
    assert 'expected ")"' in line


def test_missing_socket_prints_one_line_naming_the_target() -> None:
    target = "unix:///tmp/nvinformers-e2e-does-not-exist.sock"
    result = cli("get", "gpus", "--target", target)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"The connection to the Device API at {target} failed: the socket does not exist - "
        "is the server running?"
    ]


def test_a_refused_connection_reads_like_kubectl(tmp_path: Path) -> None:
    directory = tempfile.mkdtemp(dir="/tmp")
    path = os.path.join(directory, "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # a socket file nobody listens on: connect() is refused
    try:
        result = cli("get", "gpus", "--target", path)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"The connection to the Device API at unix://{path} was refused - "
            "is the server running?"
        ]
    finally:
        stale.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_get_against_a_server_that_never_answers_times_out_naming_the_target() -> None:
    with SilentServer() as silent:
        for args in (("get", "gpus"), ("get", "gpu/gpu-0"), ("watch", "gpus")):
            result = cli(*args, "--target", silent.target, "--request-timeout", "300ms")
            assert result.returncode == 1, (args, result.stderr)
            assert result.stderr.splitlines() == [
                f"The Device API at {silent.target} did not answer within 0.3s (--request-timeout)"
            ], args


def test_request_timeout_defaults_to_30_seconds_and_takes_kubectls_forms() -> None:
    from nvinformers._cli import parse_duration  # here: the module's collection must not need it

    for command in ("get", "watch"):
        assert "default 30s" in cli(command, "--help").stdout
    assert parse_duration("30s") == 30.0
    assert parse_duration("30") == 30.0
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2h") == 7200.0
    assert parse_duration("0") is None  # kubectl: 0 means no limit
    for bad in ("-1s", "soon", "1x", "1s2", "inf"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(bad)
    result = cli("get", "gpus", "--request-timeout", "soon")
    assert result.returncode == 2
    assert "invalid duration 'soon'" in result.stderr


def test_garbage_target_and_bad_usage_exit_2() -> None:
    result = cli("get", "gpus", "--target", "ftp://nope")
    assert result.returncode == 2
    assert "ftp://nope" in result.stderr
    assert cli("frobnicate").returncode == 2
    assert cli("get", "gpu").returncode == 2


def test_version_prints_the_package_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"nvinformers {nvinformers.__version__}"


def test_the_fake_server_commands_own_every_argument_after_their_name() -> None:
    # What precedes the command is nvinformers' to parse; what follows, the fake server's.
    before = cli("--bogus", "fake-server")
    assert before.returncode == 2
    assert "nvinformers: error: unrecognized arguments: --bogus" in before.stderr
    after = cli("fake-server", "--bogus")
    assert after.returncode == 2
    assert "nvinformers fake-server: error: unrecognized arguments: --bogus" in after.stderr
    for name, option in (("fake-server", "--max-workers"), ("fake-kube-apiserver", "--heartbeat")):
        usage = cli(name, "-h")
        assert usage.returncode == 0
        assert usage.stdout.startswith(f"usage: nvinformers {name} ") and option in usage.stdout


def test_get_accepts_kubectls_resource_slash_name(server: FakeServer) -> None:
    for args in (("gpu/gpu-3",), ("gpus/gpu-3",), ("gpu", "gpu-3"), ("gpus", "gpu-3")):
        result = cli("get", *args, "-o", "name", "--target", server.target)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.splitlines() == ["gpu/gpu-3"]
    result = cli("get", "gpu/gpu-3", "gpu-4", "--target", server.target)
    assert result.returncode == 2
    assert "resource/name form" in result.stderr
    result = cli("get", "nodes", "--target", server.target)
    assert result.returncode == 2
    assert 'doesn\'t have a resource type "nodes"' in result.stderr


def test_output_help_lists_the_formats_and_no_empty_choice() -> None:
    for command in ("get", "watch"):
        help_text = cli(command, "--help").stdout
        assert "wide|json|yaml|name" in help_text
        assert "{," not in help_text  # argparse's rendering of an empty choice


def test_watch_lists_first_like_kubectl_get_w(server: FakeServer) -> None:
    result = cli("watch", "gpus", "-l", "nvidia.com/gpu.index=2", "--timeout", "0.3",
                 "--target", server.target)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.split()[:2] == ["ADDED", "gpu-2"]


@pytest.mark.parametrize("fmt", ["json", "yaml", "name", "wide"])
def test_watch_output_formats(server: FakeServer, fmt: str) -> None:
    rv = str(server.revision)
    server.set_ready("gpu-6", False)
    result = cli("watch", "gpus", "--resource-version", rv, "--timeout", "0.5", "-o", fmt,
                 "--target", server.target)  # fmt: skip
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["metadata"]["name"] == "gpu-6"
        assert data["status"]["conditions"][0]["status"] == "False"
    elif fmt == "yaml":
        assert result.stdout.startswith("---\napiVersion: device.nvidia.com/v1alpha1\n")
        assert "name: gpu-6" in result.stdout
    elif fmt == "name":
        assert result.stdout.splitlines() == ["gpu/gpu-6"]
    else:
        (line,) = result.stdout.splitlines()
        assert line.split()[:2] == ["MODIFIED", "gpu-6"]
        assert "action=RESTART_DRIVER" in line
    server.set_ready("gpu-6", True)


def test_watch_prints_one_line_per_event(server: FakeServer) -> None:
    rv = str(server.revision)
    server.set_ready("gpu-5", False)
    server.set_ready("gpu-5", True)
    result = cli(
        "watch", "gpus", "--resource-version", rv, "--timeout", "0.5", "--target", server.target
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:2] == ["MODIFIED", "gpu-5"]
    assert "Ready=False" in lines[0]
    assert "Ready=True" in lines[1]


def test_fake_server_command_serves_and_stops_cleanly_on_sigterm_with_143() -> None:
    socket_path = os.path.join(tempfile.mkdtemp(dir="/tmp"), "api.sock")
    proc = Background(
        "-m", "nvinformers._cli", "fake-server", "--socket", socket_path, "--gpus", "3"
    )
    try:
        proc.expect("listening")
        result = cli("get", "gpus", "-o", "name", "--target", f"unix://{socket_path}")
        assert result.stdout.splitlines() == ["gpu/gpu-0", "gpu/gpu-1", "gpu/gpu-2"]
        assert oct(os.stat(socket_path).st_mode & 0o777) == "0o660"
    finally:
        code = proc.terminate()
    assert code == 143
    assert not Path(socket_path).exists()
    assert "Traceback" not in "\n".join(proc.lines)


def test_demo_shows_the_cache_and_live_transitions() -> None:
    result = cli("demo", "--duration", "4", "--flip-interval", "0.3", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Cache synced in" in out
    assert "gpu-7" in out
    assert "->" in out  # at least one Ready transition
    assert "Stopped after" in out
