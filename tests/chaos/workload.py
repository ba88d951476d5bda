"""The chaos workload: churn on a FakeServer, random faults, and observers that check what an
informer promises. Shared by ``tests/chaos/test_chaos.py`` (bounded, in CI) and
``benchmarks/soak.py`` (30 minutes, by hand).

* :class:`Churn` writes to the server's storage directly (in process, no RPC): creates, Ready
  flips and deletes at a target rate, keeping the population between two bounds. Every create and
  delete is written to a :class:`Ledger` with its revision.
* :class:`FaultInjector` runs *episodes* one after the other, each a fault or a small combination
  of faults followed by a repair, drawn from a seeded generator: streams ended with OK /
  UNAVAILABLE / INTERNAL / OUT_OF_RANGE, compaction, dropped events, failing lists and watches,
  malformed events, full stop and restart of the server (with objects created and deleted while
  it is down), and periods in which the server ignores the requested revision. Each episode is a
  *blind window* of revisions in which the client may legitimately miss whole object lifetimes;
  with a ``caught_up`` probe, the injector waits after each episode until the informer has
  provably resumed after the repair (it holds a revision only a list or watch started after the
  repair can carry), so windows never overlap and the checks stay exact.
* :class:`ViewChecker` is an event handler that replays its notifications into its own view of
  the world and records every violation of per-object order: an update whose ``old`` is not the
  state last delivered, a resource version going backwards, an add for a key already present, a
  delete of an unknown key, a tombstone that is not the last delivered state.
* :class:`ReconcileRecorder` is a level-based reconciler that records, per key, the resource
  version its last reconcile read from the lister (None: absent).

Nothing here sleeps to hope: pacing waits on the stop event, catching up waits on a condition with
a deadline.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.cache import DeletedFinalStateUnknown
from nvinformers.controller import Request, Result
from nvinformers.errors import NotFoundError
from nvinformers.listers import GPULister
from nvinformers.testing import FakeServer

__all__ = [
    "Lifecycle",
    "Ledger",
    "Churn",
    "BlindWindow",
    "FaultInjector",
    "ViewChecker",
    "ReconcileRecorder",
    "EPISODES",
    "server_state",
    "store_state",
]

_READY = "Ready"
#: At most this many violations are kept per checker (the count is exact).
_MAX_VIOLATIONS = 50


def _rv(obj: Any) -> int:
    return int(obj.metadata.resource_version)


def server_state(server: FakeServer) -> dict[str, int]:
    """``{name: resource version}`` of every GPU on the server (a consistent snapshot)."""
    return {g.metadata.name: _rv(g) for g in server.list_gpus().items}


def store_state(objects: list[GPU]) -> dict[str, int]:
    """``{name: resource version}`` of cached GPUs (from ``indexer.list()``)."""
    return {g.metadata.name: _rv(g) for g in objects}


# ------------------------------------------------------------------------------------ ledger


@dataclass
class Lifecycle:
    """One object's life on the server: the revisions of its create and (if any) its delete."""

    name: str
    created_rv: int
    deleted_rv: int | None = None


