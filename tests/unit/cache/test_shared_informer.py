"""SharedIndexInformer semantics over a scripted list-watch (no sockets)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU, GPUList, ListMeta
from nvinformers.cache import (
    DeltaType,
    FilteringResourceEventHandler,
    InformerStoppedError,
    SharedIndexInformer,
    cluster_scoped_key_func,
    wait_for_cache_sync,
)
from nvinformers.cache._processor import ADD, DELETE, UPDATE
from nvinformers.clock import FakeClock
from nvinformers.errors import ExpiredError, ServiceUnavailableError
from nvinformers.watch import Event, EventType
from tests.unit.cache.harness import Harness, harness_factory
from tests.unit.cache.recording import RecordingHandler
from tests.unit.cache.scripted import WAIT, ScriptedListerWatcher, eventually, gpu


@pytest.fixture
def make() -> Iterator[Callable[..., Harness]]:
    with harness_factory(Harness, [gpu("a", 5), gpu("b", 7)]) as build:
        yield build


def test_initial_list_is_delivered_as_initial_adds_and_syncs(make: Any) -> None:
    h = make()
    handler = RecordingHandler()
    reg = h.informer.add_event_handler(handler, name="rec")
    assert not h.informer.has_synced()
    h.start()
    assert wait_for_cache_sync(h.stop, h.informer.has_synced, reg.has_synced, timeout=WAIT)
    assert sorted(handler.snapshot()) == ["add a@5 initial", "add b@7 initial"]
    assert h.informer.get_indexer().get_by_key("a") is not None
    assert h.informer.last_store_sync_resource_version() == "10"


def test_handlers_are_notified_after_the_store_in_order(make: Any) -> None:
    h = make()
    handler = RecordingHandler()
    handler.indexer = h.informer.get_indexer()
    h.informer.add_event_handler(handler)
    h.start()
    assert handler.wait_for_count(2)
    w = h.lw.watch_at(0)
    w.push(
        Event(EventType.MODIFIED, gpu("a", 11)),
        Event(EventType.MODIFIED, gpu("a", 12)),
        Event(EventType.ADDED, gpu("c", 13)),
        Event(EventType.DELETED, gpu("b", 14)),
    )
    assert handler.wait_for_count(6)
    assert handler.snapshot()[2:] == [
        "update a@5->a@11",
        "update a@11->a@12",
        "add c@13",
        "delete b@14",
    ]
    assert all(handler.store_view)
    assert h.informer.get_indexer().get_by_key("b") is None


def test_repeats_with_the_same_revision_are_not_delivered_and_added_means_upsert(
    make: Any,
) -> None:
    h = make()
    handler = RecordingHandler()
    h.informer.add_event_handler(handler)
    h.start()
    w = h.lw.watch_at(0)
    w.push(
        Event(EventType.ADDED, gpu("a", 5)),  # a server replaying its burst
        Event(EventType.ADDED, gpu("b", 7)),
        Event(EventType.ADDED, gpu("a", 20)),  # ADDED for a known key: an update
        Event(EventType.MODIFIED, gpu("b", 21)),
    )
    assert handler.wait_for_count(4)
    assert handler.snapshot()[2:] == ["update a@5->a@20", "update b@7->b@21"]


def test_events_older_than_the_cache_are_dropped(make: Any) -> None:
    h = make()
    handler = RecordingHandler()
    h.informer.add_event_handler(handler)
    h.start()
    w = h.lw.watch_at(0)
    w.push(
        Event(EventType.MODIFIED, gpu("a", 30)),
        Event(EventType.MODIFIED, gpu("a", 29)),  # older: dropped
        Event(EventType.DELETED, gpu("a", 28)),  # older: dropped
        Event(EventType.MODIFIED, gpu("b", 31)),
    )
    assert handler.wait_for_count(4)
    assert handler.snapshot()[2:] == ["update a@5->a@30", "update b@7->b@31"]
    assert h.informer.stale_events_dropped == 2
    obj = h.informer.get_indexer().get_by_key("a")
    assert obj is not None and obj.metadata.resource_version == "30"


class _NoteRecorder:
    """Stands in for a handler's listener: records what the informer hands it."""

    def __init__(self) -> None:
        self.notes: list[Any] = []

    def add_many(self, notes: Any, initial: int = 0) -> None:
        self.notes.extend(notes)


