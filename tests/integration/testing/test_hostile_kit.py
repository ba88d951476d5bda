"""The hostile-server kit, seen from a raw generated stub: each knob does what it says on the real
socket, and turning it off (or ``reset``) gives a well-behaved server back."""

from __future__ import annotations

import threading

import grpc
import pytest

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.testing import (
    ALPHA_REVISIONS,
    BACKWARD_REVISIONS,
    EXPONENT_REVISIONS,
    NEGATIVE_REVISIONS,
    FakeServer,
    RevisionCodec,
)
from tests.integration.testing.conftest import WAIT, Client, WatchStream


def list_call(client: Client, results: list[object]) -> threading.Thread:
    """Call ListGpus on a thread; its outcome (the list, or the RpcError) lands in ``results``."""

    def call() -> None:
        try:
            results.append(client.stub.ListGpus(pb.ListGpusRequest(), timeout=WAIT))
        except grpc.RpcError as err:
            results.append(err)

    thread = threading.Thread(target=call, name="test-list-call")
    thread.start()
    return thread


class TestHang:
    def test_a_hung_list_answers_once_released(self, server: FakeServer, client: Client) -> None:
        server.hostile.hang("ListGpus")
        results: list[object] = []
        thread = list_call(client, results)
        assert server.hostile.wait_for_hung("ListGpus", 1, WAIT)
        assert results == []
        server.hostile.release("ListGpus")
        thread.join(WAIT)
        assert isinstance(results[0], pb.ListGpusResponse)
        assert len(results[0].gpu_list.items) == 8
        assert server.hostile.hung_calls("ListGpus") == 0
        assert len(client.list().items) == 8  # no longer hanging

    def test_a_hung_call_ends_when_the_client_cancels_it(
        self, server: FakeServer, client: Client
    ) -> None:
        server.hostile.hang("ListGpus")
        future = client.stub.ListGpus.future(pb.ListGpusRequest())
        assert server.hostile.wait_for_hung("ListGpus", 1, WAIT)
        future.cancel()
        assert server.hostile.wait_for_hung("ListGpus", 0, WAIT)

    def test_a_hung_call_ends_at_its_deadline(self, server: FakeServer, client: Client) -> None:
        server.hostile.hang("GetGpu")
        with pytest.raises(grpc.RpcError) as info:
            client.stub.GetGpu(pb.GetGpuRequest(name="gpu-0"), timeout=0.2)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert server.hostile.wait_for_hung("GetGpu", 0, WAIT)

    def test_unknown_methods_are_refused(self, server: FakeServer) -> None:
        with pytest.raises(ValueError, match="unknown method 'ListGPUs'"):
            server.hostile.hang("ListGPUs")
        with pytest.raises(ValueError, match="unknown method"):
            server.hostile.send_garbage("Nope")


def test_silent_watches_stay_open_and_send_nothing(server: FakeServer, client: Client) -> None:
    server.hostile.silence()
    stream = client.watch(resource_version=str(server.revision), allow_watch_bookmarks=True)
    assert server.wait_for_watches(1, WAIT)
    server.set_ready("gpu-1", False)  # lost to the silent stream
    assert server.hostile.wait_for_silenced(1, WAIT)
    server.hostile.silence(False)
    server.set_ready("gpu-2", False)
    event = stream.next()
    assert (event.type, event.object.object_meta.name) == ("MODIFIED", "gpu-2")
    assert server.open_watches == 1


def test_garbage_replaces_responses_a_given_number_of_times(
    server: FakeServer, client: Client
) -> None:
    server.hostile.send_garbage("ListGpus", times=2)
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as info:
            client.list()
        # The raw stub's deserializer fails: gRPC reports it as INTERNAL.
        assert info.value.code() is grpc.StatusCode.INTERNAL
    assert len(client.list().items) == 8


def test_a_garbage_watch_message_comes_first(server: FakeServer, client: Client) -> None:
    server.hostile.send_garbage("WatchGpus", times=1)
    stream = client.watch(resource_version=str(server.revision))
    assert stream.end().code is grpc.StatusCode.INTERNAL


@pytest.mark.parametrize(
    "codec",
    [ALPHA_REVISIONS, NEGATIVE_REVISIONS, EXPONENT_REVISIONS, BACKWARD_REVISIONS],
    ids=lambda c: c.name,
)
def test_revisions_are_encoded_out_and_decoded_in(
    server: FakeServer, client: Client, codec: RevisionCodec
) -> None:
    server.hostile.set_revisions(codec)
    listed = client.list()
    rv = listed.list_meta.resource_version
    assert rv == codec.encode(server.revision)
    assert rv.isdigit() == (codec is BACKWARD_REVISIONS)
    assert {g.object_meta.resource_version for g in listed.items} == {
        codec.encode(i) for i in range(1, 9)
    }
    stream = client.watch(resource_version=rv)  # the server understands what it handed out
    changed = server.set_ready("gpu-3", False)
    event = stream.next()
    assert event.object.object_meta.resource_version == codec.encode(
        int(changed.metadata.resource_version)
    )
    assert (
        client.get("gpu-3").object_meta.resource_version
        == event.object.object_meta.resource_version
    )


def test_backward_revisions_decrease(server: FakeServer, client: Client) -> None:
    server.hostile.set_revisions(BACKWARD_REVISIONS)
    before = int(client.list().list_meta.resource_version)
    server.set_ready("gpu-0", False)
    assert int(client.list().list_meta.resource_version) < before


def test_flapping_watches_end_with_unavailable(server: FakeServer, client: Client) -> None:
    server.hostile.flap(1)
    stream = client.watch(resource_version=str(server.revision), timeout_seconds=300)
    end = stream.end()
    assert end.code is grpc.StatusCode.UNAVAILABLE and "flapped" in end.details
    # A client timeout shorter than the flap interval still ends the stream cleanly.
    server.hostile.flap(60)
    assert client.watch(resource_version=str(server.revision), timeout_seconds=1).end().code is (
        grpc.StatusCode.OK
    )
    with pytest.raises(ValueError):
        server.hostile.flap(0)


def test_ignored_initial_events_make_a_streaming_list_a_plain_watch(
    server: FakeServer, client: Client
) -> None:
    def streaming_list(timeout_seconds: int = 0) -> WatchStream:
        return client.watch(
            resource_version=str(server.revision),
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
        )

    server.hostile.ignore_initial_events()
    # From a revision: nothing at all, no end bookmark (the device-apiserver's memory storage).
    assert streaming_list(timeout_seconds=1).end().code is grpc.StatusCode.OK
    server.hostile.ignore_initial_events(False)
    end = streaming_list().next_of_type("BOOKMARK")
    assert end.object.object_meta.annotations["k8s.io/initial-events-end"] == "true"


def test_reset_restores_a_well_behaved_server(server: FakeServer, client: Client) -> None:
    hostile = server.hostile
    hostile.set_revisions(ALPHA_REVISIONS)
    hostile.send_garbage("GetGpu")
    hostile.silence()
    hostile.flap(1)
    hostile.ignore_initial_events()
    hostile.hang("ListGpus")
    results: list[object] = []
    thread = list_call(client, results)
    assert hostile.wait_for_hung("ListGpus", 1, WAIT)
    hostile.reset()
    thread.join(WAIT)
    assert isinstance(results[0], pb.ListGpusResponse)
    assert results[0].gpu_list.list_meta.resource_version == str(server.revision)
    assert client.get("gpu-0").object_meta.name == "gpu-0"
    stream = client.watch(
        resource_version=str(server.revision),
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
    )
    assert stream.next_of_type("BOOKMARK").object.object_meta.annotations  # initial events end
