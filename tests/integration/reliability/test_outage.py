"""Outage behaviour: a server down for 60 s costs a handful of jittered retries, one resync when it
returns, one log line per state change, and a health check that tells the truth.

The 60-second outages are simulated: the informer runs on a :class:`FakeClock` over a scripted
list-watch source, and the test steps the clock through each backoff wait, so every attempt's time
is exact and the test takes a fraction of a second. Then a real FakeServer outage (a second or so
of real time, with a fast backoff) checks the same promises end to end, including the clientset's
own logging.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU, GPUList, ListMeta
from nvinformers.cache import SharedIndexInformer
from nvinformers.cache._reflector_health import RECOVERED_AFTER
from nvinformers.clientset import Clientset
from nvinformers.clock import FakeClock
from nvinformers.errors import ServiceUnavailableError
from nvinformers.options import ListOptions
from nvinformers.testing import FakeServer
from nvinformers.watch import Event, EventType
from tests.integration.reliability.conftest import (
    WAIT,
    RunInformer,
    cache_matches_server,
    nvinformers_records,
)
from tests.unit.cache.recording import RecordingHandler
from tests.unit.cache.scripted import ScriptedWatch, eventually, gpu

OUTAGE = 60.0
#: client-go's reflector backoff: 800 ms doubling to 30 s, each delay drawn from [d, 2d).
INITIAL, CAP = 0.8, 30.0
REFLECTOR_THREAD = "outage-informer"

#: (kind, fake time, succeeded) of each list or watch attempt.
Attempt = tuple[str, float, bool]
Attempts = list[Attempt]


def unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "the Device API at unix:///run/test.sock is unavailable (the socket may be missing or "
        "the server down)",
        grpc_code="UNAVAILABLE",
    )


class RecordingClock(FakeClock):
    """A FakeClock that remembers every wait: (thread name, timeout, fake time it began)."""

    def __init__(self) -> None:
        super().__init__()
        self._log_lock = threading.Lock()
        self._waits: list[tuple[str, float | None, float]] = []

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        with self._log_lock:
            self._waits.append((threading.current_thread().name, timeout, self.now()))
        return super().wait(event, timeout)

    def backoff_waits(self) -> list[tuple[float, float]]:
        """(timeout, start) of the timed waits of the reflector's thread: its backoff delays."""
        with self._log_lock:
            return [(t, t0) for name, t, t0 in self._waits if name == REFLECTOR_THREAD and t]


@dataclass
class OutageSource:
    """A list-watch source that refuses every call while ``down`` and records each attempt."""

    clock: FakeClock
    objects: list[GPU]
    revision: str = "10"
    down: bool = False
    attempts: Attempts = field(default_factory=list)
    watches: list[ScriptedWatch] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def _attempt(self, kind: str) -> None:
        down = self.down
        with self._cond:
            self.attempts.append((kind, self.clock.now(), not down))
            self._cond.notify_all()
        if down:
            raise unavailable()

    def list(self, options: ListOptions) -> GPUList:
        self._attempt("list")
        return GPUList(items=tuple(self.objects), metadata=ListMeta(resource_version=self.revision))

    def watch(self, options: ListOptions) -> ScriptedWatch:
        self._attempt("watch")
        w = ScriptedWatch(options)
        with self._cond:
            self.watches.append(w)
            self._cond.notify_all()
        return w

    def count(self) -> int:
        with self._cond:
            return len(self.attempts)

    def since(self, index: int) -> Attempts:
        with self._cond:
            return self.attempts[index:]

    def watch_at(self, index: int) -> ScriptedWatch:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.watches) > index, WAIT)
            return self.watches[index]


@dataclass
class Rig:
    clock: RecordingClock
    source: OutageSource
    informer: SharedIndexInformer[GPU]
    registry: CollectorRegistry
    thread: threading.Thread

    def healthy_metric(self) -> float | None:
        return self.registry.get_sample_value("nvinformers_informer_healthy", {"informer": "gpus"})


