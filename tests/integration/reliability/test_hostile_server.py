"""A hostile server (issue 10): silent watches, a hung relist, a hung list at shutdown, revisions
that are not decimal integers, garbage responses and flapping streams, each reproduced with the
hostile-server kit (``server.hostile``) against the real FakeServer on a real socket.

What must hold: ``health()`` tells the truth (silence counted across watch restarts; "no working
watch" counted from the moment the last watch ended, list in flight or not); stopping cancels
in-flight calls at once; odd input is named; and the logs say one line per state change.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.errors import MalformedObjectError
from nvinformers.informers import SharedInformerFactory
from nvinformers.testing import (
    ALPHA_REVISIONS,
    BACKWARD_REVISIONS,
    EXPONENT_REVISIONS,
    NEGATIVE_REVISIONS,
    FakeServer,
    RevisionCodec,
)
from tests.integration.reliability.conftest import (
    WAIT,
    RunInformer,
    cache_matches_server,
    nvinformers_records,
)
from tests.unit.cache.recording import RecordingHandler
from tests.unit.cache.scripted import eventually


def seconds_in(reason: str) -> float:
    """The duration a health reason states (``"watch silent for 3.2 s"`` → 3.2)."""
    found = re.search(r"for (\d+\.\d) s", reason)
    assert found, reason
    return float(found[1])


# ------------------------------------------- 1. a silent watch: an idle server or a frozen one

#: Above RECOVERED_AFTER (1 s), so that each watch works before it is checked.
INACTIVITY = 1.2


@pytest.fixture
def bookmarking_server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=0.05, bookmark_interval=0.05, seed=5) as srv:
        yield srv


def test_an_idle_server_without_bookmarks_stays_healthy_through_progress_checks(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13: NVIDIA's device-apiserver sends no progress bookmark to an idle watch (its
    etcd3 storage only after a change followed the watch's start; its memory storage never),
    so under issue 10's rule every informer on an idle node turned unhealthy after
    watch_inactivity_timeout, with a WARNING. This was the "[idle server]" case of the
    silent-watch test below, which asserted exactly that; it now asserts the opposite: each
    silent period is checked with a relist that finds the cache current, which explains it."""
    caplog.set_level(logging.INFO, logger="nvinformers")
    registry = CollectorRegistry()
    informer = run_informer(clientset, watch_inactivity_timeout=INACTIVITY, registry=registry)
    assert informer.wait_for_sync(WAIT)
    checks = informer.reflector.stats.progress_checks

    def checked_thrice_while_healthy() -> bool:
        health = informer.health()
        assert health.healthy, f"unhealthy after {checks}: {health}"
        return checks.get("current", 0) >= 3

    assert eventually(checked_thrice_while_healthy)
    assert checks == {"current": checks["current"]}
    assert informer.reflector.stats.watch_restarts == {"inactivity": checks["current"]}
    assert server.calls["ListGpus"] == 1 + checks["current"]
    sample = registry.get_sample_value(
        "nvinformers_informer_progress_checks_total", {"informer": "gpus", "result": "current"}
    )
    assert sample is not None and sample >= 3
    assert nvinformers_records(caplog.records, logging.INFO) == []
    # The watch that follows a check carries changes as usual.
    server.set_ready("gpu-1", False)
    assert eventually(lambda: cache_matches_server(informer, server))
    assert informer.health().healthy


