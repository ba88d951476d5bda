"""The reflector's decisions, driven by a scripted list-watch (client-go's relist/re-watch
table)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nvinformers.api.device.v1alpha1 import GPUList, ListMeta
from nvinformers.cache import BackoffConfig, Reflector, VeryShortWatchError
from nvinformers.cache._reflector_errors import ReplayedWatchError, classify
from nvinformers.cache._revisions import revision_newer
from nvinformers.cancel import CancelToken
from nvinformers.clock import FakeClock
from nvinformers.errors import (
    BadRequestError,
    ExpiredError,
    InternalError,
    MalformedObjectError,
    ServiceUnavailableError,
)
from nvinformers.options import RESOURCE_VERSION_MATCH_NOT_OLDER_THAN, ListOptions
from nvinformers.watch import Event, EventType
from tests.unit.cache.scripted import WAIT, ScriptedListerWatcher, bookmark, eventually, gpu

FAST = BackoffConfig(initial=0.001, cap=0.002)


class RecordingStore:
    """Records what the reflector does to it. A relist that asks what it changed (a progress
    check) is told the next of ``changes`` (0 when none is scripted), as the informer would."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, Any]] = []
        self.changes: list[int] = []
        self._cond = threading.Condition()

    def _record(self, op: str, value: Any) -> None:
        with self._cond:
            self.ops.append((op, value))
            self._cond.notify_all()

    def add(self, obj: Any) -> None:
        self._record("add", obj.metadata.name)

    def update(self, obj: Any) -> None:
        self._record("update", obj.metadata.name)

    def delete(self, obj: Any) -> None:
        self._record("delete", obj.metadata.name)

    def replace(
        self,
        objects: list[Any],
        resource_version: str,
        *,
        on_applied: Callable[[int], None] | None = None,
    ) -> None:
        self._record("replace", (sorted(o.metadata.name for o in objects), resource_version))
        if on_applied is not None:
            on_applied(self.changes.pop(0) if self.changes else 0)

    def bookmark(self, resource_version: str) -> None:
        self._record("bookmark", resource_version)

    def wait_for(self, predicate: Callable[[list[tuple[str, Any]]], bool]) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.ops), WAIT)


class Running:
    """Runs a reflector in a thread; stops and joins it at the end of the test."""

    def __init__(self, reflector: Reflector[Any]) -> None:
        self.reflector = reflector
        self.stop = threading.Event()
        self.thread = threading.Thread(target=reflector.run, args=(self.stop,), name="test-refl")
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "reflector did not stop"


@pytest.fixture
def run() -> Iterator[Callable[..., tuple[Reflector[Any], ScriptedListerWatcher, RecordingStore]]]:
    running: list[Running] = []

    def start(
        lw: ScriptedListerWatcher | None = None, **kwargs: Any
    ) -> tuple[Reflector[Any], ScriptedListerWatcher, RecordingStore]:
        lw = lw or ScriptedListerWatcher(default_list=[gpu("a", 5), gpu("b", 7)])
        store = RecordingStore()
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("rng", random.Random(1))
        reflector: Reflector[Any] = Reflector(lw, store, name="gpus", **kwargs)
        running.append(Running(reflector))
        return reflector, lw, store

    yield start
    for r in running:
        r.close()


def test_first_list_asks_for_revision_zero_then_watches_from_the_list_revision(run: Any) -> None:
    reflector, lw, store = run()
    assert lw.wait_for_calls("watch", 1)
    assert lw.options("list", 0).resource_version == "0"
    opts = lw.options("watch", 0)
    assert opts.resource_version == "10"
    assert opts.allow_watch_bookmarks is True
    assert opts.timeout_seconds is not None and 300 <= opts.timeout_seconds < 600
    assert store.ops[0] == ("replace", (["a", "b"], "10"))
    assert reflector.last_sync_resource_version() == "10"