@pytest.fixture
def rig() -> Iterator[Rig]:
    clock = RecordingClock()
    source = OutageSource(clock, [gpu(f"gpu-{i}", i + 1) for i in range(4)])
    registry = CollectorRegistry()
    informer: SharedIndexInformer[GPU] = SharedIndexInformer(
        source,
        name="gpus",
        clock=clock,
        rng=random.Random(2024),
        watch_inactivity_timeout=None,  # the supervisor then waits on the stop event only
        registry=registry,
    )
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), name=REFLECTOR_THREAD)
    yield Rig(clock, source, informer, registry, thread)
    stop.set()
    if thread.ident is not None:
        thread.join(WAIT)
        assert not thread.is_alive()


def grew(count: Callable[[], int], than: int) -> Callable[[], bool]:
    return lambda: count() > than


def drive_outage(rig: Rig, start: float, seconds: float, during: Callable[[], None]) -> None:
    """Step the fake clock through the reflector's backoff waits; the source comes back
    ``seconds`` after ``start``; returns after the first attempt made once it is back.

    Each step waits (in real time) until the reflector is blocked in its next backoff wait —
    recorded by the clock, and counted as a waiter next to the watch supervisor — then moves
    fake time exactly to that wait's deadline, so each attempt happens at a known fake time.
    ``during`` runs after every failed attempt.
    """
    clock, source = rig.clock, rig.source
    end = start + seconds
    for handled in itertools.count():
        assert eventually(grew(lambda: len(clock.backoff_waits()), handled)), "no backoff wait"
        assert clock.block_until_waiters(2, timeout=WAIT), "the reflector is not on the clock"
        delay, began = clock.backoff_waits()[handled]
        attempts = source.count()
        deadline = began + delay
        if deadline >= end:
            source.down = False  # back before the reflector's next attempt
        clock.step(deadline - clock.now())
        assert eventually(grew(source.count, attempts)), "no attempt after a wait"
        if deadline >= end:
            return
        during()


def recovered_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]


def cached_rv(informer: SharedIndexInformer[GPU], key: str) -> str | None:
    obj = informer.get_indexer().get_by_key(key)
    return None if obj is None else obj.metadata.resource_version


def check_jittered_backoff(times: list[float]) -> None:
    """Attempt ``i+1`` follows attempt ``i`` after a delay in ``[d, 2d)``, ``d`` = 0.8 s doubling
    to 30 s (client-go's reflector backoff with jitter 1.0)."""
    for i, (before, after) in enumerate(itertools.pairwise(times)):
        base = min(INITIAL * 2**i, CAP)
        assert base <= after - before < 2 * base, (i, after - before, base, times)


def attempts_within(seconds: float) -> set[int]:
    """How many attempts fit in ``seconds`` after the first one, with the shortest and with the
    longest jitter: the only possible counts."""
    counts = set()
    for factor in (1.0, 1.999):
        t, n, i = 0.0, 1, 0
        while True:
            t += min(INITIAL * 2**i, CAP) * factor
            i += 1
            if t >= seconds:
                break
            n += 1
        counts.add(n)
    return set(range(min(counts), max(counts) + 1))


def _synced_under_a_watch(rig: Rig) -> ScriptedWatch:
    """Start the informer; return its first watch once an event on it has been applied."""
    rig.thread.start()
    assert rig.informer.wait_for_sync(WAIT)
    first = rig.source.watch_at(0)
    first.push(Event(EventType.MODIFIED, gpu("gpu-0", 11)))
    assert eventually(lambda: rig.informer.last_sync_resource_version() == "11")
    return first


