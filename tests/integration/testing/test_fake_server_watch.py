"""FakeServer over a real Unix socket: WatchGpus semantics (bursts, replay, expiry, deletes,
bookmarks, streaming lists, timeouts, selectors, the simulation threads)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.testing import INITIAL_EVENTS_END_ANNOTATION, FakeServer

from .conftest import WAIT, Client, WatchStream

MakeClient = Callable[[str], Client]


def rv(event: pb.WatchGpusResponse) -> int:
    return int(event.object.object_meta.resource_version)


def relabel(server: FakeServer, name: str, **labels: str) -> GPU:
    current = server.get_gpu(name)
    return server.update_gpu(
        GPU.new(
            name, uuid=current.spec.uuid, labels=labels, annotations=current.metadata.annotations
        )
    )


def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Tiny bounded waits for state that no condition announces (the compaction thread)."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return True
        pause.wait(0.005)
    return predicate()


class TestStart:
    @pytest.mark.parametrize("resource_version", ["", "0"])
    def test_added_burst_then_live_events(
        self, client: Client, server: FakeServer, resource_version: str
    ) -> None:
        stream = client.watch(resource_version=resource_version)
        burst = stream.take(8)
        assert {e.type for e in burst} == {"ADDED"}
        assert sorted(e.object.object_meta.name for e in burst) == [f"gpu-{i}" for i in range(8)]
        server.set_ready("gpu-3", False)
        event = stream.next()
        assert (event.type, event.object.object_meta.name, rv(event)) == ("MODIFIED", "gpu-3", 9)
        assert event.object.status.conditions[0].status == "False"

    def test_replay_from_a_revision_has_no_gap_and_no_duplicate_under_writes(
        self, client: Client, server: FakeServer
    ) -> None:
        writes = 400
        pause = threading.Event()

        def write() -> None:
            for _ in range(writes):
                server.flip_random_gpu()
                pause.wait(0.0002)  # leave the lists and watches room to start mid-stream

        writer = threading.Thread(target=write, name="test-writer")
        writer.start()
        starts: list[tuple[int, WatchStream]] = []
        try:
            while writer.is_alive() and len(starts) < 6:
                start = int(client.list().list_meta.resource_version)
                starts.append((start, client.watch(resource_version=str(start))))
                writer.join(0.01)
        finally:
            writer.join()
        final = server.revision
        assert final == 8 + writes
        assert any(8 < start < final for start, _ in starts)
        for start, stream in starts:
            events = [stream.next() for _ in range(final - start)]
            assert [rv(e) for e in events] == list(range(start + 1, final + 1))
            assert {e.type for e in events} <= {"MODIFIED"}
        # Nothing extra follows: the next event is the next write.
        server.flip_random_gpu()
        for _, stream in starts:
            assert rv(stream.next()) == final + 1

    def test_compacted_revision_ends_the_stream_with_out_of_range(
        self, client: Client, server: FakeServer
    ) -> None:
        server.set_ready("gpu-0", False)
        assert server.compact() == 9
        end = client.watch(resource_version="3").end()
        assert end.code is grpc.StatusCode.OUT_OF_RANGE
        assert end.details == "too old resource version: 3 (9)"
        stream = client.watch(resource_version="9")
        server.set_ready("gpu-0", True)
        assert rv(stream.next()) == 10

    def test_unparsable_revision_is_out_of_range(self, client: Client) -> None:
        end = client.watch(resource_version="not-a-number").end()
        assert end.code is grpc.StatusCode.OUT_OF_RANGE
        assert "invalid resource version" in end.details

    def test_deleted_carries_the_last_state(self, client: Client, server: FakeServer) -> None:
        before = server.get_gpu("gpu-6").to_proto()
        stream = client.watch(resource_version="8")
        server.delete_gpu("gpu-6")
        event = stream.next()
        assert event.type == "DELETED"
        assert rv(event) == 9
        event.object.object_meta.resource_version = before.object_meta.resource_version
        assert event.object == before

    def test_bad_selector_is_invalid_argument(self, client: Client) -> None:
        end = client.watch(label_selector="a in (b").end()
        assert end.code is grpc.StatusCode.INVALID_ARGUMENT
        assert 'invalid label selector "a in (b"' in end.details

    @pytest.mark.parametrize(
        ("opts", "fragment"),
        [
            ({"send_initial_events": True}, "sendInitialEvents requires setting"),
            (
                {"send_initial_events": True, "resource_version_match": "Exact"},
                "sendInitialEvents requires setting",
            ),
            (
                {"resource_version_match": "NotOlderThan"},
                "forbidden for watch unless sendInitialEvents",
            ),
        ],
    )
    def test_streaming_list_option_validation(
        self, client: Client, opts: dict[str, Any], fragment: str
    ) -> None:
        end = client.watch(**opts).end()
        assert end.code is grpc.StatusCode.INVALID_ARGUMENT
        assert fragment in end.details


class TestStreamingList:
    def test_initial_events_end_bookmark_follows_the_burst(
        self, client: Client, server: FakeServer
    ) -> None:
        stream = client.watch(
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
        )
        assert [e.type for e in stream.take(8)] == ["ADDED"] * 8
        bookmark = stream.next()
        assert bookmark.type == "BOOKMARK"
        meta = bookmark.object.object_meta
        assert meta.resource_version == "8"
        assert dict(meta.annotations) == {INITIAL_EVENTS_END_ANNOTATION: "true"}
        assert meta.name == ""
        server.set_ready("gpu-1", False)
        assert rv(stream.next()) == 9

    def test_send_initial_events_false_starts_from_now(
        self, client: Client, server: FakeServer
    ) -> None:
        stream = client.watch(send_initial_events=False, resource_version_match="NotOlderThan")
        assert server.wait_for_watches(1, WAIT)  # "from now": the write must come after
        server.set_ready("gpu-1", False)
        event = stream.next()
        assert (event.type, rv(event)) == ("MODIFIED", 9)


class TestBookmarksAndTimeouts:
    def test_progress_bookmarks_carry_only_the_current_revision(
        self, make_client: MakeClient
    ) -> None:
        with FakeServer(flip_interval=None, bookmark_interval=0.05) as server:
            client: Client = make_client(server.target)
            with_bookmarks = client.watch(resource_version="8", allow_watch_bookmarks=True)
            without = client.watch(resource_version="8")
            first = with_bookmarks.next()
            assert first.type == "BOOKMARK"
            assert first.object.object_meta.resource_version == "8"
            assert first.object.object_meta.name == ""
            assert not first.object.HasField("spec")
            server.set_ready("gpu-0", False)
            events = with_bookmarks.until(
                lambda e: e.type == "BOOKMARK" and e.object.object_meta.resource_version == "9"
            )
            assert [e.type for e in events if e.type != "BOOKMARK"] == ["MODIFIED"]
            # The stream that did not ask for bookmarks got only the change.
            assert without.next().type == "MODIFIED"
            server.set_ready("gpu-0", True)
            event = without.next()
            assert (event.type, rv(event)) == ("MODIFIED", 10)

    def test_timeout_seconds_ends_the_stream_cleanly(
        self, client: Client, server: FakeServer
    ) -> None:
        stream = client.watch(resource_version="8", timeout_seconds=1)
        assert server.wait_for_watches(1, WAIT)
        end = stream.end(timeout=WAIT)
        assert end.code is grpc.StatusCode.OK
        assert server.wait_for_watches(0, WAIT)


class TestSelectors:
    def test_watch_selector_transitions(self, client: Client, server: FakeServer) -> None:
        stream = client.watch(resource_version="8", label_selector="tier=gold")
        relabel(server, "gpu-2", tier="silver")  # 9: never matches
        relabel(server, "gpu-1", tier="gold")  # 10: starts matching → ADDED
        relabel(server, "gpu-1", tier="gold", zone="z")  # 11: still matches → MODIFIED
        relabel(server, "gpu-1", zone="z")  # 12: stops matching → DELETED (previous state)
        events = stream.take(3)
        assert [(e.type, e.object.object_meta.name, rv(e)) for e in events] == [
            ("ADDED", "gpu-1", 10),
            ("MODIFIED", "gpu-1", 11),
            ("DELETED", "gpu-1", 12),
        ]
        assert dict(events[2].object.object_meta.labels) == {"tier": "gold", "zone": "z"}

    def test_burst_honours_the_selector(self, client: Client) -> None:
        stream = client.watch(label_selector="nvidia.com/gpu.index notin (0,1,2,3,4,5)")
        names = sorted(e.object.object_meta.name for e in stream.take(2))
        assert names == ["gpu-6", "gpu-7"]

    def test_namespace_filters_watches(self, make_client: MakeClient) -> None:
        with FakeServer(gpus=2, flip_interval=None, stamp_default_namespace=True) as server:
            client: Client = make_client(server.target)
            in_default = client.watch(namespace="default")
            elsewhere = client.watch(namespace="other", resource_version="2")
            assert [e.type for e in in_default.take(2)] == ["ADDED", "ADDED"]
            server.create_gpu(GPU.new("gpu-9", namespace="other"))
            event = elsewhere.next()
            assert (event.type, event.object.object_meta.name) == ("ADDED", "gpu-9")


class TestSimulation:
    def test_flipper_toggles_ready_periodically(self, make_client: MakeClient) -> None:
        with FakeServer(flip_interval=0.02, seed=1) as server:
            client: Client = make_client(server.target)
            stream = client.watch(resource_version="8")
            first, second = stream.take(2)
            assert (first.type, rv(first), rv(second)) == ("MODIFIED", 9, 10)
            [ready] = first.object.status.conditions
            assert (ready.status, ready.reason) == ("False", "DriverNotReady")
            assert first.object.status.recommended_action

    def test_compaction_thread_keeps_the_history_limit(self, make_client: MakeClient) -> None:
        with FakeServer(flip_interval=None, history_limit=2, compaction_interval=0.02) as server:
            assert eventually(lambda: server.storage.tracker.compacted_revision == 6)
            client: Client = make_client(server.target)
            assert client.watch(resource_version="5").end().code is grpc.StatusCode.OUT_OF_RANGE
            assert [rv(e) for e in client.watch(resource_version="6").take(2)] == [7, 8]
