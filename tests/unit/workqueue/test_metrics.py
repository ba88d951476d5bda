"""Metrics: client-go names and values in a fresh registry, computed at scrape time."""

from __future__ import annotations

import gc
import math

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from nvinformers.clock import FakeClock
from nvinformers.workqueue import DelayingQueue, Queue
from nvinformers.workqueue._metrics import DURATION_BUCKETS

from .conftest import GUARD

NAMES = {
    "workqueue_depth",
    "workqueue_adds",
    "workqueue_queue_duration_seconds",
    "workqueue_work_duration_seconds",
    "workqueue_unfinished_work_seconds",
    "workqueue_longest_running_processor_seconds",
    "workqueue_retries",
}


def value(registry: CollectorRegistry, metric: str, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric, {"name": name, **labels})


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_adds_and_depth(registry: CollectorRegistry, clock: FakeClock) -> None:
    q: Queue[str] = Queue("q", clock=clock, registry=registry)
    q.add("a")
    q.add("b")
    q.add("a")  # de-duplicated: not an add
    assert value(registry, "workqueue_adds_total", "q") == 2
    assert value(registry, "workqueue_depth", "q") == 2
    q.get()
    assert value(registry, "workqueue_depth", "q") == 1
    q.add("a")  # being processed: counted as an add and in depth, as in client-go
    assert value(registry, "workqueue_adds_total", "q") == 3
    assert value(registry, "workqueue_depth", "q") == 2