def test_a_silent_watch_is_reported_for_as_long_as_the_silence_lasts_across_restarts(
    bookmarking_server: FakeServer,
    run_informer: RunInformer,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10, case 1: each inactivity restart used to reset the activity clock, so health()
    never said "silent". Silence is the time since the last event or bookmark on any watch.

    Issue 13 changed what a silence means: it was parametrized over an idle server and a
    silenced one, and both had to turn unhealthy. Now only a silence while the server changes
    is a frozen stream: each check's relist finds the changes (and repairs the cache), and
    health stays false, the silence growing, through several checks. The idle server is
    healthy (the test above)."""
    caplog.set_level(logging.INFO, logger="nvinformers")
    server = bookmarking_server
    # Events and bookmarks flow on the server, but no watch stream carries them.
    server.hostile.silence()
    clientset = new_for_config(Config(target=server.target, metrics_registry=CollectorRegistry()))
    request.addfinalizer(clientset.close)
    informer = run_informer(clientset, watch_inactivity_timeout=INACTIVITY)
    assert informer.wait_for_sync(WAIT)
    assert eventually(lambda: informer.health().reason.startswith("watch delivered nothing for"))
    first = informer.health()
    assert not first.healthy and seconds_in(first.reason) >= INACTIVITY
    assert "while the server changed" in first.reason
    # Health stays false through several checks, and the silence it states keeps growing.
    checks = informer.reflector.stats.progress_checks
    seen: list[float] = []

    def checked_thrice_while_unhealthy() -> bool:
        health = informer.health()
        assert not health.healthy, f"healthy again after {seen}: {health}"
        seen.append(seconds_in(health.reason))
        return checks.get("stale", 0) >= 3

    assert eventually(checked_thrice_while_unhealthy)
    assert seen == sorted(seen) and seen[-1] > 2.5 * INACTIVITY  # ~3 periods, not one
    assert informer.health().seconds_since_last_event == pytest.approx(seen[-1], abs=0.2)
    assert "current" not in checks
    warnings = nvinformers_records(caplog.records, logging.WARNING)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one outage, one WARNING
    assert "while the server changed" in warnings[0].getMessage()
    # The first event (or bookmark) makes it healthy again.
    server.hostile.silence(False)
    server.set_ready("gpu-1", False)
    assert eventually(lambda: informer.health().healthy), informer.health()
    assert eventually(lambda: cache_matches_server(informer, server))


def test_a_progress_check_that_hangs_is_an_outage(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The check's relist never answers: the silent watch was stopped for it, so this is "no
    working watch" after outage_grace, one WARNING, as for any hung relist; the check that
    completes once released finds the cache current, and the recovery is logged."""
    caplog.set_level(logging.INFO, logger="nvinformers")
    grace = 2.0
    informer = run_informer(clientset, watch_inactivity_timeout=INACTIVITY, outage_grace=grace)
    assert informer.wait_for_sync(WAIT)
    checks = informer.reflector.stats.progress_checks
    assert eventually(lambda: checks.get("current", 0) >= 1)
    server.hostile.hang("ListGpus")  # the next check's list
    assert server.hostile.wait_for_hung("ListGpus", 1, WAIT)
    assert eventually(lambda: not informer.health().healthy)
    health = informer.health()
    assert health.reason.startswith("no working watch for") and "list in flight" in health.reason
    assert not health.watching and seconds_in(health.reason) >= grace
    warnings = nvinformers_records(caplog.records, logging.WARNING)
    assert len(warnings) == 1 and "no working watch" in warnings[0].getMessage()
    before = checks["current"]
    server.hostile.release()
    assert eventually(lambda: checks.get("current", 0) > before)
    assert eventually(lambda: informer.health().healthy), informer.health()
    assert eventually(lambda: any("recovered" in r.getMessage() for r in caplog.records))
    assert len(nvinformers_records(caplog.records, logging.WARNING)) == 1
    assert "failed" not in checks


def test_a_streaming_list_falls_back_to_a_list_when_the_server_ignores_initial_events(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13: against the device-apiserver's memory storage, which ignores
    send_initial_events, an informer with use_watch_list=True never synced (no initial-events-
    end bookmark, ever). Like client-go, it now falls back to a classic list: here after
    list_timeout, since no bookmark came."""
    caplog.set_level(logging.WARNING, logger="nvinformers")
    server.hostile.ignore_initial_events()
    informer = run_informer(clientset, use_watch_list=True, list_timeout=0.5)
    assert informer.wait_for_sync(WAIT)
    assert server.calls["ListGpus"] == 1
    assert cache_matches_server(informer, server)
    assert informer.reflector.stats.lists == {"initial": 1}
    warnings = [r.getMessage() for r in nvinformers_records(caplog.records, logging.WARNING)]
    assert warnings == [
        "gpus: no initial-events-end bookmark within 0.5 s of a streaming list (8 initial "
        "events received): the server ignores send_initial_events; using classic lists from now on"
    ]

    # Later passes list classically; the watch carries changes. The abandoned streaming watch
    # may still be open on the server when the classic one starts, so end watches until the
    # expiry reaches the classic one and it relists (ending an abandoned stream is harmless).
    def relisted_after_expiry() -> bool:
        server.end_watches(grpc.StatusCode.OUT_OF_RANGE, "too old resource version")
        return server.wait_for_calls("ListGpus", 2, 0.05)

    assert eventually(relisted_after_expiry)
    server.set_ready("gpu-2", False)
    assert eventually(lambda: cache_matches_server(informer, server))


# --------------------------------------------------------------------- 2. a hung relist


def test_a_hung_relist_is_an_outage_counted_from_the_end_of_the_watch(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10, case 2: the watch ended with OUT_OF_RANGE and the relist never answered; health
    said ok for list_timeout + grace and nothing was logged for a minute."""
    caplog.set_level(logging.INFO, logger="nvinformers")
    grace = 0.5
    informer = run_informer(clientset, outage_grace=grace)
    assert informer.wait_for_sync(WAIT)
    assert server.wait_for_watches(1, WAIT)
    server.set_ready("gpu-0", False)  # an event: the watch works
    assert eventually(lambda: cache_matches_server(informer, server))
    assert informer.health().healthy
    caplog.clear()
    server.hostile.hang("ListGpus")
    ended = time.monotonic()
    server.end_watches(grpc.StatusCode.OUT_OF_RANGE, "too old resource version")
    assert server.hostile.wait_for_hung("ListGpus", 1, WAIT)
    assert eventually(lambda: not informer.health().healthy)
    health = informer.health()
    down = health.seconds_down
    assert health.reason.startswith("no working watch for") and not health.watching
    assert "list in flight" in health.reason
    assert down is not None and grace <= down <= time.monotonic() - ended
    assert seconds_in(health.reason) >= grace
    # One warning, when the outage began; not one per deadline.
    assert eventually(lambda: len(nvinformers_records(caplog.records, logging.WARNING)) == 1)
    warning = nvinformers_records(caplog.records, logging.WARNING)[0]
    assert warning.name == "nvinformers.cache.reflector"
    assert "no working watch" in warning.getMessage()

    server.hostile.release()
    assert eventually(lambda: informer.health().healthy), informer.health()
    assert eventually(lambda: any("recovered" in r.getMessage() for r in caplog.records))
    assert len(nvinformers_records(caplog.records, logging.WARNING)) == 1
    assert sum("recovered" in r.getMessage() for r in caplog.records) == 1


# --------------------------------------------------------- 3. stopping during a hung list


@pytest.mark.parametrize("when", ["initial list", "relist"])
def test_shutdown_cancels_a_hung_list_at_once(
    server: FakeServer, clientset: Clientset, when: str
) -> None:
    """Issue 10, case 3: factory.shutdown() waited for a hanging ListGpus (57 s)."""
    factory = SharedInformerFactory(clientset)  # list_timeout 60 s: only a cancel ends it
    informer = factory.device().v1alpha1().gpus().informer()
    if when == "initial list":
        server.hostile.hang("ListGpus")
    factory.start()
    if when == "relist":
        assert informer.wait_for_sync(WAIT)
        assert server.wait_for_watches(1, WAIT)
        server.hostile.hang("ListGpus")
        server.end_watches(grpc.StatusCode.OUT_OF_RANGE)
    assert server.hostile.wait_for_hung("ListGpus", 1, WAIT)
    shutdown = threading.Thread(target=factory.shutdown, name="test-shutdown")
    try:
        shutdown.start()
        shutdown.join(WAIT)
        assert not shutdown.is_alive(), "shutdown waited for the hung list"
        # Cancelled, not abandoned: the server saw the call end.
        assert server.hostile.wait_for_hung("ListGpus", 0, WAIT)
        assert informer.is_stopped()
    finally:
        server.hostile.release()
        shutdown.join(WAIT)


# ----------------------------------------------------- 4. revisions that are not integers


@pytest.mark.parametrize(
    "codec", [ALPHA_REVISIONS, NEGATIVE_REVISIONS, EXPONENT_REVISIONS], ids=lambda c: c.name
)
def test_revisions_that_are_not_decimal_integers_are_opaque_and_said_so_once(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
    codec: RevisionCodec,
) -> None:
    """Issue 10, case 4: such revisions were applied silently. They still are (and sent back on
    re-watch), but one WARNING per informer says that stale-event protection is off, and why."""
    caplog.set_level(logging.INFO, logger="nvinformers")
    server.hostile.set_revisions(codec)
    handler = RecordingHandler()
    informer = run_informer(clientset, (handler,))
    assert informer.wait_for_sync(WAIT)
    assert server.wait_for_watches(1, WAIT)
    lists = server.calls["ListGpus"]

    def synced_to(rv: str) -> Callable[[], bool]:
        return lambda: informer.last_sync_resource_version() == rv

    for i in range(3):
        changed = server.set_ready(f"gpu-{i}", False)
        expected = codec.encode(int(changed.metadata.resource_version))
        assert eventually(synced_to(expected))
        server.end_watches()  # a clean end: re-watch from the opaque revision, no relist
        assert server.wait_for_calls("WatchGpus", i + 2, WAIT)
    assert handler.wait_for_count(8 + 3)
    assert server.calls["ListGpus"] == lists
    cached = informer.get_indexer().get_by_key("gpu-2")
    assert cached is not None and cached.metadata.resource_version == expected
    warnings = nvinformers_records(caplog.records, logging.WARNING)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    text = warnings[0].getMessage()
    assert "stale-event protection is off" in text and "not a decimal integer" in text
    assert repr(codec.encode(8)) in text  # the first one seen: the list's revision


# --------------------------------------------------------------- 5. garbage list responses


def test_a_garbage_list_response_is_named_and_logged_once_without_grpc_tracebacks(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10, case 5: grpc's own logger printed ERROR plus a traceback on every retry, and the
    error did not name the target."""
    caplog.set_level(logging.DEBUG)
    server.hostile.send_garbage("ListGpus")
    with pytest.raises(MalformedObjectError) as info:
        clientset.device_v1alpha1().gpus().list(timeout=WAIT)
    assert "ListGpus" in str(info.value) and server.target in str(info.value)
    informer = run_informer(clientset)
    assert eventually(lambda: informer.reflector.stats.list_failures >= 3)
    health = informer.health()
    assert not health.healthy and health.reason == "not synced"
    assert "MalformedObjectError" in health.last_error and server.target in health.last_error
    server.hostile.send_garbage("ListGpus", times=0)
    assert informer.wait_for_sync(WAIT)
    assert eventually(lambda: any("recovered" in r.getMessage() for r in caplog.records))
    # No grpc record at all (its deserializer never sees the bytes), no traceback anywhere.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("grpc")] == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    warnings = nvinformers_records(caplog.records, logging.WARNING)
    assert len(warnings) == 1 and warnings[0].name == "nvinformers.cache.reflector"
    assert "ListGpus" in warnings[0].getMessage()


# ------------------------------------------------------------------- 6. flapping streams


def test_flapping_streams_are_one_outage_in_the_logs(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10, case 6: UNAVAILABLE every ~2 s gave a WARNING and an INFO per break. A recovery
    that does not last (``outage_grace``) is not a recovery in the logs."""
    caplog.set_level(logging.INFO, logger="nvinformers")
    informer = run_informer(clientset, outage_grace=3.0)
    assert informer.wait_for_sync(WAIT)
    assert server.wait_for_watches(1, WAIT)
    caplog.clear()
    server.hostile.flap(2)
    server.end_watches()  # the next watch flaps
    restarts = informer.reflector.stats.watch_restarts
    assert eventually(lambda: restarts.get("unavailable", 0) >= 3, 3 * WAIT)
    logged = nvinformers_records(caplog.records, logging.INFO)
    assert [r.levelname for r in logged] == ["WARNING"], [r.getMessage() for r in logged]
    server.hostile.flap(None)
    assert eventually(lambda: any("recovered" in r.getMessage() for r in caplog.records), WAIT)
    logged = nvinformers_records(caplog.records, logging.INFO)
    assert [r.levelname for r in logged] == ["WARNING", "INFO"], [r.getMessage() for r in logged]
    assert informer.health().healthy


def test_revisions_that_go_backwards_are_repaired_by_the_next_relist_and_said_so(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server whose revisions go backwards (as after a restart that lost its store) makes
    every event look older than the cache: those are dropped and counted. A relist asks for a
    state at least as new as anything seen, so an older list reveals it: WARNING, and the cache
    takes the list as it is."""
    caplog.set_level(logging.WARNING, logger="nvinformers")
    server.hostile.set_revisions(BACKWARD_REVISIONS)
    informer = run_informer(clientset)
    assert informer.wait_for_sync(WAIT)
    assert server.wait_for_watches(1, WAIT)
    changed = server.set_ready("gpu-0", False)
    assert eventually(lambda: informer.stale_events_dropped == 1)
    assert caplog.records == []
    server.end_watches(grpc.StatusCode.OUT_OF_RANGE)  # the informer relists
    want = BACKWARD_REVISIONS.encode(int(changed.metadata.resource_version))

    def cached() -> str | None:
        obj = informer.get_indexer().get_by_key("gpu-0")
        return None if obj is None else obj.metadata.resource_version

    assert eventually(lambda: cached() == want)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "revisions went backwards" in warnings[0]
