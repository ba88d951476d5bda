"""Watches: initial events, replay from a revision, DELETED, selectors, bookmarks, timeouts, 410.

Several tests open a watch without a revision and then write a *sentinel* object the watch must
report: once its event arrives, the server has subscribed the watch, and every later write must
show up as a live event. This keeps those tests about their subject (selectors, DELETED, ...)
whether or not the server can start a watch from a revision.
"""

from __future__ import annotations

import time

import pytest

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.clientset import Clientset
from nvinformers.errors import BadRequestError, ExpiredError
from nvinformers.options import (
    INITIAL_EVENTS_END_ANNOTATION,
    RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
    ListOptions,
)
from nvinformers.watch import Event, EventType
from tests.conformance.support import WatchLog, Writer, ready_status, rv, summary
from tests.conformance.target import ConformanceTarget

#: How long a test waits for an event the server must send.
EVENT_WAIT = 20.0

ADDED, MODIFIED, DELETED = EventType.ADDED, EventType.MODIFIED, EventType.DELETED


def open_watch(clientset: Clientset, **opts: object) -> WatchLog:
    return WatchLog(clientset.device_v1alpha1().gpus().watch(ListOptions(**opts)))  # type: ignore[arg-type]


def has(events: list[Event[GPU]], etype: EventType, name: str, min_rv: int = 0) -> bool:
    return any(
        e.type is etype and e.object.metadata.name == name and rv(e.object) >= min_rv
        for e in events
    )


def bookmark_wait(conformance: ConformanceTarget) -> float:
    """How long the target may take to send a progress bookmark; skips when unknown."""
    wait = conformance.bookmark_wait
    if wait is None:
        pytest.skip(
            f"unknown bookmark interval of {conformance.label}: set "
            "NVINFORMERS_CONFORMANCE_BOOKMARK_WAIT (seconds)"
        )
    return wait


def subscribed(log: WatchLog, writer: Writer, suffix: str = "sentinel", **labels: str) -> None:
    """Write a sentinel object until the watch reports it (see the module docstring).

    The server subscribes the watch some time after the call returns, and a server that sends
    no initial events loses a write made before that: so the sentinel is changed again until
    one of its events arrives.
    """
    name = writer.create(suffix, labels=labels).object_meta.name
    deadline = time.monotonic() + EVENT_WAIT
    while not log.wait(lambda events: bool(log.of([name])), 1.0):
        assert time.monotonic() < deadline and not log.ended.is_set(), (
            f"the watch did not report {name} (events: {summary(log.events)}, error: {log.error!r})"
        )
        writer.set_labels(name, **{"conformance.nvinformers.io/ping": str(time.monotonic_ns())})


@pytest.mark.parametrize("resource_version", ["", "0"], ids=["rv-empty", "rv-0"])
def test_watch_without_a_revision_starts_with_an_added_burst(
    clientset: Clientset, writer: Writer, resource_version: str
) -> None:
    a = writer.create("a")
    b = writer.set_ready(writer.create("b").object_meta.name, True)
    with open_watch(
        clientset, label_selector=writer.selector, resource_version=resource_version
    ) as log:
        names = {a.object_meta.name, b.object_meta.name}
        assert log.wait(lambda events: len(log.of(names)) >= 2, EVENT_WAIT), (
            f"no ADDED burst: {summary(log.events)}, error {log.error!r}"
        )
        burst = log.of(names)
        assert sorted(summary(burst)) == sorted(
            [("ADDED", a.object_meta.name, rv(a)), ("ADDED", b.object_meta.name, rv(b))]
        )
        a2 = writer.set_labels(a.object_meta.name, tier="gold")
        assert log.wait(
            lambda events: has(events, MODIFIED, a.object_meta.name, rv(a2)), EVENT_WAIT
        )


def test_watch_from_a_revision_replays_every_change_strictly_after_it(
    clientset: Clientset, writer: Writer
) -> None:
    a = writer.create("a")
    start = rv(a)
    a2 = writer.set_labels(a.object_meta.name, tier="gold")
    b = writer.create("b")
    writer.delete(a.object_meta.name)
    with open_watch(clientset, label_selector=writer.selector, resource_version=str(start)) as log:
        assert log.wait(lambda events: len(log.of(writer.owns)) >= 3, EVENT_WAIT), (
            f"replay incomplete: {summary(log.events)}, error {log.error!r}"
        )
        replay = log.of(writer.owns)
        assert [(str(e.type), e.object.metadata.name) for e in replay] == [
            ("MODIFIED", a.object_meta.name),
            ("ADDED", b.object_meta.name),
            ("DELETED", a.object_meta.name),
        ]
        assert rv(replay[0].object) == rv(a2) and rv(replay[1].object) == rv(b)
        assert all(rv(e.object) > start for e in replay)
        b2 = writer.set_labels(b.object_meta.name, tier="silver")
        assert log.wait(
            lambda events: has(events, MODIFIED, b.object_meta.name, rv(b2)), EVENT_WAIT
        )
        assert len(log.of(writer.owns)) == 4  # live events follow the replay, nothing repeated