def test_a_sixty_second_outage_under_a_watch_costs_a_few_jittered_retries_and_one_rewatch(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    clock, source, informer = rig.clock, rig.source, rig.informer
    first = _synced_under_a_watch(rig)
    assert informer.health().healthy
    assert rig.healthy_metric() == 1.0

    caplog.clear()
    start, before = clock.now(), source.count()
    source.down = True
    first.fail(unavailable())  # the stream breaks: the server went away
    seen: list[tuple[float, str, float | None]] = []

    def during() -> None:
        health = informer.health()
        seen.append((clock.now() - start, health.reason, health.seconds_down))
        if clock.now() - start > 5.0:  # past the informer's outage grace
            assert not health.healthy and health.reason.startswith("no working watch for")
            assert "ServiceUnavailableError" in health.last_error
            assert health.seconds_down == pytest.approx(clock.now() - start)
            assert rig.healthy_metric() == 0.0

    drive_outage(rig, start, OUTAGE, during)

    attempts = source.since(before)
    failed = [t - start for kind, t, ok in attempts if not ok]
    back = [(kind, t - start) for kind, t, ok in attempts if ok]
    # Only watches: a broken stream is re-opened from the last revision, never relisted.
    print(f"watch outage: failed attempts at {[round(t, 2) for t in failed]} s, back at {back}")
    assert {kind for kind, _, _ in attempts} == {"watch"}
    assert failed[0] == 0.0  # the first re-watch is immediate
    check_jittered_backoff([*failed, back[0][1]])
    assert len(failed) in attempts_within(OUTAGE)  # 6 or 7 attempts in a minute, not a storm
    assert all(t < OUTAGE for t in failed)
    assert len(back) == 1 and back[0][1] >= OUTAGE
    assert len(seen) == len(failed) - 1 and seen[-1][0] > 30.0

    # One resync: the re-watch resumes from the last revision; nothing else is asked.
    resumed = source.watch_at(len(source.watches) - 1)
    assert resumed.options.resource_version == "11"
    resumed.push(Event(EventType.MODIFIED, gpu("gpu-1", 12)))
    assert eventually(lambda: cached_rv(informer, "gpu-1") == "12")
    assert source.count() == before + len(failed) + 1
    assert informer.health().healthy and rig.healthy_metric() == 1.0

    # One log line when the outage began, one when it ended: not one per retry. The recovery
    # is logged once it has held for the outage grace (5 s): a flapping server's is not.
    assert not recovered_lines(caplog)
    clock.step(5.0)
    assert eventually(lambda: bool(recovered_lines(caplog)))
    warnings = nvinformers_records(caplog.records, logging.WARNING)
    assert [r.getMessage()[:26] for r in warnings] == ["gpus: list/watch failing: "]
    recovered = recovered_lines(caplog)
    assert len(recovered) == 1
    # The broken stream counts as the first failure; the recovery is when the server was seen back.
    found = re.search(r"recovered after (\d+) failed attempts over (\d+\.\d) s", recovered[0])
    assert found, recovered[0]
    assert int(found[1]) == len(failed) + 1
    assert float(found[2]) == pytest.approx(back[0][1], abs=0.05)


def test_a_sixty_second_outage_at_start_up_retries_the_list_with_backoff(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    clock, source, informer = rig.clock, rig.source, rig.informer
    source.down = True
    start = clock.now()
    rig.thread.start()
    assert eventually(lambda: source.count() == 1)

    def during() -> None:
        health = informer.health()
        assert not health.healthy and health.reason == "not synced"
        assert not informer.has_synced()

    drive_outage(rig, start, OUTAGE, during)
    assert informer.wait_for_sync(WAIT)
    source.watch_at(0)
    attempts = source.since(0)
    failed = [t - start for kind, t, ok in attempts if not ok]
    print(f"start-up outage: failed lists at {[round(t, 2) for t in failed]} s")
    assert {kind for kind, _, ok in attempts if not ok} == {"list"}
    check_jittered_backoff(failed)
    assert len(failed) in attempts_within(OUTAGE)
    # One list when the server is back, then one watch from its revision.
    back = [(kind, t - start) for kind, t, ok in attempts if ok]
    assert [kind for kind, _ in back] == ["list", "watch"]
    assert back[0][1] >= OUTAGE
    assert source.watches[0].options.resource_version == "10"
    # Synced, but the watch works only once it delivers or stays open a second.
    assert informer.health().reason.startswith("no working watch for")
    clock.step(RECOVERED_AFTER)
    assert informer.health().healthy
    assert len(informer.get_indexer().list()) == 4
    clock.step(5.0)  # the recovery holds for the outage grace: logged
    assert eventually(lambda: bool(recovered_lines(caplog)))
    warnings = nvinformers_records(caplog.records, logging.WARNING)
    assert len(warnings) == 1 and "list/watch failing" in warnings[0].getMessage()
    assert len(recovered_lines(caplog)) == 1


def _recover_idly(rig: Rig) -> None:
    """An outage of 10 s under a watch; the re-watch then works but delivers nothing."""
    clock, source, informer = rig.clock, rig.source, rig.informer
    first = _synced_under_a_watch(rig)
    start = clock.now()
    source.down = True
    first.fail(unavailable())
    drive_outage(rig, start, 10.0, lambda: None)
    source.watch_at(len(source.watches) - 1)  # re-watch open and healthy, nothing to say
    assert eventually(lambda: informer.reflector.watch_open_for() is not None)
    clock.step(30.0)


def test_health_reports_the_recovery_of_an_idle_watch(rig: Rig) -> None:
    """After an outage, a re-watch that works but has nothing to say (an idle node, no bookmark
    yet) counts as a recovery once it has stayed open for a second.
    (Regression test: issue 6 found health stuck at "no working watch" until the first event.)"""
    _recover_idly(rig)
    assert eventually(lambda: rig.informer.health().healthy), rig.informer.health()
    assert rig.healthy_metric() == 1.0


def test_the_recovery_of_an_idle_watch_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    _recover_idly(rig)
    assert eventually(
        lambda: any("recovered" in r.getMessage() for r in caplog.records), timeout=2.0
    )
    assert not rig.informer.reflector.health.in_outage


@pytest.mark.parametrize("compacted", [False, True], ids=["history-kept", "history-compacted"])
def test_a_real_outage_logs_once_per_state_change_and_resyncs_once(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
    compacted: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    handler = RecordingHandler()
    informer = run_informer(clientset, (handler,), outage_grace=0.2)
    assert informer.wait_for_sync(WAIT)
    server.set_ready("gpu-0", False)  # one event, so the outage does not look like a short watch
    assert eventually(lambda: cache_matches_server(informer, server))
    caplog.clear()
    attempts = informer.reflector.stats.watch_attempts

    server.stop()
    gone = server.delete_gpu("gpu-3")  # changes while down: replayed or relisted on return
    server.set_ready("gpu-5", False)
    if compacted:
        server.compact()
    # Many retries (fast backoff), an unhealthy report, and still a single warning.
    assert eventually(lambda: informer.reflector.stats.watch_attempts - attempts >= 10)
    assert eventually(lambda: not informer.health().healthy)
    assert informer.health().reason.startswith("no working watch")
    during = nvinformers_records(caplog.records, logging.WARNING)
    assert [r.name for r in during] == ["nvinformers.cache.reflector"], during

    calls = server.calls
    server.start()
    assert eventually(lambda: cache_matches_server(informer, server))
    assert eventually(lambda: informer.health().healthy)
    assert server.wait_for_watches(1, WAIT)
    after = server.calls
    resync = {m: after[m] - calls[m] for m in ("ListGpus", "WatchGpus")}
    if compacted:  # the re-watch is refused (too old), one relist, one watch from it
        assert resync == {"ListGpus": 1, "WatchGpus": 2}
        # Handlers hear of a change after the cache holds it (their own thread): wait for it.
        assert eventually(
            lambda: any(e.startswith("delete tombstone:gpu-3@") for e in handler.snapshot())
        )
    else:  # one re-watch, replaying what was missed
        assert resync == {"ListGpus": 0, "WatchGpus": 1}
        deleted = f"delete gpu-3@{gone.metadata.resource_version}"
        assert eventually(lambda: deleted in handler.snapshot())
    assert eventually(lambda: bool(recovered_lines(caplog)))  # after the 0.2 s grace
    warnings = nvinformers_records(caplog.records, logging.WARNING)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert len(recovered_lines(caplog)) == 1
