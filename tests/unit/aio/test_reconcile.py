"""AsyncController: the reconcile result table, concurrency, watches, start and stop."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.aio import AsyncController, CacheSyncTimeoutError
from nvinformers.api.device.v1alpha1 import GPUList, ListMeta
from nvinformers.clock import FakeClock
from nvinformers.controller import (
    ReconcilePanicError,
    Request,
    Result,
    TerminalError,
    enqueue_mapped,
    predicates,
)
from nvinformers.errors import ExpiredError
from nvinformers.watch import Event, EventType
from nvinformers.workqueue import ItemExponentialFailureRateLimiter
from tests.unit.cache.scripted import WAIT, ScriptedListerWatcher, gpu

from .aiohelpers import GatedListerWatcher, MakeHarness, eventually, run, thread_names

Action = Any  # Result, an exception to raise, an asyncio.Event to wait for, or anything else


class ScriptedReconciler:
    """Plays a per-key script of outcomes (default: success) and records every call."""

    def __init__(self, script: dict[str, list[Action]] | None = None) -> None:
        self.script = {key: list(actions) for key, actions in (script or {}).items()}
        self.calls: list[str] = []
        self.active: Counter[str] = Counter()
        self.max_active: Counter[str] = Counter()
        self.max_total_active = 0
        self.cancelled: list[str] = []
        self._changed = asyncio.Event()

    async def reconcile(self, request: Request) -> Result:
        key = request.key
        self.calls.append(key)
        self._changed.set()
        self.active[key] += 1
        self.max_active[key] = max(self.max_active[key], self.active[key])
        self.max_total_active = max(self.max_total_active, sum(self.active.values()))
        try:
            actions = self.script.get(key)
            action = actions.pop(0) if actions else Result()
            if isinstance(action, asyncio.Event):
                await action.wait()
                return Result()
            if isinstance(action, BaseException):
                raise action
            return action
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.active[key] -= 1
            self._changed.set()

    async def wait_for_calls(self, key: str, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.calls.count(key) < n:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make_controller(reconciler: Any, registry: CollectorRegistry, **kwargs: Any) -> AsyncController:
    kwargs.setdefault("rate_limiter", ItemExponentialFailureRateLimiter(0.0, 0.0))
    return AsyncController("test", reconciler, registry=registry, **kwargs)


def results(registry: CollectorRegistry, name: str = "test") -> Counter[str]:
    """``controller_runtime_reconcile_total`` by result (the same series as the threaded one)."""
    return Counter(
        {
            result: int(value)
            for result in ("success", "error", "requeue", "requeue_after")
            if (
                value := sample(registry, "controller_runtime_reconcile_total", name, result=result)
            )
        }
    )


def sample(registry: CollectorRegistry, metric: str, name: str = "test", **labels: str) -> float:
    return registry.get_sample_value(metric, {"controller": name, **labels}) or 0.0


def test_the_result_table(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    reconciler = ScriptedReconciler(
        {
            "flaky": [RuntimeError("boom"), RuntimeError("boom again"), Result()],
            "terminal": [TerminalError("bad spec")],
            "later": [RuntimeError("boom"), Result(requeue_after=5.0)],
            "bad": ["not a result", Result()],
        }
    )

    async def main() -> AsyncController:
        controller = make_controller(reconciler, registry, clock=clock)
        q = controller.queue
        await controller.start()
        for key in ("ok", "flaky", "terminal", "later", "bad"):
            controller.enqueue(Request(key))

        # success: reconciled once, failure history forgotten
        await reconciler.wait_for_calls("ok", 1)
        # error: rate-limited retries until success, which forgets the history
        await reconciler.wait_for_calls("flaky", 3)
        # something that is not a Result: an error, retried
        await reconciler.wait_for_calls("bad", 2)
        # error then requeue_after: the error's history is forgotten; back only after 5 s
        await reconciler.wait_for_calls("later", 2)
        assert await eventually(lambda: results(registry)["requeue_after"] == 1)
        assert q.num_requeues(Request("later")) == 0
        # terminal: not retried. A retry would be queued (delay 0) before this sentinel.
        assert sample(registry, "controller_runtime_terminal_reconcile_errors_total") == 1
        controller.enqueue(Request("sentinel"))
        await reconciler.wait_for_calls("sentinel", 1)
        assert reconciler.calls.count("terminal") == 1
        assert reconciler.calls.count("later") == 2
        for key in ("ok", "flaky", "bad", "sentinel"):
            assert q.num_requeues(Request(key)) == 0
        clock.step(5.0)
        await reconciler.wait_for_calls("later", 3)
        assert await controller.stop()
        return controller

    run(main)
    assert results(registry) == Counter(success=5, error=5, requeue_after=1)
    assert sample(registry, "controller_runtime_reconcile_errors_total") == 5
    assert sample(registry, "controller_runtime_terminal_reconcile_errors_total") == 1


def test_one_object_is_never_reconciled_concurrently(registry: CollectorRegistry) -> None:
    async def main() -> ScriptedReconciler:
        gate = asyncio.Event()
        others = {key: [asyncio.Event()] for key in ("b", "c")}
        reconciler = ScriptedReconciler({"a": [gate], **others})
        controller = make_controller(reconciler, registry, max_concurrent_reconciles=4)
        await controller.start()
        controller.enqueue(Request("a"))
        await reconciler.wait_for_calls("a", 1)
        for key in ("a", "b", "a", "c", "a"):
            controller.enqueue(Request(key))
        # b and c run beside a; a does not start a second time while it runs.
        await reconciler.wait_for_calls("b", 1)
        await reconciler.wait_for_calls("c", 1)
        assert controller.active_workers == 3
        for _ in range(5):
            await asyncio.sleep(0)
        assert reconciler.calls.count("a") == 1
        gate.set()
        for event in others.values():
            event[0].set()
        # a was added again while it ran: reconciled once more, after it finished.
        await reconciler.wait_for_calls("a", 2)
        assert await eventually(lambda: controller.active_workers == 0)
        assert await controller.stop()
        return reconciler

    reconciler = run(main)
    assert reconciler.max_active["a"] == 1
    assert reconciler.max_total_active == 3
    assert reconciler.calls.count("a") == 2


def test_watched_events_become_requests_tombstones_and_map_funcs_included(
    informers: MakeHarness, registry: CollectorRegistry
) -> None:
    lw = ScriptedListerWatcher(
        default_list=[gpu("a", 5, owner="x"), gpu("b", 7, owner="y"), gpu("c", 8, owner="x")]
    )
    h = informers(lw=lw)

    async def main() -> tuple[list[str], list[str]]:
        by_key = ScriptedReconciler()
        by_owner = ScriptedReconciler()
        keyed = AsyncController("keyed", by_key, registry=registry)
        mapped = AsyncController("mapped", by_owner, registry=registry)
        keyed.watch(h.informer)
        mapped.watch(
            h.informer,
            enqueue_mapped(lambda obj: [Request(obj.metadata.labels["owner"], namespace="owners")]),
        )
        h.start()
        await keyed.start()
        await mapped.start()
        await by_key.wait_for_calls("a", 1)
        await by_key.wait_for_calls("b", 1)
        await by_key.wait_for_calls("c", 1)
        await by_owner.wait_for_calls("owners/x", 1)
        await by_owner.wait_for_calls("owners/y", 1)
        # While disconnected, b was deleted: the relist delivers a tombstone for it.
        lw.lists.append(
            GPUList(
                items=(gpu("a", 5, owner="x"), gpu("c", 8, owner="x")),
                metadata=ListMeta(resource_version="42"),
            )
        )
        (await h.watch(0)).fail(ExpiredError("too old resource version"))
        await by_key.wait_for_calls("b", 2)
        await by_owner.wait_for_calls("owners/y", 2)
        # An update that moves a from owner x to owner z requests both.
        (await h.watch(1)).push(Event(EventType.MODIFIED, gpu("a", 43, owner="z")))
        await by_key.wait_for_calls("a", 2)
        await by_owner.wait_for_calls("owners/z", 1)
        await by_owner.wait_for_calls("owners/x", 2)
        assert await keyed.stop()
        assert await mapped.stop()
        assert not any(
            n.endswith(("controller-keyed", "controller-mapped")) for n in thread_names()
        )
        assert h.informer.handlers() == ()
        return by_key.calls, by_owner.calls

    keyed_calls, _ = run(main)
    assert sorted(keyed_calls) == ["a", "a", "b", "b", "c"]


def test_predicates_filter_and_the_status_is_the_thread_drivers(
    informers: MakeHarness, registry: CollectorRegistry
) -> None:
    # One watch model for both drivers: predicates and handlers are the controller package's.
    gated = GatedListerWatcher(
        ScriptedListerWatcher(default_list=[gpu("a", 5, rack="1"), gpu("b", 6, rack="2")])
    )
    h = informers(lw=gated)

    async def main() -> list[str]:
        reconciler = ScriptedReconciler()
        controller = make_controller(reconciler, registry)
        controller.watch(h.informer, predicates=[predicates.label_selector_predicate("rack=1")])
        assert controller.status() == "new"
        h.start()
        starting = asyncio.create_task(controller.start())
        assert await asyncio.to_thread(gated.listing.wait, WAIT)
        assert await eventually(lambda: controller.status().startswith("waiting"))
        assert controller.status() == "waiting for caches to sync: informer 'gpus' has not synced"
        gated.gate.set()
        await starting
        assert controller.status() == "running"
        await reconciler.wait_for_calls("a", 1)
        (await h.watch(0)).push(Event(EventType.MODIFIED, gpu("b", 9, rack="1")))
        await reconciler.wait_for_calls("b", 1)
        assert await controller.stop()
        assert controller.status() == "stopped"
        return reconciler.calls

    assert run(main) == ["a", "b"]


def test_start_waits_for_the_caches_and_times_out(
    informers: MakeHarness, registry: CollectorRegistry
) -> None:
    gated = GatedListerWatcher(ScriptedListerWatcher(default_list=[gpu("a", 5)]))
    h = informers(lw=gated)
    never = informers([gpu("z", 1)])  # never started

    async def main() -> None:
        reconciler = ScriptedReconciler()
        controller = make_controller(reconciler, registry)
        controller.watch(h.informer)
        h.start()
        starting = asyncio.create_task(controller.start())
        assert await asyncio.to_thread(gated.listing.wait, WAIT)
        for _ in range(5):
            await asyncio.sleep(0)
        assert not starting.done()
        gated.gate.set()
        await starting
        await reconciler.wait_for_calls("a", 1)
        assert await controller.stop()

        stuck = AsyncController(
            "stuck", ScriptedReconciler(), cache_sync_timeout=0.05, registry=registry
        )
        stuck.watch(never.informer)
        with pytest.raises(
            CacheSyncTimeoutError,
            match=r"timed out after 0\.05 s waiting for caches to sync: informer .gpus. has not",
        ):
            await stuck.start()
        assert stuck.status().startswith("failed: controller 'stuck': timed out")
        assert await stuck.stop()  # start() already stopped it: this waits for that stop

    run(main)


def test_stop_ends_a_start_still_waiting_for_the_caches(
    informers: MakeHarness, registry: CollectorRegistry
) -> None:
    never = informers([gpu("z", 1)])  # never started

    async def main() -> None:
        controller = make_controller(ScriptedReconciler(), registry)  # default sync timeout
        controller.watch(never.informer)
        starting = asyncio.create_task(controller.start())
        for _ in range(3):
            await asyncio.sleep(0)
        assert await controller.stop()
        await starting  # returns without error and without workers
        assert controller.active_workers == 0
        assert controller._workers == []

    run(main)


def test_stop_finishes_in_flight_reconciles_and_drops_queued_ones(
    registry: CollectorRegistry,
) -> None:
    async def main() -> None:
        gate = asyncio.Event()
        reconciler = ScriptedReconciler({"busy": [gate]})
        controller = make_controller(reconciler, registry, max_concurrent_reconciles=2)
        await controller.start()
        controller.enqueue(Request("busy"))
        await reconciler.wait_for_calls("busy", 1)
        stopping = asyncio.create_task(controller.stop(timeout=WAIT))
        for _ in range(5):
            await asyncio.sleep(0)
        controller.enqueue(Request("late"))  # dropped: the queue is shut down
        assert not stopping.done()
        gate.set()
        assert await stopping is True
        assert reconciler.calls == ["busy"]
        assert reconciler.cancelled == []
        assert results(registry) == Counter(success=1)
        assert not any(n.startswith("nvinformers-aio-queue-") for n in thread_names())
        assert await controller.stop()  # idempotent

    run(main)


def test_stop_cancels_reconciles_that_outlive_its_timeout(registry: CollectorRegistry) -> None:
    async def main() -> None:
        reconciler = ScriptedReconciler({"stuck": [asyncio.Event()]})  # never set
        controller = make_controller(reconciler, registry)
        await controller.start()
        controller.enqueue(Request("stuck"))
        await reconciler.wait_for_calls("stuck", 1)
        assert await controller.stop(timeout=0.01) is False
        assert reconciler.cancelled == ["stuck"]

    run(main)


def test_a_synchronous_reconciler_is_reported_and_the_worker_survives(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    class Sync:
        def reconcile(self, request: Request) -> Result:
            calls.append(request.key)
            return Result()

    async def main() -> AsyncController:
        limiter: ItemExponentialFailureRateLimiter[Request] = ItemExponentialFailureRateLimiter(
            10.0, 10.0
        )
        controller = AsyncController("sync", Sync(), rate_limiter=limiter, registry=registry)  # type: ignore[arg-type]
        await controller.start()
        controller.enqueue(Request("a"))
        controller.enqueue(Request("b"))
        assert await eventually(lambda: calls == ["a", "b"])
        assert await eventually(
            lambda: sample(registry, "controller_runtime_reconcile_errors_total", "sync") == 2
        )
        assert await controller.stop()
        return controller

    with caplog.at_level(logging.ERROR, logger="nvinformers.controller"):
        run(main)
    assert "AsyncController needs an AsyncReconciler" in caplog.text
    assert results(registry, "sync") == Counter(error=2)


def test_an_escaping_cancellation_is_a_panic_that_may_stop_the_controller(
    registry: CollectorRegistry,
) -> None:
    reconciler = ScriptedReconciler({"a": [asyncio.CancelledError("inner task")]})

    async def main() -> None:
        recovering = make_controller(reconciler, registry)
        await recovering.start()
        recovering.enqueue(Request("a"))
        await reconciler.wait_for_calls("a", 2)  # recovered: retried (zero-delay limiter)
        assert await recovering.stop()
        assert sample(registry, "controller_runtime_reconcile_panics_total") == 1

        reconciler.script["a"] = [asyncio.CancelledError("inner task")]
        strict = AsyncController("strict", reconciler, recover_panic=False, registry=registry)
        await strict.start()
        strict.enqueue(Request("a"))
        assert await eventually(lambda: strict.status().startswith("failed"))
        assert isinstance(strict.error(), ReconcilePanicError)
        assert strict.status().startswith("failed: controller 'strict': a reconcile raised")
        strict.enqueue(Request("b"))  # dropped: the controller stopped itself
        assert await strict.stop()
        assert reconciler.calls.count("b") == 0
        assert sample(registry, "controller_runtime_reconcile_panics_total", "strict") == 1

    run(main)


def test_bad_options_are_named(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        AsyncController("", ScriptedReconciler(), registry=registry)
    with pytest.raises(ValueError, match="max_concurrent_reconciles"):
        AsyncController("x", ScriptedReconciler(), max_concurrent_reconciles=0, registry=registry)
    controller = AsyncController("x", ScriptedReconciler(), registry=registry)
    with pytest.raises(TypeError, match="expected a Request"):
        controller.enqueue("a")  # type: ignore[arg-type]
    controller.queue.shut_down()