def _bare_informer() -> tuple[Any, _NoteRecorder]:
    informer: SharedIndexInformer[Any] = SharedIndexInformer(
        ScriptedListerWatcher(),
        name="t",
        key_func=cluster_scoped_key_func,
        registry=CollectorRegistry(),
    )
    recorder = _NoteRecorder()
    informer._handlers.listeners = (recorder,)  # type: ignore[assignment]
    return informer, recorder


def test_a_single_event_and_a_batch_take_the_same_decisions() -> None:
    """The single-event branch of the delta path (what an event storm takes) and the batch
    path decide every delta with the same rules: add, update, skip a repeat, drop a stale
    event, skip a delete of an unknown key (issue 10: the rules were written five times)."""
    a5, a6, a4 = gpu("a", 5), gpu("a", 6), gpu("a", 4)
    b7, b6, b9 = gpu("b", 7), gpu("b", 6), gpu("b", 9)
    opaque1, opaque0 = gpu("o", "v1"), gpu("o", "v0")
    deltas = [
        (DeltaType.ADDED, a5),
        (DeltaType.ADDED, b7),
        (DeltaType.UPDATED, gpu("a", 5)),  # the same revision: not a change
        (DeltaType.UPDATED, a6),
        (DeltaType.UPDATED, a4),  # older than the cache: dropped
        (DeltaType.DELETED, gpu("c", 3)),  # not cached: skipped
        (DeltaType.DELETED, b6),  # a stale delete: dropped
        (DeltaType.DELETED, b7),
        (DeltaType.ADDED, b9),
        (DeltaType.ADDED, opaque1),
        (DeltaType.UPDATED, opaque0),  # opaque revisions are never stale
    ]
    one_by_one, seen_singly = _bare_informer()
    for delta in deltas:
        one_by_one._deltas.process([delta])
    batched, seen_batched = _bare_informer()
    batched._deltas.process(list(deltas))
    for informer in (one_by_one, batched):
        assert informer._store.snapshot_items() == {"a": a6, "b": b9, "o": opaque0}
        assert informer.applied == {"added": 4, "updated": 2, "deleted": 1}
        assert (informer.stale_events_dropped, informer.unknown_deletes) == (2, 1)
    assert (
        seen_singly.notes
        == seen_batched.notes
        == [
            (ADD, a5, False),
            (ADD, b7, False),
            (UPDATE, a5, a6),
            (DELETE, b7, None),
            (ADD, b9, False),
            (ADD, opaque1, False),
            (UPDATE, opaque1, opaque0),
        ]
    )


def test_relist_diff_delivers_tombstones_for_vanished_objects(make: Any) -> None:
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5), gpu("b", 7), gpu("c", 8)])
    h = make(lw=lw)
    handler = RecordingHandler()
    h.informer.add_event_handler(handler)
    h.start()
    assert handler.wait_for_count(3)
    # While disconnected: b was deleted, a changed, d was created; c unchanged.
    lw.lists.append(
        GPUList(
            items=(gpu("a", 40), gpu("c", 8), gpu("d", 41)),
            metadata=ListMeta(resource_version="42"),
        )
    )
    lw.watch_at(0).fail(ExpiredError("too old resource version"))
    assert handler.wait_for_count(6)
    assert sorted(handler.snapshot()[3:]) == [
        "add d@41",
        "delete tombstone:b@7",
        "update a@5->a@40",
    ]
    assert sorted(h.informer.get_indexer().list_keys()) == ["a", "c", "d"]


