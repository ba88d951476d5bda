"""WatchGpus through GPUWatch against a real gRPC server on a Unix socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers import errors
from nvinformers.api.device.v1alpha1 import GPU, wire_pb2
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.clientset import Clientset, Config, GPUWatch, new_for_config
from nvinformers.clientset._clientset import channel_options
from nvinformers.clientset._gpus import WATCH_GPUS
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION, ListOptions
from nvinformers.watch import Event, EventType

from .clientset_servicer import (
    Abort,
    Block,
    ScriptedServer,
    ScriptedServicer,
    WatchStep,
    watch_event,
)

WAIT = 10.0  # upper bound of any wait; reached only when a test fails


def gpu(name: str, rv: str, **annotations: str) -> pb.Gpu:
    return GPU.new(
        name, uuid=f"GPU-{name}", resource_version=rv, annotations=annotations or None
    ).to_proto()


def run_script(servicer: ScriptedServicer, *steps: WatchStep) -> None:
    servicer.watch = lambda req: list(steps)


def summary(events: list[Event[GPU]]) -> list[tuple[str, str, str]]:
    return [
        (e.type.value, e.object.metadata.name, e.object.metadata.resource_version) for e in events
    ]


def test_events_pass_through_and_a_clean_end_is_quiet(
    clientset: Clientset, servicer: ScriptedServicer, registry: CollectorRegistry
) -> None:
    run_script(
        servicer,
        watch_event("ADDED", gpu("gpu-0", "1")),
        watch_event("MODIFIED", gpu("gpu-0", "2")),
        watch_event("DELETED", gpu("gpu-0", "3")),
        watch_event("BOOKMARK", gpu("", "4", **{INITIAL_EVENTS_END_ANNOTATION: "true"})),
    )
    with clientset.device_v1alpha1().gpus().watch(ListOptions(resource_version="0")) as watch:
        events = list(watch)  # ends by itself: the server returned OK
    assert summary(events) == [
        ("ADDED", "gpu-0", "1"),
        ("MODIFIED", "gpu-0", "2"),
        ("DELETED", "gpu-0", "3"),
        ("BOOKMARK", "", "4"),
    ]
    assert events[3].object.metadata.annotations == {INITIAL_EVENTS_END_ANNOTATION: "true"}
    assert watch.resource_version == "4"
    sample = registry.get_sample_value
    assert sample("nvinformers_client_stream_messages_received_total", {"method": "WatchGpus"}) == 4
    assert sample("nvinformers_client_requests_total", {"method": "WatchGpus", "code": "OK"}) == 1
    assert sample("nvinformers_client_request_duration_seconds_count", {"method": "WatchGpus"}) == 1


def test_watch_options_arrive_on_the_server(
    clientset: Clientset, servicer: ScriptedServicer
) -> None:
    opts = ListOptions(
        label_selector="rack=a",
        resource_version="17",
        resource_version_match="NotOlderThan",
        timeout_seconds=300,
        allow_watch_bookmarks=True,
        send_initial_events=True,
    )
    assert list(clientset.device_v1alpha1().gpus().watch(opts)) == []
    request = servicer.requests_for("WatchGpus")[0].request
    assert isinstance(request, pb.WatchGpusRequest)
    assert not request.HasField("namespace")
    assert request.opts.watch is True
    assert request.opts.label_selector == "rack=a"
    assert request.opts.resource_version == "17"
    assert request.opts.resource_version_match == "NotOlderThan"
    assert request.opts.timeout_seconds == 300
    assert request.opts.allow_watch_bookmarks is True
    assert request.opts.send_initial_events is True


def test_out_of_range_is_expired(clientset: Clientset, servicer: ScriptedServicer) -> None:
    run_script(
        servicer,
        watch_event("ADDED", gpu("gpu-0", "5")),
        Abort(grpc.StatusCode.OUT_OF_RANGE, "too old resource version: 1 (5)"),
    )
    watch = clientset.device_v1alpha1().gpus().watch(ListOptions(resource_version="1"))
    assert next(watch).type is EventType.ADDED
    with pytest.raises(errors.ExpiredError, match=r"too old resource version: 1 \(5\)") as info:
        next(watch)
    assert errors.is_expired(info.value) and info.value.grpc_code == "OUT_OF_RANGE"
    assert next(watch, None) is None


def test_other_stream_statuses_are_mapped(clientset: Clientset, servicer: ScriptedServicer) -> None:
    run_script(servicer, Abort(grpc.StatusCode.INVALID_ARGUMENT, "bad selector"))
    with pytest.raises(errors.BadRequestError, match="bad selector"):
        next(clientset.device_v1alpha1().gpus().watch())


def test_in_band_error_event_is_raised_not_crashed_on(
    clientset: Clientset, servicer: ScriptedServicer
) -> None:
    run_script(
        servicer, watch_event("ERROR", gpu("gpu-1", "3")), watch_event("ADDED", gpu("x", "4"))
    )
    watch = clientset.device_v1alpha1().gpus().watch()
    with pytest.raises(errors.InternalError, match="in-band ERROR watch event"):
        next(watch)
    assert next(watch, None) is None


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (watch_event("MODIFIED", None), "watch event MODIFIED without an object"),
        (watch_event("ADDED", pb.Gpu()), "watch event ADDED object without metadata.name"),
        (watch_event("DELETED", b"\xff\xff\xff\xff"), "watch event DELETED: malformed GPU object"),
    ],
)
def test_malformed_events_raise_malformed_object_error(
    clientset: Clientset, servicer: ScriptedServicer, step: WatchStep, message: str
) -> None:
    run_script(servicer, step, Block())
    watch = clientset.device_v1alpha1().gpus().watch()
    with pytest.raises(errors.MalformedObjectError, match=message):
        next(watch)
    # The watch cancelled its call: the server's blocked handler is released.
    assert servicer.watch_ended.wait(WAIT)
    assert next(watch, None) is None


def test_unknown_event_types_are_skipped(
    clientset: Clientset, servicer: ScriptedServicer, caplog: pytest.LogCaptureFixture
) -> None:
    run_script(
        servicer,
        watch_event("SYNC", gpu("gpu-0", "1")),
        watch_event("ADDED", gpu("gpu-0", "2")),
    )
    watch = clientset.device_v1alpha1().gpus().watch()
    assert summary(list(watch)) == [("ADDED", "gpu-0", "2")]
    assert watch.skipped_events == 1
    assert any("unknown type 'SYNC'" in r.getMessage() for r in caplog.records)


def consume_in_thread(watch: GPUWatch) -> tuple[threading.Thread, threading.Event, list[object]]:
    """Iterate ``watch`` on a named thread; the Event is set when iteration ends (or fails)."""
    ended = threading.Event()
    got: list[object] = []

    def run() -> None:
        try:
            got.extend(watch)
        except Exception as exc:  # recorded for the assertion, never swallowed silently
            got.append(exc)
        finally:
            ended.set()

    thread = threading.Thread(target=run, name="test-gpu-watch-consumer")
    thread.start()
    return thread, ended, got


def test_stop_from_another_thread_ends_a_blocked_iteration_promptly(
    clientset: Clientset, servicer: ScriptedServicer, registry: CollectorRegistry
) -> None:
    run_script(servicer, watch_event("ADDED", gpu("gpu-0", "1")), Block())
    watch = clientset.device_v1alpha1().gpus().watch()
    thread, ended, got = consume_in_thread(watch)
    try:
        assert servicer.watch_blocked.wait(WAIT)  # the server sent its event and is idle
        assert not ended.wait(0.05)  # the consumer is blocked in next()
        watch.stop()
        watch.stop()
        assert ended.wait(WAIT), "stop() did not end the blocked iteration"
    finally:
        watch.stop()
        thread.join(WAIT)
    assert summary(got) == [("ADDED", "gpu-0", "1")]  # type: ignore[arg-type]
    assert servicer.watch_ended.wait(WAIT)  # the server saw the cancellation
    assert (
        registry.get_sample_value(
            "nvinformers_client_requests_total", {"method": "WatchGpus", "code": "CANCELLED"}
        )
        == 1
    )


def test_closing_the_clientset_ends_open_watches_quietly(
    server: ScriptedServer, servicer: ScriptedServicer
) -> None:
    run_script(servicer, Block())
    cs = new_for_config(Config(target=server.target, metrics_registry=CollectorRegistry()))
    watch = cs.device_v1alpha1().gpus().watch()
    thread, ended, got = consume_in_thread(watch)
    try:
        assert servicer.watch_blocked.wait(WAIT)
        cs.close()
        assert ended.wait(WAIT)
    finally:
        watch.stop()
        thread.join(WAIT)
    assert got == []


@pytest.mark.parametrize("single_threaded", [True, False])
def test_cancel_from_another_thread_ends_a_blocked_raw_iteration(
    server: ScriptedServer, servicer: ScriptedServicer, single_threaded: bool
) -> None:
    """The channel option the clientset relies on keeps call.cancel() effective across threads."""
    run_script(servicer, Block())
    config = Config(target=server.target, single_threaded_streams=single_threaded)
    channel = grpc.insecure_channel(server.target, options=channel_options(config))
    try:
        stream = channel.unary_stream(
            WATCH_GPUS,
            request_serializer=pb.WatchGpusRequest.SerializeToString,
            response_deserializer=wire_pb2.RawWatchGpusResponse.FromString,
        )
        call = stream(pb.WatchGpusRequest())
        expected = "_SingleThreadedRendezvous" if single_threaded else "_MultiThreadedRendezvous"
        assert type(call).__name__ == expected
        outcome: list[object] = []
        ended = threading.Event()

        def consume() -> None:
            try:
                outcome.extend(call)
            except grpc.RpcError as err:
                outcome.append(err.code())
            finally:
                ended.set()

        thread = threading.Thread(target=consume, name="test-raw-stream-consumer")
        thread.start()
        try:
            assert servicer.watch_blocked.wait(WAIT)
            call.cancel()
            assert ended.wait(WAIT)
        finally:
            call.cancel()
            thread.join(WAIT)
        assert outcome == [grpc.StatusCode.CANCELLED]
    finally:
        channel.close()


def test_the_clientset_channel_uses_single_threaded_streams(
    clientset: Clientset, servicer: ScriptedServicer
) -> None:
    watch = clientset.device_v1alpha1().gpus().watch()
    try:
        assert type(watch._call).__name__ == "_SingleThreadedRendezvous"
    finally:
        watch.stop()


def test_many_events_in_order(clientset: Clientset, servicer: ScriptedServicer) -> None:
    count = 2_000

    def steps(req: pb.WatchGpusRequest) -> Iterator[WatchStep]:
        for i in range(count):
            yield watch_event("MODIFIED", gpu(f"gpu-{i % 8}", str(i + 1)))

    servicer.watch = steps
    watch = clientset.device_v1alpha1().gpus().watch()
    revisions = [int(e.object.metadata.resource_version) for e in watch]
    assert revisions == list(range(1, count + 1))
    assert watch.messages_received == count
