"""nvinformers.testing.storage: the fake server's GPU rules over the shared tracker (revisions,
write rules, namespaces, where a watch starts), without gRPC. The tracker's own guarantees are
tested in test_tracker.py."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    NotFoundError,
)
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.testing.storage import RawEvent, Storage, StoredGPU, event_gpu
from nvinformers.testing.tracker import Ended, Watcher


def new_storage(**kwargs: object) -> Storage:
    counter = itertools.count()
    return Storage(uid_factory=lambda: f"uid-{next(counter)}", **kwargs)  # type: ignore[arg-type]


def gpu(name: str, **labels_: str) -> pb.Gpu:
    return GPU.new(
        name,
        uuid=f"GPU-{name}",
        labels=labels_,
        conditions=[Condition(type="Ready", status="True")],
    ).to_proto()


def with_labels(storage: Storage, name: str, **labels_: str) -> GPU:
    msg = storage.get(name).to_proto()
    msg.object_meta.labels.clear()
    msg.object_meta.labels.update(labels_)
    return storage.update(msg)


@dataclass(frozen=True)
class Seen:
    """A watch event as the server puts it on the wire: its type and GPU."""

    type: str
    object: GPU


def drain(watcher: Watcher[StoredGPU]) -> list[Seen]:
    out: list[Seen] = []
    while True:
        item = watcher.get(0)
        if item is None:
            return out
        assert not isinstance(item, Ended), item
        out.extend(Seen(e.type, event_gpu(e)) for e in item)


def summary(events: list[Seen]) -> list[tuple[str, str, str]]:
    return [
        (e.type, e.object.metadata.name, e.object.metadata.resource_version)
        for e in events
        if e.type != "BOOKMARK"
    ]


@pytest.fixture
def storage() -> Storage:
    s = new_storage()
    for i in range(3):
        s.create(gpu(f"gpu-{i}", rack="a" if i < 2 else "b"))
    return s


class TestRevisions:
    def test_every_write_bumps_the_one_global_revision(self, storage: Storage) -> None:
        assert storage.tracker.revision == 3
        assert [storage.get(f"gpu-{i}").metadata.resource_version for i in range(3)] == [
            "1",
            "2",
            "3",
        ]
        updated = with_labels(storage, "gpu-0", rack="c")
        assert updated.metadata.resource_version == "4"
        assert storage.tracker.revision == 4
        deleted = storage.delete("gpu-1")
        assert deleted.metadata.resource_version == "5"
        assert storage.tracker.revision == 5

    def test_list_is_a_snapshot_sorted_by_name_with_its_revision(self, storage: Storage) -> None:
        storage.create(gpu("a-first"))
        revision, items = storage.list_objects()
        assert revision == 4
        assert [g.metadata.name for g in items] == ["a-first", "gpu-0", "gpu-1", "gpu-2"]

    def test_list_filters_by_selector_and_namespace(self) -> None:
        s = new_storage(stamp_default_namespace=True)
        s.create(gpu("x", rack="a"))
        s.create(gpu("y", rack="b"))
        assert s.get("x").metadata.namespace == "default"
        _, items = s.list_objects(labels.parse("rack=b"))
        assert [g.metadata.name for g in items] == ["y"]
        assert len(s.list_objects(None, "default")[1]) == 2
        assert s.list_objects(None, "other")[1] == []

    def test_named_operations_resolve_the_namespace_when_stamping(self) -> None:
        s = new_storage(stamp_default_namespace=True)
        s.create(gpu("x"))
        elsewhere = gpu("y")
        elsewhere.object_meta.namespace = "other"
        s.create(elsewhere)
        assert s.get("x", "").metadata.namespace == "default"
        assert s.get("x", "default") is s.get("x")  # None: any namespace (the Python API)
        with pytest.raises(NotFoundError):
            s.get("y", "")
        assert s.get("y", "other").metadata.namespace == "other"
        with pytest.raises(NotFoundError):
            s.update(gpu("y"))  # the message names no namespace: "default"
        with pytest.raises(NotFoundError):
            s.delete("y", namespace="")
        with pytest.raises(NotFoundError):
            s.patch("y", lambda msg: msg, status=False, namespace="default")
        s.delete("y", namespace="other")

    def test_without_stamping_named_operations_ignore_the_namespace(self, storage: Storage) -> None:
        assert storage.get("gpu-0", "other").metadata.namespace == ""
        storage.delete("gpu-0", namespace="other")

    def test_a_patch_keeps_name_uid_and_namespace(self, storage: Storage) -> None:
        for field_name in ("name", "uid", "namespace"):

            def change(msg: pb.Gpu, field_name: str = field_name) -> pb.Gpu:
                setattr(msg.object_meta, field_name, "changed")
                return msg

            with pytest.raises(BadRequestError, match=rf"metadata\.{field_name}: .*immutable"):
                storage.patch("gpu-0", change, status=False)
        assert storage.tracker.revision == 3

    def test_server_manages_uid_generation_and_creation_time(self) -> None:
        now = datetime(2026, 3, 1, 12, 30, 45, 678901, tzinfo=UTC)
        storage = new_storage(clock=lambda: now)
        msg = gpu("gpu-9")
        msg.object_meta.uid = "client-uid"
        msg.object_meta.generation = 42
        created = storage.create(msg).metadata
        assert created.uid.startswith("uid-")
        assert created.generation == 1
        # Whole seconds, as the device-apiserver stores a metav1.Time.
        assert created.creation_timestamp == now.replace(microsecond=0)

    def test_generation_is_bumped_by_spec_changes_only(self, storage: Storage) -> None:
        with_labels(storage, "gpu-0", rack="z")
        assert storage.get("gpu-0").metadata.generation == 1
        msg = storage.get("gpu-0").to_proto()
        msg.spec.uuid = "GPU-new"
        assert storage.update(msg).metadata.generation == 2
        status = storage.get("gpu-0").to_proto()
        status.status.recommended_action = "RESET"
        assert storage.update_status(status).metadata.generation == 2

    def test_update_touches_spec_and_labels_and_update_status_only_status(
        self, storage: Storage
    ) -> None:
        msg = storage.get("gpu-0").to_proto()
        msg.spec.uuid = "GPU-changed"
        msg.status.recommended_action = "IGNORED"
        after = storage.update(msg)
        assert after.spec.uuid == "GPU-changed"
        assert after.status.recommended_action == ""
        msg = after.to_proto()
        msg.spec.uuid = "GPU-ignored"
        msg.object_meta.labels["ignored"] = "yes"
        msg.status.recommended_action = "RESET"
        after = storage.update_status(msg)
        assert after.spec.uuid == "GPU-changed"
        assert "ignored" not in after.metadata.labels
        assert after.status.recommended_action == "RESET"

    def test_a_write_that_changes_nothing_is_not_a_write(self, storage: Storage) -> None:
        current = storage.get("gpu-0")
        assert storage.update(current.to_proto()) is current
        assert storage.update_status(current.to_proto()) is current
        assert storage.tracker.revision == 3

    def test_errors(self, storage: Storage) -> None:
        with pytest.raises(AlreadyExistsError, match='"gpu-0" already exists'):
            storage.create(gpu("gpu-0"))
        with pytest.raises(NotFoundError, match=r'gpus\.device\.nvidia\.com "nope" not found'):
            storage.update(gpu("nope"))
        with pytest.raises(NotFoundError):
            storage.update_status(gpu("nope"))
        with pytest.raises(NotFoundError):
            storage.delete("nope")
        with pytest.raises(BadRequestError, match="name is required"):
            storage.create(pb.Gpu())
        with pytest.raises(BadRequestError, match="RFC 1123"):
            storage.create(gpu("Not_Valid"))
        with pytest.raises(BadRequestError, match=r"metadata\.labels"):
            storage.create(gpu("ok", **{"bad key": "x"}))
        stale = gpu("gpu-9")
        stale.object_meta.resource_version = "7"
        with pytest.raises(BadRequestError, match="resourceVersion should not be set"):
            storage.create(stale)
        assert storage.tracker.revision == 3

    def test_stale_resource_version_is_a_conflict_and_a_changed_uid_a_bad_request(
        self, storage: Storage
    ) -> None:
        old = storage.get("gpu-0").to_proto()
        with_labels(storage, "gpu-0", rack="new")
        old.object_meta.labels["x"] = "y"
        with pytest.raises(ConflictError, match="the object has been modified"):
            storage.update(old)
        with pytest.raises(ConflictError):
            storage.update_status(old)
        other_uid = storage.get("gpu-0").to_proto()
        other_uid.object_meta.uid = "someone-else"
        other_uid.object_meta.labels["x"] = "y"
        # uid is immutable (the apiserver's 422 Invalid, as the device-apiserver answers).
        with pytest.raises(BadRequestError, match=r'metadata\.uid: Invalid value: "someone-else"'):
            storage.update(other_uid)

    def test_delete_preconditions(self, storage: Storage) -> None:
        with pytest.raises(ConflictError, match="UID in precondition: nope"):
            storage.delete("gpu-0", uid="nope")
        with pytest.raises(ConflictError, match="ResourceVersion in precondition: 99"):
            storage.delete("gpu-0", resource_version="99")
        current = storage.get("gpu-0").metadata
        storage.delete("gpu-0", uid=current.uid, resource_version=current.resource_version)
        with pytest.raises(NotFoundError):
            storage.get("gpu-0")


class TestWatchStart:
    def test_empty_or_zero_revision_starts_with_an_added_burst(self, storage: Storage) -> None:
        for rv in ("", "0"):
            events = drain(storage.watch(resource_version=rv))
            assert summary(events) == [
                ("ADDED", "gpu-0", "1"),
                ("ADDED", "gpu-1", "2"),
                ("ADDED", "gpu-2", "3"),
            ]

    def test_a_revision_replays_every_later_change_then_goes_live(self, storage: Storage) -> None:
        w = storage.watch(resource_version="1")
        assert summary(drain(w)) == [("ADDED", "gpu-1", "2"), ("ADDED", "gpu-2", "3")]
        with_labels(storage, "gpu-0", rack="c")
        assert summary(drain(w)) == [("MODIFIED", "gpu-0", "4")]
        assert drain(storage.watch(resource_version="4")) == []

    def test_a_revision_the_storage_never_reached_is_expired(self, storage: Storage) -> None:
        # Asked only of a server that lost its state: the client must relist, not wait for
        # revisions that will be reused by other changes.
        with pytest.raises(
            ExpiredError, match="too large resource version: 5, current revision: 3"
        ):
            storage.watch(resource_version="5")
        assert summary(drain(storage.watch(resource_version="3"))) == []
        with pytest.raises(ExpiredError, match="too large resource version: 5"):
            storage.watch(resource_version="5", send_initial_events=True)  # not older than 5

    def test_streaming_list_sends_the_state_then_the_initial_events_end_bookmark(
        self, storage: Storage
    ) -> None:
        events = drain(
            storage.watch(
                resource_version="2", send_initial_events=True, allow_watch_bookmarks=True
            )
        )
        assert [e.type for e in events] == ["ADDED"] * 3 + ["BOOKMARK"]
        bookmark = events[-1].object
        assert bookmark is not None
        assert bookmark.metadata.resource_version == "3"
        assert bookmark.metadata.annotations == {INITIAL_EVENTS_END_ANNOTATION: "true"}
        assert bookmark.metadata.name == ""

    def test_no_initial_events_end_bookmark_without_allow_watch_bookmarks(
        self, storage: Storage
    ) -> None:
        # The apiserver's storage sends it only to watches that allow bookmarks.
        events = drain(storage.watch(resource_version="", send_initial_events=True))
        assert [e.type for e in events] == ["ADDED"] * 3

    def test_send_initial_events_false_starts_from_now(self, storage: Storage) -> None:
        w = storage.watch(resource_version="", send_initial_events=False)
        assert drain(w) == []
        storage.delete("gpu-2")
        assert summary(drain(w)) == [("DELETED", "gpu-2", "4")]

    def test_ignore_resource_version_always_bursts(self, storage: Storage) -> None:
        storage.tracker.compact()
        w = storage.watch(resource_version="1", ignore_resource_version=True)
        assert [e.type for e in drain(w)] == ["ADDED"] * 3

    @pytest.mark.parametrize("rv", ["abc", "-1", "1.5", " 1", "0x10"])
    def test_an_unparsable_revision_is_expired(self, storage: Storage, rv: str) -> None:
        with pytest.raises(ExpiredError, match="invalid resource version"):
            storage.watch(resource_version=rv)


class TestHistory:
    def test_compact_everything_makes_older_revisions_too_old(self, storage: Storage) -> None:
        assert storage.tracker.compact() == 3
        with pytest.raises(ExpiredError, match=r"^too old resource version: 2 \(3\)$"):
            storage.watch(resource_version="2")
        assert drain(storage.watch(resource_version="3")) == []

    def test_compact_to_limit_keeps_the_newest_revisions(self) -> None:
        s = new_storage(history_limit=2)
        for i in range(4):
            s.create(gpu(f"g{i}"))
        # Trimmed at write time back to the limit once twice as many changes accumulated.
        assert s.tracker.compacted_revision == 2
        s.create(gpu("g4"))
        assert s.tracker.compacted_revision == 2
        assert s.compact_to_limit() == 3
        with pytest.raises(ExpiredError, match=r"too old resource version: 2 \(3\)"):
            s.watch(resource_version="2")
        assert summary(drain(s.watch(resource_version="3"))) == [
            ("ADDED", "g3", "4"),
            ("ADDED", "g4", "5"),
        ]

    def test_history_stays_bounded_without_compaction(self) -> None:
        s = new_storage(history_limit=5)
        s.create(gpu("g"))
        for i in range(50):
            with_labels(s, "g", n=str(i))
        assert s.tracker.revision == 51
        assert s.tracker.compacted_revision >= 51 - 2 * 5
        # ... and at least history_limit revisions are always replayable.
        assert len(drain(s.watch(resource_version=str(51 - 5)))) == 5

    def test_replay_is_contiguous_while_writers_run(self) -> None:
        s = new_storage(history_limit=100_000)
        for i in range(4):
            s.create(gpu(f"g{i}"))
        writes = 3000

        def writer() -> None:
            for n in range(writes):
                with_labels(s, f"g{n % 4}", n=str(n))

        thread = threading.Thread(target=writer, name="test-writer")
        thread.start()
        watchers: list[tuple[int, Watcher[StoredGPU]]] = []
        try:
            # A list + watch every few writes (a watch per write would make every write
            # dispatch to thousands of watchers).
            while thread.is_alive() and len(watchers) < 40:
                revision, _ = s.list_objects()
                watchers.append((revision, s.watch(resource_version=str(revision))))
                thread.join(0.002)
        finally:
            thread.join()
        final = s.tracker.revision
        assert final == 4 + writes
        assert any(4 < start < final for start, _ in watchers), "no watch started mid-stream"
        for start, w in watchers:
            revisions = [int(e.object.metadata.resource_version) for e in drain(w)]
            assert revisions == list(range(start + 1, final + 1))


class TestWatchDelivery:
    def test_deleted_carries_the_last_state_at_the_deletion_revision(
        self, storage: Storage
    ) -> None:
        w = storage.watch(resource_version="3")
        before = storage.get("gpu-1")
        storage.delete("gpu-1")
        [event] = drain(w)
        assert event.type == "DELETED"
        assert event.object is not None
        assert event.object.metadata.resource_version == "4"
        assert event.object.metadata.labels == before.metadata.labels
        assert event.object.status == before.status

    def test_selector_transitions_follow_the_watch_cache(self, storage: Storage) -> None:
        w = storage.watch(resource_version="3", selector=labels.parse("tier=gold"))
        with_labels(storage, "gpu-0", tier="gold")  # starts matching: 4
        with_labels(storage, "gpu-0", tier="gold", x="1")  # still matches: 5
        with_labels(storage, "gpu-1", tier="silver")  # never matches: 6
        with_labels(storage, "gpu-0", x="1")  # stops matching: 7
        storage.delete("gpu-0")  # no longer matching: nothing
        events = drain(w)
        assert summary(events) == [
            ("ADDED", "gpu-0", "4"),
            ("MODIFIED", "gpu-0", "5"),
            ("DELETED", "gpu-0", "7"),
        ]
        vanished = events[-1].object
        assert vanished is not None
        assert vanished.metadata.labels == {"tier": "gold", "x": "1"}  # the previous state

    def test_replay_applies_the_selector_too(self, storage: Storage) -> None:
        with_labels(storage, "gpu-0", tier="gold")  # 4
        with_labels(storage, "gpu-0")  # 5
        events = drain(storage.watch(resource_version="3", selector=labels.parse("tier")))
        assert summary(events) == [("ADDED", "gpu-0", "4"), ("DELETED", "gpu-0", "5")]

    def test_dropped_events_are_kept_in_history_and_covered_by_a_bookmark(
        self, storage: Storage
    ) -> None:
        w = storage.watch(resource_version="3", allow_watch_bookmarks=True)
        storage.tracker.drop_next_events(2)
        with_labels(storage, "gpu-0", n="1")  # 4, dropped
        with_labels(storage, "gpu-0", n="2")  # 5, dropped
        assert drain(w) == []
        storage.tracker.send_bookmark(w)
        [bookmark] = drain(w)
        assert (bookmark.type, bookmark.object.metadata.resource_version) == ("BOOKMARK", "5")
        assert bookmark.object.metadata.name == ""
        with_labels(storage, "gpu-0", n="3")  # 6, delivered
        assert summary(drain(w)) == [("MODIFIED", "gpu-0", "6")]
        replay = drain(storage.watch(resource_version="3"))
        assert [e.object.metadata.resource_version for e in replay] == ["4", "5", "6"]

    def test_raw_events_reach_every_watcher_without_a_revision(self, storage: Storage) -> None:
        watchers = [storage.watch(resource_version="3") for _ in range(3)]
        assert storage.tracker.broadcast(RawEvent("ERROR", b"\xff")) == 3
        for w in watchers:
            got = w.get(0)
            assert isinstance(got, list)
            [item] = got
            assert isinstance(item, RawEvent)
            assert (item.type, item.data) == ("ERROR", b"\xff")
        assert storage.tracker.revision == 3

    def test_a_watch_ended_by_the_server_loses_what_it_had_not_sent(self, storage: Storage) -> None:
        w = storage.watch(resource_version="1")
        assert storage.tracker.end_watches("why") == 1
        assert w.get(0) == Ended("why")
        assert storage.tracker.watcher_count == 0
