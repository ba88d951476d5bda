"""Controller metrics: names, label sets, pre-initialisation, several controllers per registry."""

from __future__ import annotations

import gc
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest

from nvinformers.controller import Controller, Request, Result, TerminalError
from nvinformers.controller._metrics import RECONCILE_TIME_BUCKETS
from tests.unit.cache.scripted import eventually

from .conftest import WAIT, RecordingReconciler, sample

SERIES = (
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_terminal_reconcile_errors_total",
    "controller_runtime_reconcile_panics_total",
    "controller_runtime_active_workers",
)


def test_every_series_exists_at_zero_when_the_controller_is_created(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    make_controller("gpu-health", max_concurrent_reconciles=3)
    for result in ("success", "error", "requeue", "requeue_after"):
        assert (
            sample(
                registry,
                "controller_runtime_reconcile_total",
                controller="gpu-health",
                result=result,
            )
            == 0.0
        )
    for name in SERIES:
        assert sample(registry, name, controller="gpu-health") == 0.0, name
    assert (
        sample(registry, "controller_runtime_max_concurrent_reconciles", controller="gpu-health")
        == 3.0
    )
    hist = "controller_runtime_reconcile_time_seconds"
    assert sample(registry, hist + "_count", controller="gpu-health") == 0.0
    for bound in (*RECONCILE_TIME_BUCKETS, "+Inf"):
        le = bound if isinstance(bound, str) else repr(bound)
        assert sample(registry, hist + "_bucket", controller="gpu-health", le=le) == 0.0
    assert len(RECONCILE_TIME_BUCKETS) == 40
    assert (RECONCILE_TIME_BUCKETS[0], RECONCILE_TIME_BUCKETS[-1]) == (0.005, 60.0)
    for reason in ("key_error", "unknown_final_state", "handler_error"):
        assert (
            sample(
                registry,
                "nvinformers_controller_events_skipped_total",
                controller="gpu-health",
                reason=reason,
            )
            == 0.0
        )
    # The workqueue's metrics are named after the controller.
    assert sample(registry, "workqueue_adds_total", name="gpu-health") == 0.0
    text = generate_latest(registry).decode()
    assert "# HELP controller_runtime_reconcile_total Total number of reconciliations" in text
    assert "# TYPE controller_runtime_reconcile_time_seconds histogram" in text


def test_two_controllers_share_a_registry_under_their_own_labels(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    ok, failing = RecordingReconciler(), RecordingReconciler()
    failing.script("x", TerminalError("no"))
    a = make_controller("a", reconciler=ok)
    b = make_controller("b", reconciler=failing)
    for ctl in (a, b):
        ctl.start()
        assert ctl.wait_for_started(WAIT)
    a.queue.add(Request("x"))
    b.queue.add(Request("x"))

    def total(controller: str, result: str) -> float | None:
        return sample(
            registry, "controller_runtime_reconcile_total", controller=controller, result=result
        )

    assert eventually(lambda: total("a", "success") == 1.0 and total("b", "error") == 1.0)
    assert total("a", "error") == 0.0
    assert total("b", "success") == 0.0
    assert (
        sample(registry, "controller_runtime_terminal_reconcile_errors_total", controller="b")
        == 1.0
    )
    assert sample(registry, "workqueue_adds_total", name="a") == 1.0
    assert sample(registry, "workqueue_adds_total", name="b") == 1.0


def test_counters_survive_a_garbage_collected_controller() -> None:
    registry = CollectorRegistry()
    rec = RecordingReconciler()
    ctl = Controller("gone", rec, registry=registry)
    ctl.start()
    assert ctl.wait_for_started(WAIT)
    ctl.queue.add(Request("x"))
    name = "controller_runtime_reconcile_total"
    assert eventually(
        lambda: registry.get_sample_value(name, {"controller": "gone", "result": "success"}) == 1.0
    )
    assert ctl.stop(WAIT)
    del ctl
    gc.collect()
    assert registry.get_sample_value(name, {"controller": "gone", "result": "success"}) == 1.0
    # Its gauges are gone with it.
    assert (
        registry.get_sample_value(
            "controller_runtime_max_concurrent_reconciles", {"controller": "gone"}
        )
        == 0.0
    )


def test_requeue_after_and_success_counts(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    rec = RecordingReconciler()
    rec.script("x", Result(requeue_after=0.001))
    ctl = make_controller(reconciler=rec)
    ctl.start()
    assert ctl.wait_for_started(WAIT)
    ctl.queue.add(Request("x"))

    def total(result: str) -> float | None:
        return sample(
            registry, "controller_runtime_reconcile_total", controller="ctl", result=result
        )

    assert eventually(lambda: total("success") == 1.0)
    assert total("requeue_after") == 1.0
    assert total("requeue") == 0.0
    assert (
        sample(registry, "controller_runtime_reconcile_time_seconds_count", controller="ctl") == 2.0
    )
