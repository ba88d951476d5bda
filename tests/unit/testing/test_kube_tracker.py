"""ObjectTracker: revisions, history, filtered watches and optimistic concurrency, without HTTP."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Self

import pytest

from nvinformers.testing.kube_api.tracker import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectTracker,
    RevisionExpiredError,
    StaleRevisionError,
    Watcher,
)


@dataclass(frozen=True)
class Obj:
    name: str
    color: str
    revision: int = 0

    def with_revision(self, revision: int) -> Self:
        return replace(self, revision=revision)


def key(name: str) -> tuple[str, str, str]:
    return ("things", "", name)


def put(tracker: ObjectTracker[Obj], name: str, color: str) -> Obj:
    return tracker.create(key(name), lambda rev: Obj(name, color, rev))


def recolor(tracker: ObjectTracker[Obj], name: str, color: str) -> Obj:
    current = tracker.get(key(name))
    return tracker.update(key(name), current.revision, lambda rev: Obj(name, color, rev))


def drain(watcher: Watcher[Obj]) -> list[tuple[str, str, int]]:
    with watcher.cond:
        events = list(watcher.buffer)
        watcher.buffer.clear()
    return [(e.type, e.object.name if e.object else "", e.revision) for e in events]


def test_every_write_bumps_the_one_revision() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker()
    assert put(tracker, "a", "red").revision == 1
    assert recolor(tracker, "a", "blue").revision == 2
    assert put(tracker, "b", "red").revision == 3
    gone = tracker.delete(key("a"))
    assert (gone.color, gone.revision, tracker.revision) == ("blue", 4, 4)
    assert tracker.list("things") == ([Obj("b", "red", 3)], 4)
    with pytest.raises(ObjectNotFoundError):
        tracker.get(key("a"))
    with pytest.raises(ObjectExistsError):
        put(tracker, "b", "green")


def test_an_update_from_a_stale_read_conflicts_and_changes_nothing() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker()
    read = put(tracker, "a", "red")
    recolor(tracker, "a", "blue")
    with pytest.raises(StaleRevisionError):
        tracker.update(key("a"), read.revision, lambda rev: Obj("a", "green", rev))
    assert tracker.get(key("a")).color == "blue"
    assert tracker.revision == 2


def test_a_build_that_raises_writes_nothing() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker()

    def bad(rev: int) -> Obj:
        raise ValueError("malformed")

    with pytest.raises(ValueError, match="malformed"):
        tracker.create(key("a"), bad)
    assert tracker.revision == 0 and tracker.list("things") == ([], 0)


def test_watches_replay_history_then_go_live_and_filter_like_the_watch_cache() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker()
    put(tracker, "a", "red")
    put(tracker, "b", "blue")
    reds = tracker.watch("things", matches=lambda o: o.color == "red", since=0)
    everything = tracker.watch("things", since=1, bookmarks=True)
    recolor(tracker, "a", "blue")  # leaves the red selection
    recolor(tracker, "b", "red")  # enters it
    tracker.delete(key("b"))
    assert drain(reds) == [(ADDED, "a", 1), (DELETED, "a", 3), (ADDED, "b", 4), (DELETED, "b", 5)]
    assert drain(everything) == [
        (ADDED, "b", 2),
        (MODIFIED, "a", 3),
        (MODIFIED, "b", 4),
        (DELETED, "b", 5),
    ]
    assert tracker.send_bookmarks() == 1
    assert drain(everything) == [(BOOKMARK, "", 5)]
    assert drain(reds) == []


def test_initial_events_and_their_end_bookmark() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker()
    put(tracker, "b", "red")
    put(tracker, "a", "red")
    watcher = tracker.watch("things", initial_events=True, initial_events_end=True)
    with watcher.cond:
        events = list(watcher.buffer)
    assert [(e.type, e.object.name if e.object else "") for e in events] == [
        (ADDED, "a"),
        (ADDED, "b"),
        (BOOKMARK, ""),
    ]
    assert events[-1].initial_events_end and events[-1].revision == 2


def test_history_is_bounded_and_compaction_expires_old_revisions() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker(history_limit=2)
    put(tracker, "a", "c0")
    for i in range(1, 4):
        recolor(tracker, "a", f"c{i}")
    assert tracker.compacted_revision == 2  # trimmed back to 2 changes when 4 accumulated
    with pytest.raises(RevisionExpiredError) as caught:
        tracker.watch("things", since=1)
    assert (caught.value.revision, caught.value.compacted) == (1, 2)
    assert tracker.compact() == 4 and tracker.compact(1) == 4


def test_dropped_changes_reach_no_open_watch_but_stay_in_history() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker()
    live = tracker.watch("things")
    tracker.drop_next_events(1)
    put(tracker, "a", "red")
    put(tracker, "b", "red")
    assert drain(live) == [(ADDED, "b", 2)]
    assert drain(tracker.watch("things", since=0)) == [(ADDED, "a", 1), (ADDED, "b", 2)]


def test_closing_ends_open_and_later_watches_until_reopened() -> None:
    tracker: ObjectTracker[Obj] = ObjectTracker()
    open_watch = tracker.watch("things")
    assert tracker.end_watches("stop", close=True) == 1
    assert open_watch.ended == "stop"
    assert tracker.watch("things").ended == "stop"
    tracker.reopen()
    assert tracker.watch("things").ended is None
    tracker.unwatch(open_watch)
    assert tracker.wait_for_watches(2, timeout=0)
    assert not tracker.wait_for_watches(3, timeout=0)
