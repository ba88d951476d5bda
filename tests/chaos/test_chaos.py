"""The chaos test: an informer, two handlers and a workqueue-driven controller against a FakeServer
under churn and random faults; once the faults stop, every promise of the cache is checked.

Replay a run: ``NVINFORMERS_CHAOS_SEED=<seed> make chaos`` (the seed is printed first, and is in
every failure message). The seed fixes the schedule of writes and faults, not the thread
interleaving, so a replay reproduces the same storm, not the same microsecond. Shorten or lengthen
the fault phase with ``NVINFORMERS_CHAOS_DURATION`` (seconds, default 40).

What is checked, after the faults and the churn stop (each wait bounded):

1. the informer's store equals the server's state exactly (names and resource versions);
2. every handler's view, rebuilt from its notifications alone, equals it too, and no handler ever
   saw an object's resource version go backwards, an update whose ``old`` was not the state last
   delivered, a duplicate add, or a delete of an unknown key;
3. every object deleted on the server that a handler had seen reached that handler's
   ``on_delete`` (directly or as ``DeletedFinalStateUnknown``); objects a handler never saw must
   have lived and died inside one *blind window* — from the last revision the client had
   received when a fault episode began to the moment it was watching again after the repair,
   such as objects created and deleted while the server was down (``tests/chaos/workload.py``);
4. the controller's last reconcile of every key read the key's final state from the lister (its
   final resource version, or absent for deleted keys), although 1% of reconciles fail;
5. the SDK made no write RPC; the informer reports itself healthy; every thread it started ended.

Time is scaled down: the informer's backoff is 10-50 ms instead of 0.8-30 s, and its watches
time out after 3-6 s instead of 5-10 minutes, so a 40 s run holds a few dozen fault episodes.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import BackoffConfig, SharedIndexInformer
from nvinformers.clientset import Config, new_for_config
from nvinformers.controller import Controller
from nvinformers.informers import new_gpu_informer
from nvinformers.listers import GPULister
from nvinformers.testing import FakeServer
from tests.chaos.workload import (
    EPISODES,
    Churn,
    FaultInjector,
    Ledger,
    ReconcileRecorder,
    ViewChecker,
    server_state,
    store_state,
)
from tests.unit.cache.scripted import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

SEED_ENV = "NVINFORMERS_CHAOS_SEED"
DURATION_ENV = "NVINFORMERS_CHAOS_DURATION"
DEFAULT_DURATION = 40.0
#: Upper bound of every wait for convergence; reached only when the test fails.
CONVERGE = 30.0
FAST_BACKOFF = BackoffConfig(initial=0.01, cap=0.05)
READ_ONLY_RPCS = frozenset({"GetGpu", "ListGpus", "WatchGpus"})


def chaos_seed() -> int:
    text = os.environ.get(SEED_ENV, "")
    return int(text) if text else random.SystemRandom().randrange(2**32)


def chaos_duration() -> float:
    text = os.environ.get(DURATION_ENV, "")
    return float(text) if text else DEFAULT_DURATION


class CaughtUp:
    """A probe for the fault injector: has the informer resumed watching after a repair?

    Every episode ends its client's stream (or stops the server) when it repairs the fault, at
    revision ``rv``. The informer has resumed once a watch started after the repair delivers an
    event, which takes two steps: first the reflector holds a revision newer than ``rv`` (only a
    list or watch started after the repair can carry one, and the reflector reads the old stream
    to its end before starting either); then it receives one more watch event. A list alone is
    not enough: the watch after it may fail again (injected failures), and whatever lives and
    dies before the next list is never seen.
    """

    def __init__(self, informer: SharedIndexInformer[GPU]) -> None:
        self._informer = informer
        self._rv = -1
        self._events: int | None = None

    def _events_received(self) -> int:
        return sum(dict(self._informer.reflector.stats.events).values())

    def __call__(self, rv: int) -> bool:
        if rv != self._rv:  # a new episode
            self._rv, self._events = rv, None
        if self._events is None:
            seen = self._informer.last_sync_resource_version()
            if seen.isdigit() and int(seen) > rv:
                self._events = self._events_received()
            return False
        return self._events_received() > self._events


def no_library_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("nvinformers-")]


def diff(got: dict[str, int], want: dict[str, int]) -> str:
    missing = sorted(set(want) - set(got))[:10]
    extra = sorted(set(got) - set(want))[:10]
    stale = sorted((k, got[k], want[k]) for k in set(got) & set(want) if got[k] != want[k])[:10]
    return f"missing {missing}, extra {extra}, (key, got rv, want rv) {stale[:10]}"


class Chaos:
    """One chaos run: the server, the client side, the workload, and the checks."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.tag = f"[chaos seed={seed}]"
        self.server = FakeServer(
            gpus=40, flip_interval=None, bookmark_interval=1.0, compaction_interval=None, seed=seed
        ).start()
        self.clientset = new_for_config(
            Config(target=self.server.target, metrics_registry=CollectorRegistry())
        )
        self.informer = new_gpu_informer(
            self.clientset,
            backoff=FAST_BACKOFF,
            min_watch_timeout=3.0,
            watch_inactivity_timeout=10.0,
            rng=random.Random(seed + 1),
            registry=CollectorRegistry(),
        )
        self.checkers = [ViewChecker("first"), ViewChecker("second")]
        self.registrations = [
            self.informer.add_event_handler(c, name=c.name) for c in self.checkers
        ]
        self.recorder = ReconcileRecorder(
            GPULister(self.informer.get_indexer()), random.Random(seed + 2), error_rate=0.01
        )
        self.controller = Controller(
            "chaos", self.recorder, max_concurrent_reconciles=2, registry=CollectorRegistry()
        )
        self.controller.watch(self.informer)
        self.ledger = Ledger()
        self.churn = Churn(self.server, random.Random(seed + 3), self.ledger, rate=300.0)
        self.injector = FaultInjector(
            self.server,
            random.Random(seed + 4),
            ledger=self.ledger,
            client_revision=self.client_revision,
            caught_up=CaughtUp(self.informer),
        )
        self.stop_informer = threading.Event()
        self.stop_churn = threading.Event()
        self.stop_faults = threading.Event()
        self.threads = {
            "informer": threading.Thread(
                target=self.informer.run, args=(self.stop_informer,), name="chaos-informer"
            ),
            "churn": threading.Thread(
                target=self.churn.run, args=(self.stop_churn,), name="chaos-churn"
            ),
            "faults": threading.Thread(
                target=self.injector.run, args=(self.stop_faults,), name="chaos-faults"
            ),
        }
        self.max_backlog = 0
        self.delivered: Counter[str] = Counter()

    def client_revision(self) -> int:
        seen = self.informer.last_sync_resource_version()
        return int(seen) if seen.isdigit() else 0

    def log(self) -> str:
        return "\n".join(self.injector.log)

    # -- phases -----------------------------------------------------------------------------

    def run_faults(self, duration: float) -> None:
        """Start everything, churn and inject faults for ``duration`` s, then stop both."""
        self.threads["informer"].start()
        assert self.informer.wait_for_sync(CONVERGE), f"{self.tag} the informer never synced"
        self.controller.start()
        assert self.controller.wait_for_started(CONVERGE), self.controller.status()
        self.threads["churn"].start()
        self.threads["faults"].start()
        deadline = time.monotonic() + duration
        tick = threading.Event()
        while time.monotonic() < deadline and self.threads["faults"].is_alive():
            self.max_backlog = max([self.max_backlog, *(r.backlog for r in self.registrations)])
            tick.wait(0.1)
        self.stop_faults.set()
        self.threads["faults"].join(CONVERGE)  # the episode in progress is finished and repaired
        self.stop_churn.set()
        self.threads["churn"].join(CONVERGE)
        assert not self.threads["faults"].is_alive() and not self.threads["churn"].is_alive()
        assert not self.injector.failures, f"{self.tag} {self.injector.failures}\n{self.log()}"

    def shut_down(self) -> None:
        self.stop_faults.set()
        self.stop_churn.set()
        for name in ("faults", "churn"):
            if self.threads[name].is_alive():
                self.threads[name].join(CONVERGE)
        self.controller.stop()
        self.stop_informer.set()
        if self.threads["informer"].is_alive():
            self.threads["informer"].join(CONVERGE)
        self.clientset.close()
        self.server.stop()
        assert not any(t.is_alive() for t in self.threads.values())

    # -- checks -----------------------------------------------------------------------------

    def check_store(self, final: dict[str, int]) -> None:
        def converged() -> bool:
            return store_state(self.informer.get_indexer().list()) == final

        assert eventually(converged, CONVERGE), (
            f"{self.tag} the store differs from the server: "
            f"{diff(store_state(self.informer.get_indexer().list()), final)}\n{self.log()}"
        )

    def check_views(self, final: dict[str, int]) -> None:
        for checker in self.checkers:

            def converged(checker: ViewChecker = checker) -> bool:
                return checker.read()[0] == final

            assert eventually(converged, CONVERGE), (
                f"{self.tag} handler {checker.name}'s view differs: "
                f"{diff(checker.read()[0], final)}"
            )
            assert checker.violation_count == 0, f"{self.tag} {checker.violations}"

    def check_deletes(self) -> None:
        deleted = [life for life in self.ledger.snapshot() if life.deleted_rv is not None]
        for checker in self.checkers:
            _, ever_added, deletes = checker.read()
            counts: Counter[str] = Counter()
            for life in deleted:
                if life.name in ever_added:
                    got = deletes.get(life.name)
                    assert got, f"{self.tag} {checker.name} never got the delete of {life}"
                    counts["tombstone" if got[-1].tombstone else "direct"] += 1
                else:
                    assert any(w.covers(life) for w in self.injector.windows), (
                        f"{self.tag} {checker.name} never saw {life}, which did not live inside "
                        f"one blind window of {self.injector.windows}\n{self.log()}"
                    )
                    counts["unseen, inside a blind window"] += 1
            self.delivered = counts  # the same for every handler

    def check_reconciles(self, final: dict[str, int]) -> None:
        expected: dict[str, int | None] = {
            key: final.get(key) for key in self.checkers[0].read()[1]
        }

        def stale() -> dict[str, tuple[int | str | None, int | None]]:
            last = self.recorder.snapshot()
            return {
                key: (last.get(key, "never"), rv)
                for key, rv in expected.items()
                if last.get(key, -1) != rv
            }

        assert eventually(lambda: not stale(), CONVERGE), (
            f"{self.tag} keys whose last reconcile missed the final state "
            f"(last seen, final): {stale()}"
        )

    def check_read_only_and_healthy(self) -> None:
        writes = {m: n for m, n in self.server.calls.items() if m not in READ_ONLY_RPCS}
        assert writes == {}, f"{self.tag} the SDK made write RPCs: {writes}"
        assert eventually(lambda: self.informer.health().healthy, CONVERGE), (
            f"{self.tag} {self.informer.health()}"
        )
        episodes = self.injector.episodes
        if sum(episodes.values()) >= len(EPISODES):
            assert set(episodes) == set(EPISODES), f"{self.tag} {episodes}"

    def summary(self, elapsed: float) -> str:
        stats = self.informer.reflector.stats
        return (
            f"chaos seed={self.seed}: {elapsed:.1f}s; writes {dict(self.churn.ops)}; "
            f"{sum(self.injector.episodes.values())} episodes {dict(self.injector.episodes)}\n"
            f"  deletes {dict(self.delivered)}; lists {stats.lists}; watch restarts "
            f"{stats.watch_restarts}; events {stats.events}; stale dropped "
            f"{self.informer.stale_events_dropped}; max handler backlog {self.max_backlog}; "
            f"reconciles {self.recorder.reconciles} ({self.recorder.errors} failed); "
            f"RPCs {dict(self.server.calls)}"
        )


def test_the_cache_keeps_its_promises_under_churn_and_faults() -> None:
    seed, duration = chaos_seed(), chaos_duration()
    print(f"\nchaos seed={seed} duration={duration:.0f}s (replay: {SEED_ENV}={seed} make chaos)")
    started = time.monotonic()
    chaos = Chaos(seed)
    try:
        chaos.run_faults(duration)
        final = server_state(chaos.server)
        chaos.check_store(final)
        chaos.check_views(final)
        chaos.check_deletes()
        chaos.check_reconciles(final)
        chaos.check_read_only_and_healthy()
        print(chaos.summary(time.monotonic() - started))
    finally:
        chaos.shut_down()
    assert eventually(no_library_threads), [t.name for t in threading.enumerate()]
