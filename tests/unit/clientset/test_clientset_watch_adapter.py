"""GPUWatch over a scripted call: event checks, errors, end of stream, stop, metrics."""

from __future__ import annotations

import logging
import re
from collections import deque

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers import errors
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.api.device.v1alpha1.wire_pb2 import RawWatchGpusResponse
from nvinformers.clientset import GPUWatch
from nvinformers.clientset._metrics import client_metrics
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.watch import Event, EventType

from .test_clientset_status import FakeRpcError

LOGGER = "test.clientset.watch"
TARGET = "unix:///tmp/w.sock"


def message(event_type: str, gpu: GPU | bytes | None) -> bytes:
    """A watch message as gRPC hands it over: the serialized response."""
    if gpu is None:
        return RawWatchGpusResponse(type=event_type).SerializeToString()
    raw = gpu if isinstance(gpu, bytes) else gpu.to_bytes()
    return RawWatchGpusResponse(type=event_type, object=raw).SerializeToString()


class ScriptedCall:
    """A stand-in for a gRPC stream call: yields the script, then ends (OK) or raises."""

    def __init__(self, *items: bytes | grpc.RpcError) -> None:
        self.items = deque(items)
        self.cancelled = 0

    def __next__(self) -> bytes:
        if self.cancelled:
            raise FakeRpcError(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
        if not self.items:
            raise StopIteration
        item = self.items.popleft()
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def cancel(self) -> bool:
        self.cancelled += 1
        return True


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make(call: ScriptedCall, registry: CollectorRegistry) -> GPUWatch:
    return GPUWatch(
        call, target=TARGET, logger=logging.getLogger(LOGGER), metrics=client_metrics(registry)
    )


def requests(registry: CollectorRegistry, code: str) -> float | None:
    return registry.get_sample_value(
        "nvinformers_client_requests_total", {"method": "WatchGpus", "code": code}
    )


def test_events_pass_through_in_order(registry: CollectorRegistry) -> None:
    g0 = GPU.new("gpu-0", resource_version="5", uuid="GPU-0")
    g1 = GPU.new("gpu-1", resource_version="6")
    end = GPU.new("", resource_version="7", annotations={INITIAL_EVENTS_END_ANNOTATION: "true"})
    watch = make(
        ScriptedCall(
            message("ADDED", g0),
            message("MODIFIED", g1),
            message("DELETED", g0),
            message("BOOKMARK", end),
        ),
        registry,
    )
    events = list(watch)
    assert events == [
        Event(EventType.ADDED, g0),
        Event(EventType.MODIFIED, g1),
        Event(EventType.DELETED, g0),
        Event(EventType.BOOKMARK, end),
    ]
    assert [type(e) for e in events] == [Event] * 4
    bookmark = events[3].object
    assert bookmark.metadata.resource_version == "7"
    assert bookmark.metadata.annotations[INITIAL_EVENTS_END_ANNOTATION] == "true"
    assert watch.resource_version == "7"
    assert watch.messages_received == 4
    assert watch.done and not watch.stopped
    assert next(watch, None) is None  # stays ended
    sample = registry.get_sample_value
    assert sample("nvinformers_client_stream_messages_received_total", {"method": "WatchGpus"}) == 4
    assert requests(registry, "OK") == 1


@pytest.mark.parametrize(
    ("item", "message_text"),
    [
        (message("MODIFIED", None), "watch event MODIFIED without an object"),
        (message("ADDED", None), "watch event ADDED without an object"),
        (
            message("DELETED", GPU.new("", resource_version="3")),
            "watch event DELETED object without metadata.name",
        ),
        (message("ADDED", b""), "watch event ADDED object without metadata.name"),
        (message("ADDED", b"\xff\xff\xff"), "watch event ADDED: malformed GPU object"),
        (message("BOOKMARK", None), "watch event BOOKMARK without an object"),
        (
            b"\x0a\x7fnot a protobuf message",
            f"the WatchGpus message from the Device API at {TARGET} is not a valid "
            "WatchGpusResponse (24 bytes)",
        ),
    ],
)
def test_malformed_events_raise_and_end_the_watch(
    item: bytes, message_text: str, registry: CollectorRegistry
) -> None:
    call = ScriptedCall(item, message("ADDED", GPU.new("gpu-9")))
    watch = make(call, registry)
    with pytest.raises(errors.MalformedObjectError, match=re.escape(message_text)) as info:
        next(watch)
    assert info.value.resource == "gpus.device.nvidia.com"
    assert call.cancelled == 1  # the stream is abandoned, not drained
    assert next(watch, None) is None
    assert requests(registry, "CANCELLED") == 1


def test_bookmark_without_a_name_is_fine(registry: CollectorRegistry) -> None:
    watch = make(ScriptedCall(message("BOOKMARK", b"")), registry)
    event = next(watch)
    assert event.type is EventType.BOOKMARK
    assert event.object.metadata.name == ""


def test_in_band_error_raises_an_internal_error(registry: CollectorRegistry) -> None:
    watch = make(ScriptedCall(message("ERROR", GPU.new("gpu-3"))), registry)
    with pytest.raises(errors.InternalError, match="in-band ERROR watch event") as info:
        next(watch)
    assert not isinstance(info.value, errors.MalformedObjectError)
    assert "gpu-3" in str(info.value)
    assert next(watch, None) is None


@pytest.mark.parametrize(
    ("obj", "text"), [(None, "no object"), (b"\xff\xff", "undecodable object of 2 bytes")]
)
def test_in_band_error_with_junk_never_crashes(
    obj: bytes | None, text: str, registry: CollectorRegistry
) -> None:
    watch = make(ScriptedCall(message("ERROR", obj)), registry)
    with pytest.raises(errors.InternalError, match=text):
        next(watch)


def test_unknown_types_are_skipped_counted_and_warned_once_per_type(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    gpu = GPU.new("gpu-0")
    watch = make(
        ScriptedCall(
            message("SNAPSHOT", gpu),
            message("SNAPSHOT", gpu),
            message("", None),
            message("ADDED", gpu),
        ),
        registry,
    )
    assert next(watch) == Event(EventType.ADDED, gpu)
    assert watch.skipped_events == 3
    assert watch.messages_received == 4
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 2
    assert "'SNAPSHOT'" in warnings[0].getMessage()
    assert warnings[0].__dict__["event_type"] == "SNAPSHOT"


def test_clean_end_and_cancelled_end_quietly(registry: CollectorRegistry) -> None:
    assert list(make(ScriptedCall(), registry)) == []
    cancelled = make(ScriptedCall(FakeRpcError(grpc.StatusCode.CANCELLED)), registry)
    assert list(cancelled) == []
    assert requests(registry, "OK") == 1
    assert requests(registry, "CANCELLED") == 1


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.OUT_OF_RANGE, errors.ExpiredError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ExpiredError),
        (grpc.StatusCode.UNAVAILABLE, errors.ServiceUnavailableError),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.BadRequestError),
        (grpc.StatusCode.INTERNAL, errors.InternalError),
    ],
)
def test_stream_errors_are_mapped_with_the_cause_chained(
    code: grpc.StatusCode, cls: type[errors.StatusError], registry: CollectorRegistry
) -> None:
    gpu = GPU.new("gpu-0")
    raw = FakeRpcError(code, "why")
    watch = make(ScriptedCall(message("ADDED", gpu), raw), registry)
    assert next(watch).object == gpu
    with pytest.raises(cls) as info:
        next(watch)
    assert info.value.__cause__ is raw
    assert info.value.grpc_code == code.name
    assert next(watch, None) is None
    assert requests(registry, code.name) == 1