def test_watch_timeouts_are_randomized_between_min_and_twice_min(run: Any) -> None:
    _, lw, _ = run(min_watch_timeout=300.0)
    for i in range(5):
        w = lw.watch_at(i)
        w.push(Event(EventType.MODIFIED, gpu("a", 11 + i)))
        w.end()
    assert lw.wait_for_calls("watch", 6)
    timeouts = {lw.options("watch", i).timeout_seconds for i in range(6)}
    assert all(t is not None and 300 <= t < 600 for t in timeouts)
    assert len(timeouts) > 1


def test_events_reach_the_store_in_order_and_advance_the_revision(run: Any) -> None:
    reflector, lw, store = run()
    w = lw.watch_at(0)
    w.push(
        Event(EventType.ADDED, gpu("c", 11)),
        Event(EventType.MODIFIED, gpu("a", 12)),
        Event(EventType.DELETED, gpu("b", 13)),
        bookmark(20),
    )
    assert store.wait_for(lambda ops: len(ops) == 5)
    assert store.ops[1:] == [("add", "c"), ("update", "a"), ("delete", "b"), ("bookmark", "20")]
    assert reflector.last_sync_resource_version() == "20"
    assert reflector.stats.events == {"ADDED": 1, "MODIFIED": 1, "DELETED": 1, "BOOKMARK": 1}


def test_clean_end_rewatches_from_last_revision_without_relisting(run: Any) -> None:
    reflector, lw, _ = run()
    w = lw.watch_at(0)
    w.push(Event(EventType.MODIFIED, gpu("a", 15)))
    w.end()
    assert lw.wait_for_calls("watch", 2)
    assert lw.options("watch", 1).resource_version == "15"
    assert lw.count("list") == 1
    assert reflector.stats.watch_restarts == {"closed": 1}


def test_expired_watch_relists_at_the_last_revision(run: Any) -> None:
    # client-go: a watch-side 410 does not drop the revision; the relist asks for it first.
    reflector, lw, _ = run()
    w = lw.watch_at(0)
    w.push(Event(EventType.MODIFIED, gpu("a", 15)))
    w.fail(ExpiredError("too old resource version"))
    assert lw.wait_for_calls("list", 2)
    assert lw.options("list", 1).resource_version == "15"
    assert reflector.stats.watch_restarts == {"expired": 1}


def test_expired_list_retries_with_a_fresh_read(run: Any) -> None:
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    reflector, lw, _ = run(lw)
    w = lw.watch_at(0)
    w.fail(ExpiredError("too old"))
    lw.lists.append(ExpiredError("too old resource version"))
    assert lw.wait_for_calls("list", 3)
    assert [lw.options("list", i).resource_version for i in range(3)] == ["0", "10", ""]
    assert reflector.stats.lists == {"initial": 1, "relist": 1, "expired": 1}


@pytest.mark.parametrize(
    "error", [InternalError("boom"), MalformedObjectError("no name"), BadRequestError("bad")]
)
def test_other_watch_errors_relist(run: Any, error: Exception) -> None:
    _, lw, _ = run()
    lw.watch_at(0).fail(error)
    assert lw.wait_for_calls("list", 2)
    assert lw.wait_for_calls("watch", 2)


def test_unavailable_at_watch_start_backs_off_and_rewatches_without_relisting(run: Any) -> None:
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    lw.watch_scripts.extend([ServiceUnavailableError("down"), ServiceUnavailableError("down")])
    reflector, lw, _ = run(lw)
    assert lw.wait_for_calls("watch", 3)
    assert lw.count("list") == 1
    assert reflector.health.failures == 2


def test_stream_broken_by_unavailable_rewatches_without_relisting(run: Any) -> None:
    reflector, lw, _ = run()
    w = lw.watch_at(0)
    w.push(Event(EventType.MODIFIED, gpu("a", 12)))
    w.fail(ServiceUnavailableError("server went away"))
    assert lw.wait_for_calls("watch", 2)
    assert lw.options("watch", 1).resource_version == "12"
    assert lw.count("list") == 1
    assert reflector.stats.watch_restarts == {"unavailable": 1}


