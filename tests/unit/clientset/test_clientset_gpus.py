"""The typed GPU client without a server: validation, wire encoding, read-only verbs, clientset."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers import errors
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.clientset import (
    Clientset,
    ClientsetClosedError,
    Config,
    GPUClient,
    new_for_config,
    new_for_config_and_channel,
    new_for_config_or_die,
)
from nvinformers.clientset._gpus import list_options_to_proto
from nvinformers.options import GetOptions, ListOptions


@pytest.fixture
def clientset() -> Iterator[Clientset]:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-gc-")
    cs = new_for_config(
        Config(
            target=f"unix://{Path(directory) / 'absent.sock'}", metrics_registry=CollectorRegistry()
        )
    )
    yield cs
    cs.close()


def test_unset_list_options_are_absent_on_the_wire() -> None:
    msg = list_options_to_proto(ListOptions())
    assert msg.ListFields() == []
    assert list_options_to_proto(None).ListFields() == []
    watch = list_options_to_proto(None, watch=True)
    assert [f.name for f, _ in watch.ListFields()] == ["watch"]


def test_every_list_option_is_encoded() -> None:
    msg = list_options_to_proto(
        ListOptions(
            label_selector="rack=a",
            resource_version="42",
            resource_version_match="NotOlderThan",
            timeout_seconds=0,
            allow_watch_bookmarks=True,
            send_initial_events=False,
        ),
        watch=True,
    )
    assert msg.label_selector == "rack=a"
    assert msg.resource_version == "42"
    assert msg.resource_version_match == "NotOlderThan"
    assert msg.HasField("timeout_seconds") and msg.timeout_seconds == 0
    assert msg.allow_watch_bookmarks is True
    assert msg.HasField("send_initial_events") and msg.send_initial_events is False
    assert msg.watch is True


def test_bad_options_are_rejected_before_any_call(clientset: Clientset) -> None:
    gpus = clientset.device_v1alpha1().gpus()
    with pytest.raises(ValueError, match=r"ListOptions.timeout_seconds must be >= 0"):
        gpus.list(ListOptions(timeout_seconds=-1))
    with pytest.raises(ValueError, match=r"opts must be nvinformers.options.ListOptions"):
        gpus.watch(GetOptions())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"opts must be nvinformers.options.GetOptions"):
        gpus.get("gpu-0", ListOptions())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        gpus.get("gpu-0", timeout=0)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        gpus.list(timeout=-1.0)


@pytest.mark.parametrize("name", ["", None, 7])
def test_get_needs_a_name(clientset: Clientset, name: object) -> None:
    with pytest.raises(ValueError, match="GPU name must be a non-empty string"):
        clientset.device_v1alpha1().gpus().get(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("verb", "args"),
    [
        ("create", (GPU.new("gpu-0"),)),
        ("update", (GPU.new("gpu-0"),)),
        ("update_status", (GPU.new("gpu-0"),)),
        ("delete", ("gpu-0",)),
        ("patch", ("gpu-0", "merge", b"{}")),
    ],
)
def test_write_verbs_are_refused(clientset: Clientset, verb: str, args: tuple[object, ...]) -> None:
    gpus = clientset.device_v1alpha1().gpus()
    with pytest.raises(
        errors.MethodNotSupportedError, match="the nvinformers SDK is read-only"
    ) as info:
        getattr(gpus, verb)(*args)
    assert verb in str(info.value)
    assert info.value.code == 405 and info.value.grpc_code is None


def test_the_group_and_typed_clients_are_cached(clientset: Clientset) -> None:
    group = clientset.device_v1alpha1()
    assert group is clientset.device_v1alpha1()
    assert isinstance(group.gpus(), GPUClient)
    assert group.gpus() is group.gpus()


def test_first_call_on_a_missing_socket_is_service_unavailable(clientset: Clientset) -> None:
    with pytest.raises(errors.ServiceUnavailableError) as info:
        clientset.device_v1alpha1().gpus().get("gpu-0", timeout=5)
    assert clientset.target in str(info.value)
    assert isinstance(info.value.__cause__, grpc.RpcError)


def test_close_is_idempotent_and_later_calls_raise_clearly(clientset: Clientset) -> None:
    gpus = clientset.device_v1alpha1().gpus()
    clientset.close()
    clientset.close()
    assert clientset.closed
    for call in (lambda: gpus.get("gpu-0"), gpus.list, gpus.watch):
        with pytest.raises(ClientsetClosedError, match="is closed"):
            call()
    assert isinstance(ClientsetClosedError("x"), RuntimeError)
    assert "closed" in repr(clientset)


def test_new_for_config_rejects_a_bad_config() -> None:
    with pytest.raises(ValueError, match="config must be an nvinformers Config"):
        new_for_config("unix:///tmp/x.sock")  # type: ignore[arg-type]


def test_new_for_config_or_die_exits_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NVIDIA_DEVICE_API_TARGET", "http://nope")
    with pytest.raises(SystemExit) as info:
        new_for_config_or_die()
    message = str(info.value.code)
    assert message.startswith("nvinformers: cannot create the Device API clientset")
    assert "NVIDIA_DEVICE_API_TARGET" in message and "unknown scheme 'http'" in message


def test_new_for_config_or_die_prints_to_stderr_and_exits_1(tmp_path: Path) -> None:
    import subprocess

    code = "from nvinformers.clientset import new_for_config_or_die; new_for_config_or_die()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"NVIDIA_DEVICE_API_TARGET": "unix://", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).parents[3],
    )
    assert result.returncode == 1
    assert "unix target without a socket path" in result.stderr


def test_new_for_config_and_channel_leaves_the_callers_channel_open() -> None:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-gc-")
    channel = grpc.insecure_channel(f"unix://{Path(directory) / 'absent.sock'}")
    try:
        cs = new_for_config_and_channel(Config(metrics_registry=CollectorRegistry()), channel)
        assert cs.target == "caller-supplied channel"
        cs.close()
        # The caller's channel still works (fails with UNAVAILABLE, not "closed channel").
        call: grpc.UnaryUnaryMultiCallable[object, bytes] = channel.unary_unary(
            "/x.Y/Z", request_serializer=lambda _: b""
        )
        with pytest.raises(grpc.RpcError) as info:
            call(object(), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        named = new_for_config_and_channel(None, channel, target="my-server")
        assert named.target == "my-server"
    finally:
        channel.close()
    with pytest.raises(ValueError, match=r"channel must be a grpc.Channel"):
        new_for_config_and_channel(None, None)  # type: ignore[arg-type]