def test_queue_and_work_durations_are_observed(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    q: Queue[str] = Queue("q", clock=clock, registry=registry)
    q.add("a")
    clock.step(0.5)
    q.get()
    metric = "workqueue_queue_duration_seconds"
    assert value(registry, f"{metric}_count", "q") == 1
    assert value(registry, f"{metric}_sum", "q") == 0.5
    assert value(registry, f"{metric}_bucket", "q", le="0.1") == 0
    assert value(registry, f"{metric}_bucket", "q", le="1.0") == 1
    assert value(registry, f"{metric}_bucket", "q", le="+Inf") == 1

    clock.step(2.0)
    q.done("a")
    metric = "workqueue_work_duration_seconds"
    assert value(registry, f"{metric}_count", "q") == 1
    assert value(registry, f"{metric}_sum", "q") == 2.0
    assert value(registry, f"{metric}_bucket", "q", le="1.0") == 0
    assert value(registry, f"{metric}_bucket", "q", le="10.0") == 1


def test_queue_duration_runs_from_the_first_add(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    q: Queue[str] = Queue("q", clock=clock, registry=registry)
    q.add("a")
    clock.step(3.0)
    q.add("a")  # de-duplicated: does not restart the clock
    clock.step(1.0)
    q.get()
    assert value(registry, "workqueue_queue_duration_seconds_sum", "q") == 4.0


def test_histogram_buckets_are_ten_ns_to_a_thousand_s(registry: CollectorRegistry) -> None:
    Queue("q", registry=registry)
    les = [
        s.labels["le"]
        for family in registry.collect()
        if family.name == "workqueue_queue_duration_seconds"
        for s in family.samples
        if s.name.endswith("_bucket")
    ]
    assert les == [
        "1e-08",
        "1e-07",
        "1e-06",
        "1e-05",
        "0.0001",
        "0.001",
        "0.01",
        "0.1",
        "1.0",
        "10.0",
        "100.0",
        "1000.0",
        "+Inf",
    ]
    assert len(DURATION_BUCKETS) == 12


def test_unfinished_and_longest_are_computed_at_scrape_time(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    q: Queue[str] = Queue("q", clock=clock, registry=registry)
    q.add("a")
    q.add("b")
    assert value(registry, "workqueue_unfinished_work_seconds", "q") == 0
    assert value(registry, "workqueue_longest_running_processor_seconds", "q") == 0
    q.get()  # "a" starts at 0
    clock.step(1.0)
    q.get()  # "b" starts at 1
    clock.step(2.0)
    # No refresh thread: the values follow the clock at every scrape.
    assert value(registry, "workqueue_unfinished_work_seconds", "q") == 3.0 + 2.0
    assert value(registry, "workqueue_longest_running_processor_seconds", "q") == 3.0
    clock.step(1.0)
    assert value(registry, "workqueue_unfinished_work_seconds", "q") == 4.0 + 3.0
    assert value(registry, "workqueue_longest_running_processor_seconds", "q") == 4.0
    q.done("a")
    assert value(registry, "workqueue_unfinished_work_seconds", "q") == 3.0
    assert value(registry, "workqueue_longest_running_processor_seconds", "q") == 3.0


def test_retries_count_every_add_after_before_shutdown(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    q: DelayingQueue[str] = DelayingQueue("dq", clock=clock, registry=registry)
    q.add_after("a", 0)
    q.add_after("b", 1.0)
    q.add_after("b", 2.0)
    assert value(registry, "workqueue_retries_total", "dq") == 3
    assert clock.block_until_waiters(deadline=1.0, timeout=GUARD)
    clock.step(1.0)
    assert clock.block_until_waiters(deadline=math.inf, timeout=GUARD)
    assert value(registry, "workqueue_adds_total", "dq") == 2
    q.shut_down()
    q.add_after("c", 0)
    assert value(registry, "workqueue_retries_total", "dq") == 3


def test_unnamed_queues_have_no_metrics(registry: CollectorRegistry) -> None:
    q: Queue[str] = Queue(registry=registry)
    q.add("a")
    assert q._metrics is None
    assert list(registry.collect()) == []


def test_queues_with_different_names_share_one_collector(registry: CollectorRegistry) -> None:
    first: Queue[str] = Queue("first", registry=registry)
    second: DelayingQueue[str] = DelayingQueue("second", registry=registry)
    first.add("a")
    second.add("a")
    second.add("b")
    families = [f.name for f in registry.collect()]
    assert sorted(families) == sorted(NAMES)  # each family once, for both queues
    assert value(registry, "workqueue_adds_total", "first") == 1
    assert value(registry, "workqueue_adds_total", "second") == 2
    second.shut_down()


def test_the_same_name_twice_shares_the_series(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    one: Queue[str] = Queue("same", clock=clock, registry=registry)
    two: Queue[str] = Queue("same", clock=clock, registry=registry)
    one.add("a")
    two.add("a")
    two.add("b")
    one.get()
    clock.step(1.0)
    two.get()
    clock.step(1.0)
    assert value(registry, "workqueue_adds_total", "same") == 3
    assert value(registry, "workqueue_depth", "same") == 1
    assert value(registry, "workqueue_unfinished_work_seconds", "same") == 2.0 + 1.0
    assert value(registry, "workqueue_longest_running_processor_seconds", "same") == 2.0


def test_counters_survive_a_collected_queue(registry: CollectorRegistry) -> None:
    q: Queue[str] = Queue("gone", registry=registry)
    q.add("a")
    q.add("b")
    del q
    gc.collect()
    assert value(registry, "workqueue_adds_total", "gone") == 2  # counters never go back
    assert value(registry, "workqueue_depth", "gone") == 0


def test_many_queues_are_pruned_without_losing_counts(registry: CollectorRegistry) -> None:
    for n in range(200):
        q: Queue[int] = Queue("churn", registry=registry)
        q.add(n)
    del q
    gc.collect()
    assert value(registry, "workqueue_adds_total", "churn") == 200


def test_a_clashing_registry_is_reported(registry: CollectorRegistry) -> None:
    Gauge("workqueue_depth", "someone else's", registry=registry)
    with pytest.raises(ValueError, match="cannot register the workqueue_\\* metrics"):
        Queue("q", registry=registry)


def test_exposition_uses_client_go_names(registry: CollectorRegistry) -> None:
    q: Queue[str] = Queue("expo", registry=registry)
    q.add("a")
    text = generate_latest(registry).decode()
    assert 'workqueue_adds_total{name="expo"} 1.0' in text
    assert 'workqueue_depth{name="expo"} 1.0' in text
    assert "# TYPE workqueue_queue_duration_seconds histogram" in text
    assert "# TYPE workqueue_retries_total counter" in text