def test_a_relist_wins_over_the_cache_even_with_older_revisions(make: Any) -> None:
    # A server that restarted without its state (the in-memory device-apiserver) starts its
    # revisions again: the objects written after the restart are older than the cached ones,
    # and only the list can say what exists now. Found by tests/conformance.
    lw = ScriptedListerWatcher(default_list=[gpu("a", 18), gpu("b", 19)])
    h = make(lw=lw)
    handler = RecordingHandler()
    h.informer.add_event_handler(handler)
    h.start()
    assert handler.wait_for_count(2)
    lw.lists.append(
        GPUList(items=(gpu("a", 1), gpu("c", 2)), metadata=ListMeta(resource_version="2"))
    )
    lw.watch_at(0).fail(ExpiredError("too old resource version"))
    assert handler.wait_for_count(5)
    assert sorted(handler.snapshot()[2:]) == [
        "add c@2",
        "delete tombstone:b@19",
        "update a@18->a@1",
    ]
    a = h.informer.get_indexer().get_by_key("a")
    assert a is not None and a.metadata.resource_version == "1"
    assert h.informer.stale_events_dropped == 0


def test_a_relist_that_asks_is_told_how_many_objects_it_changed(make: Any) -> None:
    h = make()  # not started: the queue is drained inline by the pushing thread (this one)
    fifo = h.informer._fifo
    seen: list[int] = []
    fifo.replace([gpu("a", 5), gpu("b", 7)], "10", on_applied=seen.append)  # empty store: bulk
    fifo.replace([gpu("a", 5), gpu("b", 7)], "11", on_applied=seen.append)  # same objects
    fifo.update(gpu("a", 6))
    fifo.replace([gpu("a", 6), gpu("c", 1)], "12", on_applied=seen.append)  # +c, -b
    fifo.replace([gpu("a", 9)], "13")  # an ordinary relist asks nothing
    assert seen == [2, 0, 2]


def test_a_progress_check_compares_the_store_not_the_revision(make: Any) -> None:
    """A silent watch is checked with a relist: the informer tells the reflector how many
    objects it changed. A list at a newer revision with the same objects (kine writes a row
    when it compacts) changes nothing: an idle server, healthy. A list that changes objects
    repairs the cache and reports the frozen stream until the next event."""
    clock = FakeClock()
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5), gpu("b", 7)])
    h = make(lw=lw, clock=clock, watch_inactivity_timeout=30.0)
    handler = RecordingHandler()
    h.informer.add_event_handler(handler)
    h.start()
    assert handler.wait_for_count(2)
    lw.lists.extend(
        [
            GPUList(items=(gpu("a", 5), gpu("b", 7)), metadata=ListMeta(resource_version="12")),
            GPUList(items=(gpu("a", 40), gpu("c", 41)), metadata=ListMeta(resource_version="42")),
        ]
    )
    clock.step(31)
    assert lw.wait_for_calls("watch", 2)
    checks = h.informer.reflector.stats.progress_checks
    assert eventually(lambda: checks == {"current": 1})
    assert h.informer.health().healthy
    assert h.informer.last_store_sync_resource_version() == "12"
    assert len(handler.snapshot()) == 2  # nothing delivered
    clock.step(31)
    assert lw.wait_for_calls("watch", 3)
    assert eventually(lambda: checks == {"current": 1, "stale": 1})
    health = h.informer.health()
    assert not health.healthy
    assert health.reason.startswith(
        "watch delivered nothing for 31.0 s while the server changed 3 objects"
    )
    assert handler.wait_for_count(5)
    assert sorted(handler.snapshot()[2:]) == [
        "add c@41",
        "delete tombstone:b@7",
        "update a@5->a@40",
    ]
    lw.watch_at(2).push(Event(EventType.MODIFIED, gpu("c", 43)))
    assert eventually(lambda: h.informer.health().healthy)


