"""The one store behind every fake: revisions, history, filtered watches, optimistic concurrency
and fault hooks, over opaque objects (no protocol)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Self

import pytest

from nvinformers.testing.tracker import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    Ended,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectTracker,
    RevisionExpiredError,
    StaleRevisionError,
    Watcher,
    WatchEvent,
)

WAIT = 10.0


@dataclass(frozen=True)
class Obj:
    name: str
    color: str
    revision: int = 0

    def with_revision(self, revision: int) -> Self:
        return replace(self, revision=revision)


def key(name: str, namespace: str = "") -> tuple[str, str, str]:
    return ("things", namespace, name)


def put(tracker: ObjectTracker[Obj], name: str, color: str, namespace: str = "") -> Obj:
    return tracker.create(key(name, namespace), lambda rev: Obj(name, color, rev))


def recolor(tracker: ObjectTracker[Obj], name: str, color: str) -> Obj:
    current = tracker.get(key(name))
    return tracker.update(key(name), lambda rev: Obj(name, color, rev), revision=current.revision)


def drain(watcher: Watcher[Obj]) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    while True:
        item = watcher.get(0, limit=100)
        if item is None:
            return out
        assert not isinstance(item, Ended), item
        out.extend((e.type, e.object.name if e.object else "", e.revision) for e in item)


def red(obj: Obj) -> bool:
    return obj.color == "red"


class TestWrites:
    def test_every_write_bumps_the_one_revision(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        assert put(tracker, "a", "red").revision == 1
        assert recolor(tracker, "a", "blue").revision == 2
        assert put(tracker, "b", "red").revision == 3
        gone = tracker.delete(key("a"))
        assert (gone.color, gone.revision, tracker.revision) == ("blue", 4, 4)
        assert tracker.list("things") == ([Obj("b", "red", 3)], 4)
        with pytest.raises(ObjectNotFoundError):
            tracker.get(key("a"))
        with pytest.raises(ObjectNotFoundError):
            tracker.delete(key("a"))
        with pytest.raises(ObjectExistsError):
            put(tracker, "b", "green")

    def test_a_write_from_a_stale_read_conflicts_and_changes_nothing(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        read = put(tracker, "a", "red")
        recolor(tracker, "a", "blue")
        with pytest.raises(StaleRevisionError):
            tracker.update(key("a"), lambda rev: Obj("a", "green", rev), revision=read.revision)
        with pytest.raises(StaleRevisionError):
            tracker.delete(key("a"), revision=read.revision)
        assert tracker.get(key("a")).color == "blue"
        assert tracker.revision == 2
        # Without a revision: whatever the object is now.
        assert tracker.update(key("a"), lambda rev: Obj("a", "green", rev)).revision == 3

    def test_a_build_that_raises_writes_nothing(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()

        def bad(rev: int) -> Obj:
            raise ValueError("malformed")

        with pytest.raises(ValueError, match="malformed"):
            tracker.create(key("a"), bad)
        assert tracker.revision == 0 and tracker.list("things") == ([], 0)

    def test_lists_and_keys_are_sorted_by_namespace_and_name_per_resource(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        put(tracker, "b", "red", "ns2")
        put(tracker, "a", "red", "ns2")
        put(tracker, "z", "blue", "ns1")
        tracker.create(("others", "", "o"), lambda rev: Obj("o", "red", rev))
        assert [o.name for o in tracker.list("things")[0]] == ["z", "a", "b"]
        assert [o.name for o in tracker.list("things", "ns2")[0]] == ["a", "b"]
        assert [o.name for o in tracker.list("things", matches=red)[0]] == ["a", "b"]
        assert tracker.keys("things") == [key("z", "ns1"), key("a", "ns2"), key("b", "ns2")]
        assert tracker.keys("nothing") == [] and tracker.list("nothing") == ([], 4)

    def test_history_limit_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            ObjectTracker(history_limit=0)


class TestWatches:
    def test_history_then_live_changes_filtered_like_the_watch_cache(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        put(tracker, "a", "red")
        put(tracker, "b", "blue")
        reds = tracker.watch("things", matches=red, since=0)
        everything = tracker.watch("things", since=1, bookmarks=True)
        recolor(tracker, "a", "blue")  # leaves the red selection
        recolor(tracker, "b", "red")  # enters it
        tracker.delete(key("b"))
        assert drain(reds) == [
            (ADDED, "a", 1),
            (DELETED, "a", 3),
            (ADDED, "b", 4),
            (DELETED, "b", 5),
        ]
        assert drain(everything) == [
            (ADDED, "b", 2),
            (MODIFIED, "a", 3),
            (MODIFIED, "b", 4),
            (DELETED, "b", 5),
        ]
        assert tracker.send_bookmarks() == 1
        assert drain(everything) == [(BOOKMARK, "", 5)]
        assert drain(reds) == []

    def test_a_watch_that_stops_matching_gets_the_previous_state_at_the_change(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        put(tracker, "a", "red")
        reds = tracker.watch("things", matches=red)
        recolor(tracker, "a", "blue")
        got = reds.get(0)
        assert isinstance(got, list)
        assert [(e.type, e.object) for e in got] == [(DELETED, Obj("a", "red", 2))]

    def test_watches_see_their_resource_and_namespace_only(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        in_ns1 = tracker.watch("things", "ns1", since=0)
        others = tracker.watch("others", since=0)
        put(tracker, "a", "red", "ns1")
        put(tracker, "b", "red", "ns2")
        tracker.create(("others", "", "o"), lambda rev: Obj("o", "red", rev))
        assert drain(in_ns1) == [(ADDED, "a", 1)]
        assert drain(others) == [(ADDED, "o", 3)]
        assert drain(tracker.watch("things", "ns2", since=0)) == [(ADDED, "b", 2)]

    def test_initial_events_and_their_end_bookmark(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        put(tracker, "b", "red")
        put(tracker, "a", "red")
        put(tracker, "c", "blue")
        watcher = tracker.watch("things", matches=red, initial_events=True, initial_events_end=True)
        events = watcher.get(0, limit=10)
        assert isinstance(events, list)
        assert [(e.type, e.object.name if e.object else "") for e in events] == [
            (ADDED, "a"),
            (ADDED, "b"),
            (BOOKMARK, ""),
        ]
        assert events[-1].initial_events_end and events[-1].revision == 3

    def test_history_is_bounded_and_compaction_expires_old_revisions(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker(history_limit=2)
        put(tracker, "a", "c0")
        for i in range(1, 4):
            recolor(tracker, "a", f"c{i}")
        assert tracker.compacted_revision == 2  # trimmed back to 2 changes when 4 accumulated
        with pytest.raises(RevisionExpiredError, match=r"^too old resource version: 1 \(2\)$"):
            tracker.watch("things", since=1)
        assert drain(tracker.watch("things", since=2)) == [(MODIFIED, "a", 3), (MODIFIED, "a", 4)]
        assert tracker.compact() == 4 and tracker.compact(1) == 4  # never backwards
        assert tracker.compact(99) == 4  # nor past the current revision

    def test_history_stays_bounded_and_keeps_at_least_the_limit(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker(history_limit=5)
        put(tracker, "a", "c")
        for i in range(50):
            recolor(tracker, "a", str(i))
        assert 51 - 2 * 5 <= tracker.compacted_revision <= 51 - 5
        assert len(drain(tracker.watch("things", since=51 - 5))) == 5


class TestConsumers:
    def test_get_returns_at_most_limit_events_and_none_on_timeout(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        w = tracker.watch("things")
        for name in "abc":
            put(tracker, name, "red")
        first = w.get(0, limit=2)
        assert isinstance(first, list) and [e.revision for e in first] == [1, 2]
        assert w.get(0.01, limit=2) is not None
        assert w.get(0.01) is None

    def test_an_end_wins_over_queued_events_unless_it_drains(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        at_once, drained = tracker.watch("things"), tracker.watch("things")
        put(tracker, "a", "red")
        at_once.end("why")
        at_once.end("second")  # the first end wins
        drained.end("why", drain=True)
        assert at_once.get(0) == Ended("why") and at_once.ended == Ended("why")
        assert drain_until_end(drained) == ([(ADDED, "a", 1)], Ended("why"))

    def test_end_wakes_a_blocked_get(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        w = tracker.watch("things")
        results: list[object] = []
        reader = threading.Thread(
            target=lambda: results.append(w.get(None)), name="test-reader", daemon=True
        )
        reader.start()
        assert tracker.wait_for_watches(1, WAIT)
        assert tracker.end_watches("bye") == 1
        reader.join(WAIT)
        assert results == [Ended("bye")]

    def test_held_events_wait_until_released_and_woken(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        w = tracker.watch("things")
        held = True
        put(tracker, "a", "red")
        assert w.get(0, held=lambda: held) is None
        results: list[object] = []
        reader = threading.Thread(
            target=lambda: results.append(w.get(WAIT, held=lambda: held)), name="test-reader"
        )
        reader.start()
        held = False
        tracker.wake_watches()
        reader.join(WAIT)
        assert len(results) == 1 and isinstance(results[0], list)
        # A draining end delivers even held events.
        put(tracker, "b", "red")
        tracker.end_watches("end", drain=True)
        drained = w.get(0, held=lambda: True)
        assert isinstance(drained, list) and [e.revision for e in drained] == [2]

    def test_unwatch_closes_and_forgets_the_watch(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        w = tracker.watch("things")
        assert tracker.watcher_count == 1
        tracker.unwatch(w)
        tracker.unwatch(w)
        assert tracker.watcher_count == 0
        put(tracker, "a", "red")
        assert w.get(0) == Ended(None)


class TestEvents:
    def test_batches_until_the_end_which_comes_last(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        w = tracker.watch("things")
        for name in "abc":
            put(tracker, name, "red")
        tracker.end_watches("bye", drain=True)
        items = list(tracker.events(w, limit=2))
        assert items[-1] == Ended("bye")
        batches = [[e.revision for e in batch] for batch in items if isinstance(batch, list)]
        assert batches == [[1, 2], [3]] and len(items) == 3

    def test_the_deadline_ends_the_stream_cleanly_whatever_is_queued(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        w = tracker.watch("things")
        put(tracker, "a", "red")
        assert list(tracker.events(w, deadline=time.monotonic())) == []

    def test_progress_bookmarks_reach_an_idle_watch(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        put(tracker, "a", "red")
        w = tracker.watch("things")
        first = next(tracker.events(w, bookmark_interval=0.001))
        assert isinstance(first, list)
        assert [(e.type, e.object, e.revision) for e in first] == [(BOOKMARK, None, 1)]


class TestFaultHooks:
    def test_dropped_changes_reach_no_open_watch_but_stay_in_history(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        live = tracker.watch("things", bookmarks=True)
        tracker.drop_next_events(1)
        put(tracker, "a", "red")
        put(tracker, "b", "red")
        assert drain(live) == [(ADDED, "b", 2)]
        assert drain(tracker.watch("things", since=0)) == [(ADDED, "a", 1), (ADDED, "b", 2)]
        with pytest.raises(ValueError, match="non-negative"):
            tracker.drop_next_events(-1)

    def test_a_bookmark_queues_behind_the_events_it_covers(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        w = tracker.watch("things")  # bookmarks not asked for: only send_bookmark reaches it
        put(tracker, "a", "red")
        assert tracker.send_bookmarks() == 0
        tracker.send_bookmark(w)
        assert drain(w) == [(ADDED, "a", 1), (BOOKMARK, "", 1)]

    def test_broadcast_reaches_every_open_watch_and_stores_nothing(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        watchers = [tracker.watch("things"), tracker.watch("others")]
        tracker.watch("things").end()  # ended: gets nothing
        assert tracker.broadcast(WatchEvent("ERROR", None, 0)) == 2
        assert [drain(w) for w in watchers] == [[("ERROR", "", 0)]] * 2
        assert tracker.revision == 0

    def test_closing_ends_open_and_later_watches_until_reopened(self) -> None:
        tracker: ObjectTracker[Obj] = ObjectTracker()
        open_watch = tracker.watch("things")
        assert tracker.end_watches("stop", close=True) == 1
        assert open_watch.ended == Ended("stop")
        assert tracker.watch("things").ended == Ended("stop")
        assert tracker.watcher_count == 0
        tracker.reopen()
        assert tracker.watch("things").ended is None
        assert tracker.wait_for_watches(1, timeout=0)
        assert not tracker.wait_for_watches(2, timeout=0)


def drain_until_end(watcher: Watcher[Obj]) -> tuple[list[tuple[str, str, int]], Ended]:
    events: list[tuple[str, str, int]] = []
    while True:
        item = watcher.get(0)
        assert item is not None
        if isinstance(item, Ended):
            return events, item
        events.extend((e.type, e.object.name if e.object else "", e.revision) for e in item)