def test_deleted_carries_the_last_state(clientset: Clientset, writer: Writer) -> None:
    with open_watch(clientset, label_selector=writer.selector) as log:
        subscribed(log, writer)
        a = writer.create("a", labels={"tier": "gold"}, uuid="GPU-last", status=ready_status(False))
        writer.delete(a.object_meta.name)
        name = a.object_meta.name
        assert log.wait(lambda events: has(events, DELETED, name), EVENT_WAIT), summary(log.events)
        deleted = next(e.object for e in log.of([name]) if e.type is DELETED)
        assert deleted.metadata.labels["tier"] == "gold"
        assert deleted.metadata.uid == a.object_meta.uid
        assert deleted.spec.uuid == "GPU-last"
        assert [(c.type, c.status) for c in deleted.status.conditions] == [("Ready", "False")]
        assert rv(deleted) >= rv(a)


def test_label_selector_on_a_watch_follows_objects_in_and_out(
    clientset: Clientset, writer: Writer
) -> None:
    with open_watch(clientset, label_selector=f"{writer.selector},tier=gold") as log:
        subscribed(log, writer, tier="gold")
        a = writer.create("a", labels={"tier": "gold"})  # ADDED
        b = writer.create("b", labels={"tier": "silver"})  # not seen
        writer.set_labels(b.object_meta.name, tier="gold")  # starts matching: ADDED
        writer.set_labels(a.object_meta.name, tier="silver")  # stops matching: DELETED
        writer.set_uuid(b.object_meta.name, "GPU-b2")  # matches before and after: MODIFIED
        writer.set_uuid(a.object_meta.name, "GPU-a2")  # matches neither: not seen
        end = writer.create("end", labels={"tier": "gold"}).object_meta.name
        assert log.wait(lambda events: has(events, ADDED, end), EVENT_WAIT), summary(log.events)
        seen = [
            (str(e.type), e.object.metadata.name.rsplit("-", 1)[-1])
            for e in log.of(writer.owns)
            if not e.object.metadata.name.endswith("-sentinel")
        ]
        assert seen == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("DELETED", "a"),
            ("MODIFIED", "b"),
            ("ADDED", "end"),
        ]
        gone = next(e.object for e in log.of([a.object_meta.name]) if e.type is DELETED)
        assert gone.metadata.labels["tier"] == "gold"  # the last state that matched


def test_a_bad_label_selector_on_a_watch_is_400_bad_request(clientset: Clientset) -> None:
    with open_watch(clientset, label_selector="tier in (gold") as log:
        assert log.ended.wait(EVENT_WAIT)
    assert isinstance(log.error, BadRequestError)
    assert log.error.grpc_code == "INVALID_ARGUMENT"


def test_timeout_seconds_ends_the_watch_cleanly(clientset: Clientset, writer: Writer) -> None:
    with open_watch(clientset, label_selector=writer.selector, timeout_seconds=1) as log:
        assert log.ended.wait(EVENT_WAIT), "the server did not end the watch"
    assert log.error is None  # status OK: a clean end of stream, not an error


def test_progress_bookmarks_advance_past_filtered_changes(
    conformance: ConformanceTarget, clientset: Clientset, writer: Writer
) -> None:
    wait = bookmark_wait(conformance)
    nothing = f"{writer.selector},conformance.nvinformers.io/none=true"
    with open_watch(clientset, label_selector=nothing, allow_watch_bookmarks=True) as log:
        # Changes the watch filters out; a bookmark must then carry a revision at least that of
        # the first. Some servers (etcd's progress notifications) send none until a change
        # follows the watch's start, so keep writing until one arrives.
        first = writer.create("a")
        name, floor = first.object_meta.name, rv(first)
        deadline = time.monotonic() + wait
        while not log.wait(
            lambda events: any(rv(b) >= floor for b in log.bookmarks()), min(wait / 4, 2.0)
        ):
            assert time.monotonic() < deadline, (
                f"no bookmark at or past {floor} within {wait} s: {summary(log.events)}"
            )
            writer.set_labels(name, tier=str(time.monotonic_ns()))
        mark = next(b for b in log.bookmarks() if rv(b) >= floor)
        assert mark.metadata.name == ""
        assert INITIAL_EVENTS_END_ANNOTATION not in mark.metadata.annotations
        assert log.of(lambda name: True) == []