def test_stop_is_idempotent_cancels_once_and_ends_iteration(registry: CollectorRegistry) -> None:
    call = ScriptedCall(message("ADDED", GPU.new("gpu-0")))
    watch = make(call, registry)
    watch.stop()
    watch.stop()
    assert call.cancelled == 1
    assert watch.stopped and watch.done
    assert list(watch) == []
    assert requests(registry, "CANCELLED") == 1  # counted once


def test_an_error_after_stop_is_not_raised(registry: CollectorRegistry) -> None:
    call = ScriptedCall(FakeRpcError(grpc.StatusCode.UNAVAILABLE))
    watch = make(call, registry)
    watch._stopped = True  # stop() raced a failing next(): the failure is not the caller's concern
    assert next(watch, None) is None


def test_context_manager_stops(registry: CollectorRegistry) -> None:
    call = ScriptedCall(message("ADDED", GPU.new("gpu-0")))
    with make(call, registry) as watch:
        assert next(watch).type is EventType.ADDED
    assert watch.stopped and call.cancelled == 1
    assert "stopped" in repr(watch)


def test_the_message_counter_is_exact_at_once_for_a_lone_message_and_at_the_end_of_a_burst(
    registry: CollectorRegistry,
) -> None:
    gpus = [GPU.new(f"gpu-{i}", resource_version=str(i + 1)) for i in range(150)]
    watch = make(ScriptedCall(*(message("MODIFIED", g) for g in gpus)), registry)

    def counted() -> float | None:
        return registry.get_sample_value(
            "nvinformers_client_stream_messages_received_total", {"method": "WatchGpus"}
        )

    next(watch)
    assert counted() == 1  # the first message after a quiet spell is counted at once
    for _ in range(148):
        next(watch)
    assert watch.messages_received == 149
    assert 1 <= (counted() or 0) <= 149  # a burst is counted in steps
    assert list(watch) != []  # the last message, then the end of the stream
    assert counted() == 150