class Ledger:
    """Every create and delete the workload made, with revisions. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, Lifecycle] = {}

    def created(self, name: str, rv: int) -> None:
        with self._lock:
            self._objects[name] = Lifecycle(name, rv)

    def deleted(self, name: str, rv: int) -> None:
        with self._lock:
            self._objects[name].deleted_rv = rv

    def snapshot(self) -> list[Lifecycle]:
        with self._lock:
            return [Lifecycle(x.name, x.created_rv, x.deleted_rv) for x in self._objects.values()]


# ------------------------------------------------------------------------------------- churn


def _new_gpu(name: str, rng: random.Random) -> GPU:
    return GPU.new(
        name,
        uuid=f"GPU-{rng.getrandbits(128):032x}",
        labels={"chaos.nvinformers.io/wave": str(rng.randrange(4))},
        conditions=[Condition(type=_READY, status=meta.CONDITION_TRUE, reason="DriverReady")],
    )


class Churn:
    """Creates, Ready flips and deletes on ``server`` at ``rate`` writes per second.

    Writes go to the server's storage in process, so they also happen while the server is
    stopped (objects created and deleted during an outage) and never count as RPCs.

    Args:
        server: the fake server (its inventory must be Ready GPUs, as FakeServer creates them).
        rng: drives every choice.
        ledger: receives every create and delete.
        rate: writes per second (paced in 10 ms ticks).
        population: keep the number of GPUs between these bounds.
        weights: relative weights of (flip, create, delete) inside the bounds.

    Thread-safety: :meth:`run` is the only writer of its state; counters are read after it ends.
    """

    _TICK = 0.01

    def __init__(
        self,
        server: FakeServer,
        rng: random.Random,
        ledger: Ledger,
        *,
        rate: float = 300.0,
        population: tuple[int, int] = (30, 90),
        weights: tuple[float, float, float] = (0.5, 0.25, 0.25),
    ) -> None:
        self._server = server
        self._rng = rng
        self._ledger = ledger
        self._rate = rate
        self._low, self._high = population
        self._weights = weights
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._ready: dict[str, bool] = {}
        self._next_id = 0
        self.ops: Counter[str] = Counter()
        for gpu in server.list_gpus().items:
            name = gpu.metadata.name
            ledger.created(name, _rv(gpu))
            self._track(name, meta.is_status_condition_true(gpu.status.conditions, _READY))

    def _track(self, name: str, ready: bool) -> None:
        self._index[name] = len(self._names)
        self._names.append(name)
        self._ready[name] = ready

    def _untrack(self, name: str) -> None:
        i = self._index.pop(name)
        last = self._names.pop()
        if last != name:
            self._names[i] = last
            self._index[last] = i
        del self._ready[name]

    def step(self) -> None:
        """Make one write."""
        rng = self._rng
        n = len(self._names)
        if n <= self._low:
            kind = "create"
        elif n >= self._high:
            kind = "delete"
        else:
            kind = rng.choices(("flip", "create", "delete"), self._weights)[0]
        server = self._server
        if kind == "create":
            self._next_id += 1
            name = f"gpu-c{self._next_id:07d}"
            created = server.create_gpu(_new_gpu(name, rng))
            self._ledger.created(name, _rv(created))
            self._track(name, True)
        elif kind == "delete":
            name = self._names[rng.randrange(n)]
            gone = server.delete_gpu(name)
            self._ledger.deleted(name, _rv(gone))
            self._untrack(name)
        else:
            name = self._names[rng.randrange(n)]
            ready = not self._ready[name]
            server.set_ready(name, ready)
            self._ready[name] = ready
        self.ops[kind] += 1

    def run(self, stop: threading.Event) -> None:
        """Write at the target rate until ``stop`` is set (the body of the churn thread)."""
        per_tick = self._rate * self._TICK
        budget = 0.0
        next_tick = time.monotonic()
        while not stop.is_set():
            budget += per_tick
            while budget >= 1.0:
                self.step()
                budget -= 1.0
            next_tick += self._TICK
            delay = next_tick - time.monotonic()
            if delay < -1.0:  # far behind (a slow machine): do not try to catch up in a burst
                next_tick = time.monotonic()
            if stop.wait(max(0.0, delay)):
                return


# ------------------------------------------------------------------------------------ faults


@dataclass(frozen=True)
class BlindWindow:
    """Revisions ``[start_rv, end_rv]`` in which an episode could hide changes from a client."""

    episode: str
    start_rv: int
    end_rv: int

    def covers(self, life: Lifecycle) -> bool:
        """True when the whole life of the object (create to delete) lies inside the window."""
        return (
            life.deleted_rv is not None
            and self.start_rv <= life.created_rv
            and life.deleted_rv <= self.end_rv
        )


#: Episode names (see :meth:`FaultInjector.run_episode`).
EPISODES = (
    "end-ok",
    "end-unavailable",
    "end-internal",
    "end-out-of-range",
    "compact",
    "drop",
    "outage",
    "ignore-revision",
    "fail-lists",
    "fail-watches",
    "malformed-event",
)


class FaultInjector:
    """Runs fault episodes against ``server`` until stopped (see the module docstring).

    Args:
        server: the fake server.
        rng: draws the episodes and their parameters.
        pause: seconds of plain churn between two episodes (uniform in the range).
        outage: seconds a stopped server stays down (uniform in the range).
        client_revision: the last revision the client has received; an episode's window starts
            there (a stream ended by the server loses the events it had not sent yet), or at
            the server's revision when None.
        caught_up: given the revision at which an episode's repair was made, returns True once
            the client has provably resumed after it (a list or watch started after the repair);
            None: do not wait (windows then only mark the episode, not the client's catch-up).
        catch_up_timeout: seconds to wait for ``caught_up`` before recording a failure.
        ephemeral: objects to create and delete while the server is down, per outage.
        episodes: the episodes to draw from (default: all of :data:`EPISODES`).

    Attributes:
        windows: one :class:`BlindWindow` per finished episode.
        episodes: how many times each episode ran.
        failures: what went wrong (the client did not catch up in time); empty when all is well.
        ledger: receives the ephemeral objects (set it to the churn's ledger).
        log: one line per episode, for a failure report.
    """

    def __init__(
        self,
        server: FakeServer,
        rng: random.Random,
        *,
        ledger: Ledger,
        pause: tuple[float, float] = (0.2, 1.0),
        outage: tuple[float, float] = (0.3, 1.5),
        client_revision: Callable[[], int] | None = None,
        caught_up: Callable[[int], bool] | None = None,
        catch_up_timeout: float = 20.0,
        ephemeral: int = 2,
        episodes: tuple[str, ...] = EPISODES,
    ) -> None:
        self._server = server
        self._rng = rng
        self.ledger = ledger
        self._pause = pause
        self._outage = outage
        self._client_revision = client_revision
        self._caught_up = caught_up
        self._catch_up_timeout = catch_up_timeout
        self._ephemeral = ephemeral
        self._choices = episodes
        self._next_ephemeral = 0
        self._bag: list[str] = []
        self.windows: list[BlindWindow] = []
        self.episodes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.log: list[str] = []
        self._started = time.monotonic()

    # -- building blocks --------------------------------------------------------------------

    def _uniform(self, bounds: tuple[float, float]) -> float:
        return self._rng.uniform(*bounds)

    def _note(self, text: str) -> None:
        self.log.append(
            f"{time.monotonic() - self._started:7.2f}s rv={self._server.revision} {text}"
        )

    def _end(self, code: grpc.StatusCode | None) -> None:
        n = self._server.end_watches(code, "chaos: stream ended")
        self._note(f"  end_watches({code.name if code else 'OK'}) ended {n}")

    def _force_relist(self, code: grpc.StatusCode) -> None:
        """Make the client relist, whatever it is doing right now.

        Ending the open streams with ``code`` makes a streaming client relist; but a client
        between two watches (re-connecting after an earlier fault) has no stream to end, so its
        next watch call is made to fail with ``code`` too (a client that was streaming relists
        once more when that call fails: harmless).
        """
        self._server.fail_next_watches(1, code, "chaos: forced relist")
        self._end(code)

    def _wait_for_revision(self, rv: int, stop: threading.Event, timeout: float = 5.0) -> None:
        """Wait for the churn to write up to ``rv`` (so that a drop is used up)."""
        deadline = time.monotonic() + timeout
        while self._server.revision < rv and time.monotonic() < deadline:
            if stop.wait(0.005):
                return

    def _outage_now(self, stop: threading.Event, *, compact: bool) -> None:
        server = self._server
        server.stop()
        self._note("  server stopped")
        down_for = self._uniform(self._outage)
        deadline = time.monotonic() + down_for
        # Objects created and deleted while the server is down: a client may never see them.
        for _ in range(self._ephemeral):
            self._next_ephemeral += 1
            name = f"gpu-e{self._next_ephemeral:05d}"
            created = server.create_gpu(_new_gpu(name, self._rng))
            self.ledger.created(name, _rv(created))
            stop.wait(self._rng.uniform(0.0, down_for / (2 * max(1, self._ephemeral))))
            gone = server.delete_gpu(name)
            self.ledger.deleted(name, _rv(gone))
        if compact:
            server.compact()
            self._note("  compacted while down")
        stop.wait(max(0.0, deadline - time.monotonic()))
        server.start()
        self._note(f"  server started after {down_for:.2f}s")

    def run_episode(self, name: str, stop: threading.Event) -> None:
        """Inject the faults of episode ``name`` and their repair; returns once repaired."""
        server, rng = self._server, self._rng
        codes = grpc.StatusCode
        if name == "end-ok":
            self._end(None)
        elif name == "end-unavailable":
            self._end(codes.UNAVAILABLE)
        elif name == "end-internal":
            self._end(codes.INTERNAL)
        elif name == "end-out-of-range":
            self._end(codes.OUT_OF_RANGE)
        elif name == "compact":
            # The re-watch asks for a revision the server no longer has: OUT_OF_RANGE, relist.
            server.compact()
            self._end(rng.choice([None, codes.UNAVAILABLE]))
        elif name == "drop":
            # A server that drops a slow subscriber's events and then ends its stream with
            # RESOURCE_EXHAUSTED (the watch cache's behaviour); the client relists. The drops
            # are used up before the stream ends, so the next watch loses nothing.
            n = rng.randint(1, 30)
            start = server.revision
            server.drop_next_events(n)
            self._note(f"  dropping the next {n} events")
            self._wait_for_revision(start + n, stop)
            stop.wait(rng.uniform(0.0, 0.2))
            self._force_relist(codes.RESOURCE_EXHAUSTED)
        elif name == "outage":
            self._outage_now(stop, compact=rng.random() < 0.5)
        elif name == "ignore-revision":
            # Re-watches start with an ADDED burst and skip the deletes in between: only a
            # relist repairs that (a known gap, see docs/reliability.md), so the episode ends
            # with one. The pause lets a watch call in flight finish opening (with or without
            # the burst) before the relist is forced.
            server.set_ignore_resource_version(True)
            self._note("  server ignores requested revisions")
            for _ in range(rng.randint(1, 3)):
                sub = rng.choice(["end-ok", "end-unavailable", "outage"])
                if sub == "outage":
                    self._outage_now(stop, compact=False)
                else:
                    self._end(None if sub == "end-ok" else codes.UNAVAILABLE)
                stop.wait(rng.uniform(0.05, 0.3))
            server.set_ignore_resource_version(False)
            stop.wait(0.05)
            self._force_relist(codes.INTERNAL)
        elif name == "fail-lists":
            n = rng.randint(1, 3)
            server.fail_next_lists(n, rng.choice([codes.UNAVAILABLE, codes.INTERNAL]))
            self._note(f"  the next {n} lists fail")
            self._force_relist(codes.INTERNAL)
        elif name == "fail-watches":
            n = rng.randint(1, 3)
            server.fail_next_watches(n, rng.choice([codes.UNAVAILABLE, codes.INTERNAL]))
            self._note(f"  the next {n} watches fail")
            self._end(None)
        elif name == "malformed-event":
            # An object without a name: the client abandons the stream and relists.
            sent = server.send_raw_watch_event("ADDED", b"")
            self._note(f"  malformed ADDED sent to {sent} watches")
        else:
            raise ValueError(f"unknown episode {name!r}")

    def _next_episode(self) -> str:
        # Shuffled rounds of every episode: each kind runs once per round, so a run of a few
        # rounds covers them all whatever the seed.
        if not self._bag:
            self._bag = list(self._choices)
            self._rng.shuffle(self._bag)
        return self._bag.pop()

    def _wait_caught_up(self, rv: int, stop: threading.Event) -> bool:
        probe = self._caught_up
        if probe is None:
            return True
        deadline = time.monotonic() + self._catch_up_timeout
        while not probe(rv):
            if time.monotonic() >= deadline:
                return False
            if stop.wait(0.01):
                return probe(rv)
        return True

    def run(self, stop: threading.Event) -> None:
        """Run episodes until ``stop`` is set (the body of the fault thread).

        An episode in progress is always finished and repaired, so the server ends serving,
        honouring revisions, with no pending drop or failure.
        """
        never_stop = threading.Event()
        while not stop.wait(self._uniform(self._pause)):
            name = self._next_episode()
            self.episodes[name] += 1
            start = self._server.revision
            if self._client_revision is not None:
                start = min(start, self._client_revision())
            self._note(f"episode {name}")
            self.run_episode(name, never_stop)
            repaired = self._server.revision
            if not self._wait_caught_up(repaired, never_stop):
                self.failures.append(
                    f"the client did not catch up with revision {repaired} within "
                    f"{self._catch_up_timeout:.0f} s after episode {name!r}"
                )
                self._note("  client did not catch up")
                return
            self.windows.append(BlindWindow(name, start, self._server.revision))


# ------------------------------------------------------------------------------------ checks


@dataclass
class _Delete:
    rv: int
    tombstone: bool


@dataclass
class ViewChecker:
    """An event handler that rebuilds the world from its notifications and checks their order.

    Attributes:
        view: ``{key: resource version}`` as the notifications describe it.
        ever_added: every key that was ever added.
        deletes: the deletes delivered, per key.
        violations: what broke per-object order (the first ``_MAX_VIOLATIONS``).
        violation_count: how many violations in all.
        notifications: how many notifications arrived.

    Thread-safety: the informer calls it from one handler thread; readers use :meth:`read`.
    """

    name: str
    view: dict[str, int] = field(default_factory=dict)
    ever_added: set[str] = field(default_factory=set)
    deletes: dict[str, list[_Delete]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    notifications: int = 0
    _last: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _violation(self, text: str) -> None:
        self.violation_count += 1
        if len(self.violations) < _MAX_VIOLATIONS:
            self.violations.append(f"{self.name}: {text}")

    def _advance(self, key: str, rv: int, what: str) -> None:
        last = self._last.get(key)
        if last is not None and rv < last:
            self._violation(f"{what} of {key} went back in time: rv {rv} after rv {last}")
        self._last[key] = rv if last is None else max(last, rv)

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        key, rv = obj.metadata.name, _rv(obj)
        with self._lock:
            self.notifications += 1
            if key in self.view:
                self._violation(f"add of {key}@{rv} while it is present at rv {self.view[key]}")
            self._advance(key, rv, "add")
            self.view[key] = rv
            self.ever_added.add(key)

    def on_update(self, old: Any, new: Any) -> None:
        key, old_rv, new_rv = new.metadata.name, _rv(old), _rv(new)
        with self._lock:
            self.notifications += 1
            current = self.view.get(key)
            if current is None:
                self._violation(f"update of {key}@{new_rv} that was never added")
            elif old_rv != current:
                self._violation(
                    f"update of {key}: old is rv {old_rv}, the last state delivered is rv {current}"
                )
            if new_rv <= old_rv:
                self._violation(f"update of {key} from rv {old_rv} to rv {new_rv}")
            self._advance(key, new_rv, "update")
            self.view[key] = new_rv

    def on_delete(self, obj: Any) -> None:
        tombstone = isinstance(obj, DeletedFinalStateUnknown)
        if tombstone:
            key = obj.key
            rv = _rv(obj.obj) if obj.obj is not None else -1
        else:
            key, rv = obj.metadata.name, _rv(obj)
        with self._lock:
            self.notifications += 1
            current = self.view.pop(key, None)
            if current is None:
                self._violation(f"delete of {key}@{rv}, which is not present")
            elif tombstone and rv != current:
                self._violation(
                    f"tombstone of {key} carries rv {rv}, the last state delivered is rv {current}"
                )
            elif rv < current:
                self._violation(f"delete of {key}@{rv} older than its last state rv {current}")
            self._advance(key, rv, "delete")
            self.deletes.setdefault(key, []).append(_Delete(rv, tombstone))

    def read(self) -> tuple[dict[str, int], set[str], dict[str, list[_Delete]]]:
        """Copies of (view, ever_added, deletes)."""
        with self._lock:
            return (
                dict(self.view),
                set(self.ever_added),
                {k: list(v) for k, v in self.deletes.items()},
            )


class ReconcileRecorder:
    """A level-based reconciler recording what its last reconcile of each key read.

    Args:
        lister: the cache to read.
        rng: decides which reconciles fail (with ``error_rate``), to exercise retries.
        error_rate: probability that a reconcile raises after recording its observation.

    Attributes:
        last: ``{key: resource version read}``, None when the key was absent from the cache.
        reconciles: how many reconciles ran; errors: how many raised.
    """

    def __init__(self, lister: GPULister, rng: random.Random, error_rate: float = 0.0) -> None:
        self._lister = lister
        self._rng = rng
        self._error_rate = error_rate
        self._lock = threading.Lock()
        self.last: dict[str, int | None] = {}
        self.reconciles = 0
        self.errors = 0

    def reconcile(self, request: Request) -> Result:
        try:
            observed: int | None = _rv(self._lister.get(request.name))
        except NotFoundError:
            observed = None
        with self._lock:
            self.last[request.name] = observed
            self.reconciles += 1
            fail = self._error_rate > 0 and self._rng.random() < self._error_rate
            if fail:
                self.errors += 1
        if fail:
            raise RuntimeError(f"chaos: injected reconcile failure for {request.name}")
        return Result()

    def snapshot(self) -> dict[str, int | None]:
        with self._lock:
            return dict(self.last)