def test_a_raising_handler_keeps_receiving_and_does_not_disturb_others(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = make()
    bad = RecordingHandler(raise_on="a@")
    good = RecordingHandler()
    bad_reg = h.informer.add_event_handler(bad, name="bad")
    h.informer.add_event_handler(good, name="good")
    with caplog.at_level(logging.ERROR, logger="nvinformers.cache.handlers"):
        h.start()
        w = h.lw.watch_at(0)
        w.push(Event(EventType.MODIFIED, gpu("a", 11)), Event(EventType.MODIFIED, gpu("b", 12)))
        assert good.wait_for_count(4)
        assert bad.wait_for_count(4)
    assert bad.snapshot() == good.snapshot()
    assert eventually(lambda: bad_reg.errors == 2)
    assert "handler bad raised" in caplog.text


def test_a_slow_handler_never_delays_the_store_or_other_handlers(make: Any) -> None:
    h = make()
    gate = threading.Event()
    slow = RecordingHandler(gate=gate)
    fast = RecordingHandler()
    slow_reg = h.informer.add_event_handler(slow, name="slow")
    h.informer.add_event_handler(fast, name="fast")
    h.start()
    w = h.lw.watch_at(0)
    w.push(*[Event(EventType.MODIFIED, gpu("a", 11 + i)) for i in range(50)])
    assert fast.wait_for_count(52)
    obj = h.informer.get_indexer().get_by_key("a")
    assert obj is not None and obj.metadata.resource_version == "60"
    assert slow_reg.backlog >= 50
    gate.set()
    assert slow.wait_for_count(52)
    assert eventually(lambda: slow_reg.backlog == 0)


def test_a_late_handler_gets_the_cache_as_initial_adds_then_live_events(make: Any) -> None:
    h = make()
    h.start()
    assert h.informer.wait_for_sync(WAIT)
    w = h.lw.watch_at(0)
    w.push(Event(EventType.MODIFIED, gpu("a", 11)))
    assert eventually(
        lambda: (
            (x := h.informer.get_indexer().get_by_key("a")) is not None
            and x.metadata.resource_version == "11"
        )
    )
    late = RecordingHandler()
    reg = h.informer.add_event_handler(late)
    w.push(Event(EventType.MODIFIED, gpu("b", 12)))
    assert late.wait_for_count(3)
    assert sorted(late.snapshot()[:2]) == ["add a@11 initial", "add b@7 initial"]
    assert late.snapshot()[2] == "update b@7->b@12"
    assert eventually(reg.has_synced)


def test_resync_replays_the_cache_from_memory_without_calling_the_server(make: Any) -> None:
    clock = FakeClock()
    h = make(resync_period=30.0, clock=clock, watch_inactivity_timeout=None)
    resyncing = RecordingHandler()
    quiet = RecordingHandler()
    h.informer.add_event_handler(resyncing, name="resyncing")
    h.informer.add_event_handler(quiet, 0, name="quiet")
    h.start()
    assert resyncing.wait_for_count(2)
    clock.step(31)
    assert resyncing.wait_for_count(4)
    assert sorted(resyncing.snapshot()[2:]) == ["update a@5->a@5", "update b@7->b@7"]
    clock.step(31)
    assert resyncing.wait_for_count(6)
    assert h.lw.count("list") == 1
    assert h.lw.count("watch") == 1
    assert len(quiet.snapshot()) == 2


def test_resync_periods_follow_client_go_rules(make: Any) -> None:
    h = make(resync_period=0.0)
    reg = h.informer.add_event_handler(RecordingHandler(), 10.0)
    assert reg._listener.resync_period == 0.0  # informer built without resync
    h2 = make(resync_period=60.0)
    reg2 = h2.informer.add_event_handler(RecordingHandler(), 0.2)
    assert reg2._listener.resync_period == 1.0  # minimum 1 s
    assert h2.informer._handlers.resync_check_period == 1.0  # before start: the check period shrank


def test_remove_event_handler_stops_delivery(make: Any) -> None:
    h = make()
    handler = RecordingHandler()
    reg = h.informer.add_event_handler(handler)
    other = RecordingHandler()
    h.informer.add_event_handler(other)
    h.start()
    assert handler.wait_for_count(2)
    assert h.informer.shut_down_event_handler(reg, timeout=WAIT)
    h.lw.watch_at(0).push(Event(EventType.MODIFIED, gpu("a", 11)))
    assert other.wait_for_count(3)
    assert len(handler.snapshot()) == 2
    h.informer.remove_event_handler(reg)  # idempotent


def test_transform_runs_before_the_store_and_a_failing_one_keeps_the_object(make: Any) -> None:
    def transform(obj: GPU) -> GPU:
        if obj.metadata.name == "b":
            raise ValueError("cannot transform b")
        return GPU.new(obj.metadata.name, resource_version=obj.metadata.resource_version, uuid="T")

    h = make()
    h.informer.set_transform(transform)
    h.start()
    assert h.informer.wait_for_sync(WAIT)
    a = h.informer.get_indexer().get_by_key("a")
    b = h.informer.get_indexer().get_by_key("b")
    assert a is not None and a.spec.uuid == "T"
    assert b is not None and b.spec.uuid == "GPU-b"
    assert h.informer.transform_errors == 1
    with pytest.raises(RuntimeError, match="before start"):
        h.informer.set_transform(None)


def test_indexers_can_be_added_after_start(make: Any) -> None:
    h = make([gpu("a", 5, rack="r1"), gpu("b", 7, rack="r2"), gpu("c", 8, rack="r1")])
    h.start()
    assert h.informer.wait_for_sync(WAIT)
    h.informer.add_indexers({"rack": lambda o: [o.metadata.labels.get("rack", "")]})
    names = sorted(o.metadata.name for o in h.informer.get_indexer().by_index("rack", "r1"))
    assert names == ["a", "c"]


def test_a_stopped_informer_refuses_handlers_and_does_not_restart(make: Any) -> None:
    h = make()
    h.start()
    assert h.informer.wait_for_sync(WAIT)
    h.close()
    assert h.informer.is_stopped()
    with pytest.raises(InformerStoppedError):
        h.informer.add_event_handler(RecordingHandler())
    h.informer.run(threading.Event())  # logged no-op, returns at once
    assert not [t for t in threading.enumerate() if t.name.startswith("nvinformers-")]


def test_health_reports_outages_and_silence(make: Any) -> None:
    clock = FakeClock()
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    h = make(lw=lw, clock=clock, watch_inactivity_timeout=60.0, outage_grace=5.0)
    assert h.informer.health().reason == "not synced"
    h.start()
    assert h.informer.wait_for_sync(WAIT)
    w = lw.watch_at(0)
    w.push(Event(EventType.MODIFIED, gpu("a", 11)))
    assert eventually(lambda: h.informer.healthy())
    # The server goes away: the stream breaks and re-watches fail.
    lw.watch_scripts.extend([ServiceUnavailableError("down")] * 50)
    w.fail(ServiceUnavailableError("connection reset"))
    assert eventually(lambda: h.informer.reflector.health.in_outage)
    clock.step(6)
    health = h.informer.health()
    assert not health.healthy
    assert "no working watch" in health.reason


def test_metrics_are_exported_with_bounded_labels_and_dropped_on_stop(make: Any) -> None:
    registry = CollectorRegistry()
    h = make(registry=registry)
    h.informer.add_event_handler(RecordingHandler(), name="rec")
    h.start()
    assert h.informer.wait_for_sync(WAIT)
    h.lw.watch_at(0).push(Event(EventType.MODIFIED, gpu("a", 11)))
    assert eventually(
        lambda: (
            registry.get_sample_value(
                "nvinformers_informer_handler_notifications_total",
                {"informer": "gpus", "handler": "rec"},
            )
            == 3.0
        )
    )
    assert (
        registry.get_sample_value("nvinformers_informer_store_objects", {"informer": "gpus"}) == 2
    )
    assert (
        registry.get_sample_value(
            "nvinformers_informer_lists_total", {"informer": "gpus", "reason": "initial"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "nvinformers_informer_events_received_total", {"informer": "gpus", "type": "MODIFIED"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "nvinformers_informer_handler_duration_seconds_count",
            {"informer": "gpus", "handler": "rec"},
        )
        == 3
    )
    h.close()
    assert (
        registry.get_sample_value("nvinformers_informer_store_objects", {"informer": "gpus"})
        is None
    )


def test_filtering_handler_converts_transitions(make: Any) -> None:
    h = make([gpu("a", 5, pool="x"), gpu("b", 7)])
    inner = RecordingHandler()
    h.informer.add_event_handler(
        FilteringResourceEventHandler(lambda o: o.metadata.labels.get("pool") == "x", inner)
    )
    h.start()
    w = h.lw.watch_at(0)
    w.push(
        Event(EventType.MODIFIED, gpu("b", 11, pool="x")),  # starts matching: add
        Event(EventType.MODIFIED, gpu("a", 12)),  # stops matching: delete
        Event(EventType.MODIFIED, gpu("a", 13)),  # still not matching: nothing
        Event(EventType.MODIFIED, gpu("b", 14, pool="x")),  # matching: update
    )
    assert inner.wait_for_count(4)
    assert inner.snapshot() == ["add a@5 initial", "add b@11", "delete a@5", "update b@11->b@14"]


def test_an_initial_list_with_a_repeated_name_keeps_the_first_object(make: Any) -> None:
    h = make([gpu("a", 5), gpu("b", 7), gpu("a", 9)])
    handler = RecordingHandler()
    reg = h.informer.add_event_handler(handler, name="rec")
    h.start()
    assert wait_for_cache_sync(h.stop, h.informer.has_synced, reg.has_synced, timeout=WAIT)
    assert sorted(handler.snapshot()) == ["add a@5 initial", "add b@7 initial"]
    cached = h.informer.get_indexer().get_by_key("a")
    assert cached is not None
    assert cached.metadata.resource_version == "5"
    assert sorted(h.informer.get_indexer().list_keys()) == ["a", "b"]


def _descheduled_add(
    h: Harness, after: Callable[[], object]
) -> tuple[RecordingHandler, list[object]]:
    """Add a handler whose registration is descheduled between its check of the informer's state
    and its entry into the registry until ``after`` (a start or a stop) has run: an interleaving
    two threads can hit at any time, forced here so that the test is deterministic. Returns the
    handler and what ``add_event_handler`` returned or raised."""
    registry = h.informer._handlers
    checked, resume = threading.Event(), threading.Event()
    add = registry.add

    def add_later(*args: Any) -> Any:
        checked.set()
        assert resume.wait(WAIT)
        return add(*args)

    late = RecordingHandler()
    outcome: list[object] = []

    def register() -> None:
        try:
            outcome.append(h.informer.add_event_handler(late, name="late"))
        except Exception as exc:
            outcome.append(exc)

    registry.add = add_later  # type: ignore[method-assign,assignment]
    thread = threading.Thread(target=register, name="test-add-handler")
    thread.start()
    assert checked.wait(WAIT)
    after()
    resume.set()
    thread.join(WAIT)
    return late, outcome


def test_a_handler_added_while_the_informer_starts_is_started_and_gets_every_object(
    make: Any,
) -> None:
    h = make()
    # The registration checks "not started", then the informer starts and starts its handlers,
    # then the registration lands: client-go's processor decides under its own lock, so must we.
    started = threading.Event()
    start_handlers = h.informer._handlers.start

    def start_and_tell() -> None:
        start_handlers()
        started.set()

    h.informer._handlers.start = start_and_tell
    late, _ = _descheduled_add(h, lambda: (h.start(), started.wait(WAIT)))
    assert h.informer.wait_for_sync(WAIT)
    assert late.wait_for_count(2), "the late handler's thread never started"
    assert sorted(late.snapshot()) == ["add a@5 initial", "add b@7 initial"]


def test_a_handler_added_while_the_informer_stops_is_refused_and_leaves_no_thread(
    make: Any,
) -> None:
    h = make()
    h.start()
    assert h.informer.wait_for_sync(WAIT)

    def stop_informer() -> None:
        h.stop.set()
        assert h.thread is not None
        h.thread.join(WAIT)  # run() has returned: every handler it knew of was stopped
        assert not h.thread.is_alive()

    _, (outcome,) = _descheduled_add(h, stop_informer)
    assert isinstance(outcome, InformerStoppedError), outcome
    assert not [t for t in threading.enumerate() if t.name.endswith("-late")]