def test_an_idle_watch_receives_progress_bookmarks(
    conformance: ConformanceTarget, clientset: Clientset, writer: Writer
) -> None:
    # The Kubernetes watch cache sends them to idle watches too; informers rely on them to tell
    # a quiet watch from a dead one (watch_inactivity_timeout).
    wait = bookmark_wait(conformance)
    nothing = f"{writer.selector},conformance.nvinformers.io/none=true"
    with open_watch(clientset, label_selector=nothing, allow_watch_bookmarks=True) as log:
        assert log.wait(lambda events: bool(log.bookmarks()), wait), (
            f"no bookmark within {wait} s on a watch with nothing to report: "
            f"{summary(log.events)}, error {log.error!r}"
        )


def test_send_initial_events_ends_the_burst_with_an_annotated_bookmark(
    clientset: Clientset, writer: Writer
) -> None:
    a = writer.create("a")
    b = writer.create("b")
    with open_watch(
        clientset,
        label_selector=writer.selector,
        send_initial_events=True,
        resource_version_match=RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
        allow_watch_bookmarks=True,
    ) as log:

        def ended(events: list[Event[GPU]]) -> bool:
            return any(
                m.metadata.annotations.get(INITIAL_EVENTS_END_ANNOTATION) for m in log.bookmarks()
            )

        assert log.wait(ended, EVENT_WAIT), (
            f"no initial-events-end bookmark: {summary(log.events)}, error {log.error!r}"
        )
        events = log.events
        end_at = next(
            i
            for i, e in enumerate(events)
            if e.type is EventType.BOOKMARK
            and e.object.metadata.annotations.get(INITIAL_EVENTS_END_ANNOTATION)
        )
        initial = [e for e in events[:end_at] if e.type is not EventType.BOOKMARK]
        assert sorted(summary(initial)) == sorted(
            [("ADDED", a.object_meta.name, rv(a)), ("ADDED", b.object_meta.name, rv(b))]
        )
        mark = events[end_at].object
        assert mark.metadata.annotations[INITIAL_EVENTS_END_ANNOTATION] == "true"
        assert rv(mark) >= rv(b)
        a2 = writer.set_labels(a.object_meta.name, tier="gold")
        assert log.wait(
            lambda events: has(events, MODIFIED, a.object_meta.name, rv(a2)), EVENT_WAIT
        )


def test_the_initial_events_end_bookmark_needs_allow_watch_bookmarks(
    clientset: Clientset, writer: Writer
) -> None:
    a = writer.create("a")
    with open_watch(
        clientset,
        label_selector=writer.selector,
        send_initial_events=True,
        resource_version_match=RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
    ) as log:
        assert log.wait(lambda events: has(events, ADDED, a.object_meta.name), EVENT_WAIT)
        a2 = writer.set_labels(a.object_meta.name, tier="gold")
        assert log.wait(
            lambda events: has(events, MODIFIED, a.object_meta.name, rv(a2)), EVENT_WAIT
        )
        assert log.bookmarks() == []


def test_send_initial_events_without_not_older_than_is_400_bad_request(
    clientset: Clientset,
) -> None:
    with open_watch(clientset, send_initial_events=True, allow_watch_bookmarks=True) as log:
        assert log.ended.wait(EVENT_WAIT)
    assert isinstance(log.error, BadRequestError)


def test_watch_from_an_expired_revision_is_410_expired(
    conformance: ConformanceTarget, clientset: Clientset, writer: Writer
) -> None:
    a = writer.create("a")
    start = rv(a)
    writer.set_labels(a.object_meta.name, tier="gold")
    conformance.expire(writer, start, a.object_meta.name)
    with open_watch(clientset, resource_version=str(start)) as log:
        assert log.ended.wait(EVENT_WAIT)
    assert isinstance(log.error, ExpiredError), (log.error, summary(log.events))
    assert log.error.code == 410 and log.error.grpc_code == "OUT_OF_RANGE"


def test_watch_from_an_unparsable_revision_is_410_expired(clientset: Clientset) -> None:
    with open_watch(clientset, resource_version="not-a-revision") as log:
        assert log.ended.wait(EVENT_WAIT)
    assert isinstance(log.error, ExpiredError), log.error