def test_a_very_short_empty_watch_is_an_error_that_relists(run: Any) -> None:
    clock = FakeClock()
    reflector, lw, _ = run(clock=clock, watch_inactivity_timeout=None)
    lw.watch_at(0).end()  # ends at once (fake time does not move) with no event
    assert clock.block_until_waiters(2)  # supervisor + backoff
    clock.step(5)
    assert lw.wait_for_calls("list", 2)
    assert reflector.stats.watch_restarts == {"very_short": 1}


def listed(rv: int, *objects: Any) -> GPUList:
    return GPUList(items=tuple(objects), metadata=ListMeta(resource_version=str(rv)))


def test_a_silent_watch_is_checked_with_a_consistent_relist_then_watched_from_its_revision(
    run: Any,
) -> None:
    """The inactivity restart became a progress check: a silent watch is stopped, the state is
    listed afresh (revision "", a consistent read) and the next watch follows that list."""
    clock = FakeClock()
    reflector, lw, store = run(clock=clock, watch_inactivity_timeout=30.0)
    w0 = lw.watch_at(0)
    w0.push(Event(EventType.MODIFIED, gpu("a", 12)))
    assert eventually(lambda: reflector.stats.events.get("MODIFIED") == 1)
    lw.lists.append(listed(15, gpu("a", 12), gpu("b", 7)))  # kine: a compaction, no change
    clock.step(29)
    assert not w0.stopped
    clock.step(2)
    assert w0.finished.wait(WAIT)
    assert lw.wait_for_calls("watch", 2)
    assert lw.options("list", 1).resource_version == ""
    assert lw.options("watch", 1).resource_version == "15"
    assert store.ops[-1] == ("replace", (["a", "b"], "15"))
    assert reflector.stats.watch_restarts == {"inactivity": 1}
    assert reflector.stats.lists == {"initial": 1, "progress_check": 1}
    assert reflector.stats.progress_checks == {"current": 1}
    report = reflector.health.report()
    assert report.problem is None and report.seconds_since_last_event == 0.0


