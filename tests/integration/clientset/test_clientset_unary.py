"""Get and list against a real gRPC server on a Unix socket."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers import errors
from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.clientset import Clientset, ClientsetClosedError, Config, new_for_config
from nvinformers.clientset._config import user_agent
from nvinformers.options import GetOptions, ListOptions

from .clientset_servicer import Abort, ScriptedServer, ScriptedServicer
from .conftest import LOGGER


def gpu(name: str, rv: str = "1", **labels: str) -> pb.Gpu:
    return GPU.new(
        name,
        uuid=f"GPU-{name}",
        resource_version=rv,
        labels=labels or None,
        conditions=[Condition(type="Ready", status="True", reason="DriverReady")],
    ).to_proto()


def gpu_list(*items: pb.Gpu, rv: str = "7") -> pb.ListGpusResponse:
    return pb.ListGpusResponse(
        gpu_list=pb.GpuList(items=items, list_meta=pb.ListMeta(resource_version=rv))
    )


def test_get_round_trip(clientset: Clientset, servicer: ScriptedServicer) -> None:
    sent = gpu("gpu-0", rv="5", rack="a")
    servicer.get = lambda req: pb.GetGpuResponse(gpu=sent)
    got = clientset.device_v1alpha1().gpus().get("gpu-0", GetOptions(resource_version="5"))
    assert got == GPU.from_proto(sent)
    assert got.metadata.resource_version == "5"
    assert got.metadata.labels == {"rack": "a"}
    assert got.status.conditions[0].reason == "DriverReady"
    (recorded,) = servicer.requests_for("GetGpu")
    request = recorded.request
    assert isinstance(request, pb.GetGpuRequest)
    assert request.name == "gpu-0"
    assert not request.HasField("namespace")  # cluster-scoped
    assert request.HasField("opts") and request.opts.resource_version == "5"


def test_get_always_sends_opts(clientset: Clientset, servicer: ScriptedServicer) -> None:
    servicer.get = lambda req: pb.GetGpuResponse(gpu=gpu("gpu-0"))
    clientset.device_v1alpha1().gpus().get("gpu-0")
    request = servicer.requests_for("GetGpu")[0].request
    assert isinstance(request, pb.GetGpuRequest)
    assert request.HasField("opts") and not request.opts.HasField("resource_version")


def test_get_not_found_maps_to_kubernetes_not_found(
    clientset: Clientset, servicer: ScriptedServicer
) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        clientset.device_v1alpha1().gpus().get("gpu-9")
    assert str(info.value) == 'gpus.device.nvidia.com "gpu-9" not found'
    assert info.value.grpc_code == "NOT_FOUND"
    assert isinstance(info.value.__cause__, grpc.RpcError)


def test_list_round_trip(clientset: Clientset, servicer: ScriptedServicer) -> None:
    items = [gpu(f"gpu-{i}", rv=str(i + 1)) for i in range(3)]
    servicer.list = lambda req: gpu_list(*items, rv="9")
    result = clientset.device_v1alpha1().gpus().list()
    assert [g.metadata.name for g in result.items] == ["gpu-0", "gpu-1", "gpu-2"]
    assert result.items == tuple(GPU.from_proto(i) for i in items)
    assert result.metadata.resource_version == "9"
    request = servicer.requests_for("ListGpus")[0].request
    assert isinstance(request, pb.ListGpusRequest)
    assert not request.HasField("namespace")
    assert request.opts.ListFields() == []  # nothing set: the server applies its defaults


def test_every_list_option_arrives_on_the_server(
    clientset: Clientset, servicer: ScriptedServicer
) -> None:
    clientset.device_v1alpha1().gpus().list(
        ListOptions(
            label_selector="rack=a,!drained",
            resource_version="42",
            resource_version_match="Exact",
            timeout_seconds=30,
            allow_watch_bookmarks=True,
            send_initial_events=False,
        )
    )
    opts = servicer.requests_for("ListGpus")[0].request.opts  # type: ignore[attr-defined]
    assert opts.label_selector == "rack=a,!drained"
    assert opts.resource_version == "42"
    assert opts.resource_version_match == "Exact"
    assert opts.timeout_seconds == 30
    assert opts.allow_watch_bookmarks is True
    assert opts.HasField("send_initial_events") and opts.send_initial_events is False
    assert not opts.HasField("watch")


def test_label_selector_is_forwarded_and_a_rejection_is_bad_request(
    clientset: Clientset, servicer: ScriptedServicer
) -> None:
    def answer(req: pb.ListGpusRequest) -> pb.ListGpusResponse | Abort:
        if req.opts.label_selector == "rack in (a":
            return Abort(grpc.StatusCode.INVALID_ARGUMENT, "unable to parse requirement")
        return gpu_list(gpu("gpu-0", rack="a"))

    servicer.list = answer
    gpus = clientset.device_v1alpha1().gpus()
    assert len(gpus.list(ListOptions(label_selector="rack=a")).items) == 1
    with pytest.raises(errors.BadRequestError, match="unable to parse requirement"):
        gpus.list(ListOptions(label_selector="rack in (a"))


def test_user_agent_reaches_the_server(clientset: Clientset, servicer: ScriptedServicer) -> None:
    clientset.device_v1alpha1().gpus().list()
    agent = servicer.requests_for("ListGpus")[0].metadata["user-agent"]
    assert agent.startswith(user_agent())  # gRPC appends its own grpc-python/... token
    assert agent.startswith("nvidia-device-api-client/")


def test_explicit_user_agent_reaches_the_server(
    server: ScriptedServer, registry: CollectorRegistry
) -> None:
    config = Config(target=server.target, user_agent="my-agent/2.0", metrics_registry=registry)
    with new_for_config(config) as cs:
        cs.device_v1alpha1().gpus().list()
    assert (
        server.servicer.requests_for("ListGpus")[0]
        .metadata["user-agent"]
        .startswith("my-agent/2.0")
    )


def _ld(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (payloads here are < 128 bytes)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


# NVIDIA's January 2026 proto (doc-updates): Gpu{metadata=1{name=1, resource_version=2},
# spec=2{uuid=1}, status=3}, GpuList{metadata=1{resource_version=1}, items=2}. Checked against
# its fake server: this client read a GPU named after the UUID, and empty lists.
_JAN_GPU = _ld(1, _ld(1, b"gpu-0") + _ld(2, b"3")) + _ld(2, _ld(1, b"GPU-1"))
JANUARY_GET = _ld(1, _JAN_GPU)
JANUARY_LIST = _ld(1, _ld(1, _ld(1, b"5")) + _ld(2, _JAN_GPU))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"", "carries no gpu"),
        (JANUARY_GET, "returned a GPU named 'GPU-1'; the server may speak an older"),
        (pb.GetGpuResponse(gpu=pb.Gpu()), "GPU without metadata.name"),
        (b"\x0a\x03\xff\xff\xff", "malformed GPU object"),
    ],
)
def test_malformed_get_responses(
    clientset: Clientset, servicer: ScriptedServicer, response: object, message: str
) -> None:
    servicer.get = lambda req: response  # type: ignore[assignment,return-value]
    with pytest.raises(errors.MalformedObjectError, match=message):
        clientset.device_v1alpha1().gpus().get("gpu-0")


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"", "carries no gpu_list"),
        (gpu_list(gpu("gpu-0"), pb.Gpu()), "item 1 has no metadata.name"),
        # gpu_list { items: <3 undecodable bytes> }
        (b"\x0a\x05\x1a\x03\xff\xff\xff", "malformed GPU object"),
        (JANUARY_LIST, "unreadable resource version .*the server may speak an older"),
    ],
)
def test_malformed_list_responses(
    clientset: Clientset, servicer: ScriptedServicer, response: object, message: str
) -> None:
    servicer.list = lambda req: response  # type: ignore[assignment,return-value]
    with pytest.raises(errors.MalformedObjectError, match=message):
        clientset.device_v1alpha1().gpus().list()


def big_list(count: int) -> bytes:
    labels = {f"label-{i}": "x" * 24 for i in range(12)}
    items = [
        GPU.new(
            f"gpu-{i:05d}", uuid=f"GPU-{i:032x}", resource_version=str(i + 1), labels=labels
        ).to_proto()
        for i in range(count)
    ]
    return gpu_list(*items, rv=str(count)).SerializeToString()


def test_a_list_larger_than_grpcs_default_4mib_limit_is_received(
    clientset: Clientset, servicer: ScriptedServicer, server: ScriptedServer
) -> None:
    payload = big_list(10_000)
    assert len(payload) > 4 * 1024 * 1024
    servicer.list = lambda req: payload
    result = clientset.device_v1alpha1().gpus().list()
    assert len(result.items) == 10_000
    assert result.items[-1].metadata.name == "gpu-09999"
    assert result.metadata.resource_version == "10000"
    # With gRPC's default limit the same list fails, and the error says what to change.
    small = Config(
        target=server.target,
        max_receive_message_length=4 * 1024 * 1024,
        metrics_registry=CollectorRegistry(),
    )
    with new_for_config(small) as cs, pytest.raises(errors.InternalError) as info:
        cs.device_v1alpha1().gpus().list()
    assert info.value.grpc_code == "RESOURCE_EXHAUSTED"
    assert "max_receive_message_length" in str(info.value)


def test_missing_socket_is_lazy_and_then_service_unavailable_naming_the_target() -> None:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-ms-")
    target = f"unix://{Path(directory) / 'device-api.sock'}"
    registry = CollectorRegistry()
    with new_for_config(Config(target=target, metrics_registry=registry)) as cs:  # no error
        gpus = cs.device_v1alpha1().gpus()
        for call in (lambda: gpus.get("gpu-0"), gpus.list):
            with pytest.raises(errors.ServiceUnavailableError) as info:
                call()
            assert target in str(info.value)
            assert "socket may be missing or the server down" in str(info.value)
            assert info.value.grpc_code == "UNAVAILABLE"
        watch = gpus.watch()  # opening does not fail: the first next() does
        with pytest.raises(errors.ServiceUnavailableError, match=r"device-api.sock"):
            next(watch)
    count = registry.get_sample_value(
        "nvinformers_client_requests_total", {"method": "WatchGpus", "code": "UNAVAILABLE"}
    )
    assert count == 1


def test_deadline_maps_to_service_unavailable(
    clientset: Clientset, servicer: ScriptedServicer
) -> None:
    import threading

    release = threading.Event()

    def slow(req: pb.GetGpuRequest) -> pb.GetGpuResponse:
        release.wait(10)
        return pb.GetGpuResponse(gpu=gpu("gpu-0"))

    servicer.get = slow
    try:
        with pytest.raises(errors.ServiceUnavailableError, match="timed out"):
            clientset.device_v1alpha1().gpus().get("gpu-0", timeout=0.05)
    finally:
        release.set()


def test_unimplemented_service_maps_to_method_not_supported(registry: CollectorRegistry) -> None:
    with ScriptedServer(serve_gpu_service=False) as bare:
        config = Config(target=bare.target, metrics_registry=registry)
        with new_for_config(config) as cs, pytest.raises(errors.MethodNotSupportedError) as info:
            cs.device_v1alpha1().gpus().list()
    assert "/nvidia.nvsentinel.v1alpha1.GpuService/ListGpus" in str(info.value)
    assert "another version of the API" in str(info.value)


def test_calls_are_logged_and_counted(
    clientset: Clientset,
    servicer: ScriptedServicer,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    servicer.get = lambda req: pb.GetGpuResponse(gpu=gpu("gpu-0", rv="3"))
    gpus = clientset.device_v1alpha1().gpus()
    gpus.get("gpu-0")
    gpus.list()
    servicer.get = lambda req: Abort(grpc.StatusCode.NOT_FOUND, "nope")
    with pytest.raises(errors.NotFoundError):
        gpus.get("gpu-1")
    mine = [r for r in caplog.records if r.name == LOGGER]
    by_message: dict[str, logging.LogRecord] = {}
    for record in mine:  # the first record of each kind
        by_message.setdefault(record.getMessage().split(":")[0], record)
    succeeded = by_message["RPC succeeded"]
    assert succeeded.levelno == logging.DEBUG
    assert succeeded.__dict__["grpc_method"] == "/nvidia.nvsentinel.v1alpha1.GpuService/GetGpu"
    assert succeeded.__dict__["target"] == clientset.target
    answered = by_message["RPC answered with an error"]  # a NotFound is an answer, not a failure
    assert answered.levelno == logging.DEBUG and answered.__dict__["code"] == "NOT_FOUND"
    assert "RPC failed" not in by_message
    assert by_message["Fetched GPU"].__dict__["resource_version"] == "3"
    assert by_message["Listed GPUs"].__dict__["count"] == 0
    sample = registry.get_sample_value
    assert sample("nvinformers_client_requests_total", {"method": "GetGpu", "code": "OK"}) == 1
    assert (
        sample("nvinformers_client_requests_total", {"method": "GetGpu", "code": "NOT_FOUND"}) == 1
    )
    assert sample("nvinformers_client_requests_total", {"method": "ListGpus", "code": "OK"}) == 1
    assert sample("nvinformers_client_request_duration_seconds_count", {"method": "GetGpu"}) == 2


def test_close_closes_the_channel_and_later_calls_raise(
    server: ScriptedServer, servicer: ScriptedServicer, registry: CollectorRegistry
) -> None:
    cs = new_for_config(Config(target=server.target, metrics_registry=registry))
    gpus = cs.device_v1alpha1().gpus()
    gpus.list()
    cs.close()
    cs.close()  # idempotent
    with pytest.raises(ClientsetClosedError, match=r"clientset for unix://.* is closed"):
        gpus.list()
    closed: grpc.UnaryUnaryMultiCallable[object, bytes] = cs.channel.unary_unary(
        "/x.Y/Z", request_serializer=lambda _: b""
    )
    with pytest.raises(ValueError, match="closed channel"):  # the channel itself is closed
        closed(object())