def test_a_check_that_changed_the_cache_reports_a_frozen_stream_until_an_event(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    clock = FakeClock()
    reflector, lw, store = run(clock=clock, watch_inactivity_timeout=30.0)
    assert lw.wait_for_calls("watch", 1)
    store.changes.extend([2, 1])  # what the two checks' relists change in the cache

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    clock.step(31)
    assert lw.wait_for_calls("watch", 2)
    # The supervisor logs the outage as soon as the check's result is in (no clock step).
    assert eventually(lambda: len(warnings()) == 1)
    assert warnings() == [
        "gpus: watch delivered nothing for 31.0 s while the server changed 2 objects (found "
        "by a relist, which repaired the cache)"
    ]
    clock.step(31)
    assert lw.wait_for_calls("watch", 3)
    assert eventually(lambda: reflector.stats.progress_checks == {"stale": 2})
    problem = reflector.health.report().problem
    assert problem == (
        "watch delivered nothing for 62.0 s while the server changed 3 objects (found by a "
        "relist, which repaired the cache)"
    )
    assert len(warnings()) == 1  # one outage, one WARNING
    lw.watch_at(2).push(Event(EventType.MODIFIED, gpu("a", 30)))
    assert eventually(lambda: reflector.health.report().problem is None)


def test_a_failed_check_ends_the_pass_and_the_next_one_relists(run: Any) -> None:
    clock = FakeClock()
    reflector, lw, _ = run(clock=clock, watch_inactivity_timeout=30.0)
    assert lw.wait_for_calls("watch", 1)
    lw.lists.append(ServiceUnavailableError("the server went away"))
    clock.step(31)
    assert lw.wait_for_calls("list", 2)
    assert eventually(lambda: reflector.stats.progress_checks == {"failed": 1})
    assert eventually(lambda: reflector.health.failures == 1)
    assert clock.block_until_waiters(2)  # the supervisor and the backoff
    clock.step(5)
    assert lw.wait_for_calls("list", 3)
    assert lw.options("list", 2).resource_version == "10"  # an ordinary relist
    assert reflector.stats.lists == {"initial": 1, "progress_check": 1, "relist": 1}


class BlockingStore(RecordingStore):
    """A store whose updates block until released (a transform or index function that hangs
    the reflector's thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def update(self, obj: Any) -> None:
        self.entered.set()
        assert self.release.wait(WAIT)
        super().update(obj)


def test_a_check_that_cannot_start_is_reported_after_the_grace() -> None:
    """The silence is not explained while the check has not run: a run thread stuck in the
    store leaves the watch unchecked, and health says so once the check is overdue."""
    clock = FakeClock()
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    store = BlockingStore()
    reflector: Reflector[Any] = Reflector(
        lw, store, name="gpus", clock=clock, backoff=FAST, watch_inactivity_timeout=30.0
    )
    running = Running(reflector)
    try:
        w0 = lw.watch_at(0)
        w0.push(Event(EventType.MODIFIED, gpu("a", 12)))
        assert store.entered.wait(WAIT)  # the run thread is stuck in update()
        clock.step(31)
        assert eventually(lambda: w0.stopped)  # the supervisor stopped the silent watch
        clock.step(4.9)
        assert reflector.health.report().problem is None
        clock.step(0.1)
        assert reflector.health.report().problem == (
            "watch silent for 36.0 s (no event, no bookmark), and the progress check due 5.0 s "
            "ago has not started"
        )
        store.release.set()
        assert lw.wait_for_calls("watch", 2)
        assert eventually(lambda: reflector.health.report().problem is None)
        assert reflector.stats.progress_checks == {"current": 1}
    finally:
        store.release.set()
        running.close()


def test_bookmarks_keep_a_quiet_watch_alive(run: Any) -> None:
    clock = FakeClock()
    reflector, lw, store = run(clock=clock, watch_inactivity_timeout=30.0)
    w0 = lw.watch_at(0)
    for i in range(4):
        clock.step(20)
        w0.push(bookmark(100 + i))
        assert store.wait_for(lambda ops, i=i: ("bookmark", str(100 + i)) in ops)
    assert not w0.stopped
    assert reflector.stats.watch_restarts == {}


def test_backoff_grows_with_jitter_and_resets_after_two_quiet_minutes(run: Any) -> None:
    clock = FakeClock()
    lw = ScriptedListerWatcher()
    lw.lists.extend([InternalError(f"fail {i}") for i in range(5)])

    class RecordingClock(FakeClock):
        def __init__(self) -> None:
            super().__init__()
            self.delays: list[float] = []

        def wait(self, event: threading.Event, timeout: float | None) -> bool:
            if timeout is not None and threading.current_thread().name == "test-refl":
                self.delays.append(timeout)
            return super().wait(event, timeout)

    clock = RecordingClock()
    run(lw, clock=clock, backoff=BackoffConfig(), watch_inactivity_timeout=None)
    for n in range(1, 6):
        assert clock.block_until_waiters(2)
        assert eventually(lambda: len(clock.delays) >= n)  # noqa: B023 - evaluated at once
        clock.step(clock.delays[-1])
    base = [0.8, 1.6, 3.2, 6.4, 12.8]
    assert len(clock.delays) >= 5
    for delay, expected in zip(clock.delays, base, strict=False):
        assert expected <= delay < 2 * expected
    # Two quiet minutes later, the next failure starts again from 800 ms.
    assert lw.wait_for_calls("watch", 1)
    w = lw.watch_at(0)
    w.push(Event(EventType.MODIFIED, gpu("a", 50)))
    clock.step(121)
    lw.lists.append(InternalError("again"))
    w.fail(InternalError("watch failed"))
    assert eventually(lambda: len(clock.delays) >= 6)
    assert 0.8 <= clock.delays[5] < 1.6


def test_revision_never_moves_backwards_on_an_added_burst(run: Any) -> None:
    reflector, lw, _ = run()
    w = lw.watch_at(0)
    # A server that ignores the requested revision replays every object, in any order.
    w.push(
        Event(EventType.ADDED, gpu("b", 7)),
        Event(EventType.ADDED, gpu("a", 5)),
        Event(EventType.MODIFIED, gpu("a", 11)),
        Event(EventType.ADDED, gpu("b", 7)),
    )
    assert eventually(lambda: sum(reflector.stats.events.values()) == 4)
    assert reflector.last_sync_resource_version() == "11"


def test_streaming_list_replaces_the_store_at_the_end_bookmark_and_keeps_the_stream(
    run: Any,
) -> None:
    def initial(w: Any) -> None:
        w.push(
            Event(EventType.ADDED, gpu("a", 3)),
            Event(EventType.ADDED, gpu("b", 4)),
            bookmark(9, initial_end=True),
            Event(EventType.MODIFIED, gpu("a", 12)),
        )

    lw = ScriptedListerWatcher()
    lw.watch_scripts.append(initial)
    reflector, lw, store = run(lw, use_watch_list=True)
    assert store.wait_for(lambda ops: ("update", "a") in ops)
    assert store.ops[:2] == [("replace", (["a", "b"], "9")), ("update", "a")]
    opts = lw.options("watch", 0)
    assert opts.send_initial_events is True
    assert opts.resource_version_match == RESOURCE_VERSION_MATCH_NOT_OLDER_THAN
    assert lw.count("list") == 0
    assert reflector.last_sync_resource_version() == "12"


def test_streaming_list_falls_back_to_a_classic_list_when_refused(run: Any) -> None:
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    lw.watch_scripts.append(BadRequestError("sendInitialEvents is not supported"))
    _, lw, store = run(lw, use_watch_list=True)
    assert lw.wait_for_calls("watch", 2)
    assert lw.count("list") == 1
    assert store.ops[0] == ("replace", (["a"], "10"))
    assert lw.options("watch", 1).send_initial_events is None


def test_streaming_list_falls_back_when_the_stream_ends_before_the_bookmark(run: Any) -> None:
    def partial(w: Any) -> None:
        w.push(Event(EventType.ADDED, gpu("a", 3)))
        w.end()

    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    lw.watch_scripts.append(partial)
    _, lw, store = run(lw, use_watch_list=True)
    assert lw.wait_for_calls("list", 1)
    assert store.wait_for(lambda ops: bool(ops))
    assert store.ops[0] == ("replace", (["a"], "10"))


def test_streaming_list_without_an_end_bookmark_falls_back_after_the_timeout(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that ignores send_initial_events (the device-apiserver's memory storage) never
    ends the initial events: the reflector waited for the watch's own timeout (5-10 min), then
    tried again on every pass. It now falls back to a classic list once initial_events_timeout
    has passed, and lists classically from then on."""
    caplog.set_level(logging.WARNING, logger="nvinformers")
    clock = FakeClock()
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    lw.watch_scripts.append(lambda w: w.push(Event(EventType.ADDED, gpu("a", 5))))
    reflector, lw, store = run(lw, clock=clock, use_watch_list=True, initial_events_timeout=60.0)
    streaming = lw.watch_at(0)
    assert streaming.options.send_initial_events is True
    # Until the end bookmark it is a list in flight, not a watch.
    assert eventually(lambda: reflector.health.report().watching is False)
    clock.step(59)
    # A streaming list is a list: one that hangs is an outage, as a classic one would be.
    assert eventually(lambda: len(caplog.records) == 1)
    assert not streaming.stopped and lw.count("list") == 0
    clock.step(1)
    assert lw.wait_for_calls("list", 1)
    assert streaming.stopped
    plain = lw.watch_at(1)
    assert plain.options.send_initial_events is None
    assert plain.options.resource_version == "10"
    assert store.ops[0] == ("replace", (["a"], "10"))
    # The next pass lists classically: the server does not stream lists.
    plain.fail(ExpiredError("too old resource version"))
    assert clock.block_until_waiters(2)  # the supervisor and the backoff
    clock.step(5)
    assert lw.wait_for_calls("list", 2)
    assert lw.watch_at(2).options.send_initial_events is None
    assert [r.getMessage() for r in caplog.records] == [
        "gpus: no working watch for 59.0 s (list in flight for 59.0 s)",
        "gpus: no initial-events-end bookmark within 60 s of a streaming list (1 initial "
        "events received): the server ignores send_initial_events; using classic lists from now on",
    ]


def test_streaming_list_falls_back_when_a_change_precedes_the_end_bookmark(run: Any) -> None:
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    lw.watch_scripts.append(lambda w: w.push(Event(EventType.MODIFIED, gpu("a", 6))))
    _, lw, store = run(lw, use_watch_list=True)
    assert lw.wait_for_calls("list", 1)
    assert store.wait_for(lambda ops: bool(ops))
    assert store.ops[0] == ("replace", (["a"], "10"))
    assert lw.watch_at(1).options.send_initial_events is None
    lw.watch_at(1).fail(ExpiredError("too old resource version"))
    assert lw.wait_for_calls("list", 2)
    assert lw.watch_at(2).options.send_initial_events is None


def test_a_failed_streaming_list_falls_back_to_a_list_in_the_same_pass(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """client-go falls back to a classic list on any error of the streaming list but the ones
    it retries (a server away, an expired revision); the next pass streams again."""
    caplog.set_level(logging.WARNING, logger="nvinformers")
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    lw.watch_scripts.extend([InternalError("boom"), None, InternalError("boom again")])
    reflector, lw, _ = run(lw, use_watch_list=True)
    assert lw.wait_for_calls("watch", 2)
    assert lw.count("list") == 1
    assert reflector.stats.lists == {"initial": 1}
    assert reflector.health.failures == 0  # no outage: the classic list worked
    lw.watch_at(0).fail(ExpiredError("too old resource version"))
    assert lw.wait_for_calls("watch", 3)
    assert lw.options("watch", 2).send_initial_events is True  # tried again
    assert lw.wait_for_calls("list", 2)
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "gpus: streaming list failed (InternalError: boom); falling back to a classic list"
    ]  # the second failure is logged at DEBUG


def test_stop_ends_a_blocked_watch_promptly() -> None:
    lw = ScriptedListerWatcher()
    reflector: Reflector[Any] = Reflector(lw, RecordingStore(), name="x", backoff=FAST)
    stop = threading.Event()
    thread = threading.Thread(target=reflector.run, args=(stop,))
    thread.start()
    w = lw.watch_at(0)
    assert not w.stopped
    stop.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert w.stopped


def test_the_watch_error_handler_sees_every_failed_pass_and_may_raise(run: Any) -> None:
    seen: list[str] = []

    def handler(name: str, err: BaseException) -> None:
        seen.append(f"{name}:{type(err).__name__}")
        raise RuntimeError("handler bug")

    _, lw, _ = run(watch_error_handler=handler)
    lw.watch_at(0).fail(InternalError("x"))
    assert lw.wait_for_calls("list", 2)
    assert eventually(lambda: bool(seen))
    assert seen[0] == "gpus:InternalError"


def test_revision_comparison() -> None:
    assert revision_newer("11", "9") is True
    assert revision_newer("9", "11") is False
    assert revision_newer("9", "9") is False
    assert revision_newer("abc", "9") is None


def test_a_replayed_burst_on_a_rewatch_relists_but_one_after_a_list_is_accepted(
    run: Any,
) -> None:
    reflector, lw, store = run()
    first = lw.watch_at(0)
    # Right after the list, a server that ignores revisions repeats the list: accepted.
    first.push(Event(EventType.ADDED, gpu("a", 5)), Event(EventType.ADDED, gpu("b", 7)))
    first.push(Event(EventType.MODIFIED, gpu("a", 12)))
    first.end()
    second = lw.watch_at(1)
    assert lw.options("watch", 1).resource_version == "12"
    # On the re-watch, the same replay could hide deletes made in the gap: relist.
    second.push(Event(EventType.ADDED, gpu("a", 12)))
    assert lw.wait_for_calls("list", 2)
    assert reflector.stats.watch_restarts == {"closed": 1, "replayed": 1}
    assert ("add", "a") in store.ops  # the burst after the list was applied as usual
    assert store.ops.count(("add", "a")) == 1  # the replayed one on the re-watch was not


def test_a_new_object_on_a_rewatch_is_not_a_replay(run: Any) -> None:
    reflector, lw, store = run()
    first = lw.watch_at(0)
    first.push(Event(EventType.MODIFIED, gpu("a", 12)))
    first.end()
    second = lw.watch_at(1)
    second.push(Event(EventType.ADDED, gpu("c", 13)))
    assert store.wait_for(lambda ops: ("add", "c") in ops)
    assert lw.count("list") == 1
    assert "replayed" not in reflector.stats.watch_restarts


class HangingLister(ScriptedListerWatcher):
    """Every list blocks until its cancel token fires, then fails as the clientset does."""

    def __init__(self) -> None:
        super().__init__(default_list=[gpu("a", 5)])
        self.listing = threading.Event()
        self.tokens: list[CancelToken] = []

    def list_with_cancel(self, options: ListOptions, cancel: CancelToken) -> GPUList:
        self.tokens.append(cancel)
        self.listing.set()
        assert cancel.wait(WAIT)
        raise ServiceUnavailableError("the ListGpus call was cancelled", grpc_code="CANCELLED")


def test_stop_cancels_a_list_in_flight_and_is_no_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10: a stopped reflector returned only once its list did (client-go returns at
    once). The list now gets a token that fires when stop is set."""
    lw = HangingLister()
    reflector: Reflector[Any] = Reflector(lw, RecordingStore(), name="x", backoff=FAST)
    stop = threading.Event()
    thread = threading.Thread(target=reflector.run, args=(stop,), name="test-refl")
    with caplog.at_level(logging.DEBUG, logger="nvinformers"):
        thread.start()
        assert lw.listing.wait(WAIT)
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert lw.tokens[0].cancelled()
    assert reflector.stats.list_failures == 0 and reflector.health.failures == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


def test_an_outage_starts_no_thread(run: Any) -> None:
    """Issue 10: each outage used to start a recovery thread; a deadline is enough."""
    before = {t.name for t in threading.enumerate()}
    lw = ScriptedListerWatcher(default_list=[gpu("a", 5)])
    lw.watch_scripts.extend([ServiceUnavailableError("down")] * 20)
    reflector, lw, _ = run(lw)
    assert lw.wait_for_calls("watch", 21)
    assert lw.watch_at(0) is not None  # the server is back
    started = {t.name for t in threading.enumerate()} - before
    assert started == {"test-refl", "nvinformers-stop-gpus", "nvinformers-watchdog-gpus"}
    assert reflector.health.failures == 20


@pytest.mark.parametrize(
    ("error", "reason", "relist", "failure"),
    [
        (ServiceUnavailableError("x"), "unavailable", False, True),
        (ExpiredError("x"), "expired", True, False),
        (VeryShortWatchError("x"), "very_short", True, False),
        (ReplayedWatchError("x"), "replayed", True, False),
        (MalformedObjectError("x"), "malformed", True, True),
        (InternalError("x"), "error", True, True),
        (BadRequestError("x"), "error", True, True),
        (KeyError("a bug"), "error", True, True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_classify_is_the_one_table_of_what_errors_mean(
    error: BaseException, reason: str, relist: bool, failure: bool
) -> None:
    verdict = classify(error)
    assert (verdict.reason, verdict.relist, verdict.failure) == (reason, relist, failure)
    assert verdict.unexpected == isinstance(error, KeyError)


def test_a_revision_that_is_not_a_decimal_integer_is_warned_about_once(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="nvinformers")
    lw = ScriptedListerWatcher(default_list=[gpu("a", "x5")], default_list_rv="x10")
    reflector, lw, store = run(lw)
    w = lw.watch_at(0)
    w.push(Event(EventType.MODIFIED, gpu("a", "x12")), Event(EventType.MODIFIED, gpu("a", "x9")))
    assert store.wait_for(lambda ops: len(ops) == 3)
    assert reflector.last_sync_resource_version() == "x9"  # opaque: the latest one seen
    assert lw.options("watch", 0).resource_version == "x10"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'x10' is not a decimal integer" in warnings[0]
