"""Controller start-up (waiting for caches) and graceful stop."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU, GPUList
from nvinformers.cache import SharedIndexInformer, cluster_scoped_key_func
from nvinformers.controller import CacheSyncTimeoutError, Controller, Request, Result
from nvinformers.options import ListOptions
from tests.unit.cache.scripted import ScriptedListerWatcher, eventually, gpu

from .conftest import WAIT, FakeInformer, RecordingReconciler, as_informer, controller_threads


@dataclass
class GatedListerWatcher(ScriptedListerWatcher):
    """Its lists block until ``gate`` is set (a server that is slow to answer)."""

    gate: threading.Event = field(default_factory=threading.Event)
    listing: threading.Event = field(default_factory=threading.Event)

    def list(self, options: ListOptions) -> GPUList:
        self.listing.set()
        assert self.gate.wait(WAIT)
        return super().list(options)


class GatedInformer:
    def __init__(self, objects: list[GPU]) -> None:
        self.lw = GatedListerWatcher(default_list=objects)
        self.informer: SharedIndexInformer[GPU] = SharedIndexInformer(
            self.lw,
            name="gpus",
            key_func=cluster_scoped_key_func,
            registry=CollectorRegistry(),
            rng=random.Random(1),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.informer.run, args=(self.stop,), name="inf")

    def __enter__(self) -> GatedInformer:
        self.thread.start()
        assert self.lw.listing.wait(WAIT)
        return self

    def __exit__(self, *exc: object) -> None:
        self.lw.gate.set()
        self.stop.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def test_workers_start_only_after_the_caches_sync(
    make_controller: Callable[..., Controller],
) -> None:
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    with GatedInformer([gpu("gpu-0", 1)]) as inf:
        ctl.watch(inf.informer)
        ctl.queue.add(Request("queued-early"))
        ctl.start()
        # The informer is stuck in its first list, so the controller cannot have synced.
        assert eventually(lambda: ctl.status().startswith("waiting for caches to sync"))
        assert ctl.status() == "waiting for caches to sync: informer 'gpus' has not synced"
        assert not ctl.started
        assert controller_threads("ctl") == ["nvinformers-controller-ctl"]  # no worker yet
        assert rec.calls == []
        inf.lw.gate.set()
        assert ctl.wait_for_started(WAIT)
        assert rec.wait_for_count("queued-early", 1)
        assert rec.wait_for_count("gpu-0", 1)
        assert ctl.status() == "running"


def test_a_cache_sync_timeout_fails_without_starting_workers(
    make_controller: Callable[..., Controller], caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []
    ctl = make_controller(cache_sync_timeout=0.05)
    with GatedInformer([]) as inf:
        ctl.watch(inf.informer)
        ctl.start(on_error=errors.append)
        assert ctl.wait_for_stopped(WAIT)
        assert not ctl.wait_for_started(0)
    assert len(errors) == 1
    err = errors[0]
    assert isinstance(err, CacheSyncTimeoutError)
    assert str(err).startswith("controller 'ctl': timed out after 0.05 s waiting for caches")
    assert "informer 'gpus' has not synced" in str(err)
    assert ctl.error() is err
    assert ctl.status().startswith("failed: controller 'ctl': timed out")
    assert "not starting workers" in caplog.text
    assert controller_threads("ctl") == []


def test_run_raises_the_cache_sync_timeout_and_names_an_unsynced_handler(
    make_controller: Callable[..., Controller],
) -> None:
    informer = FakeInformer()
    ctl = make_controller(cache_sync_timeout=0.05)

    def register(*args: Any, **kwargs: Any) -> Any:
        registration = FakeInformer.add_event_handler(informer, *args, **kwargs)
        registration.synced = False  # the handler never gets through the initial list
        return registration

    informer.add_event_handler = register  # type: ignore[method-assign]
    ctl.watch(as_informer(informer))
    with pytest.raises(CacheSyncTimeoutError, match="'controller-ctl' has not received"):
        ctl.run(threading.Event())
    assert controller_threads("ctl") == []


def test_a_stop_before_the_caches_sync_is_clean(
    make_controller: Callable[..., Controller],
) -> None:
    ctl = make_controller()
    ctl.watch(as_informer(FakeInformer(synced=False)))
    errors: list[BaseException] = []
    ctl.start(on_error=errors.append)
    assert eventually(lambda: ctl.status().startswith("waiting for caches to sync"))
    assert ctl.stop(WAIT)
    assert errors == []
    assert ctl.error() is None
    assert ctl.status() == "stopped"


def test_stop_lets_the_reconcile_in_progress_finish_and_drops_queued_requests(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    gate = threading.Event()
    rec = RecordingReconciler()

    def blocked(request: Request) -> Result:
        assert gate.wait(WAIT)
        return Result()

    rec.script("a", blocked)
    ctl = make_controller(reconciler=rec, max_concurrent_reconciles=1)
    ctl.start()
    assert ctl.wait_for_started(WAIT)
    ctl.queue.add(Request("a"))
    assert rec.wait_for(lambda: rec.in_flight == 1)
    ctl.queue.add(Request("b"))
    ctl.queue.add(Request("c"))
    outcome: list[bool] = []
    stopper = threading.Thread(target=lambda: outcome.append(ctl.stop(WAIT)), name="stopper")
    stopper.start()
    assert eventually(lambda: ctl.status() == "stopping")
    assert not ctl.started
    gate.set()
    stopper.join(WAIT)
    assert outcome == [True]
    assert rec.names() == ["a"]
    assert controller_threads("ctl") == []
    assert (
        registry.get_sample_value(
            "controller_runtime_reconcile_total", {"controller": "ctl", "result": "success"}
        )
        == 1.0
    )


def test_a_reconcile_outliving_the_shutdown_timeout_is_reported(
    make_controller: Callable[..., Controller], caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    rec = RecordingReconciler()

    def blocked(request: Request) -> Result:
        assert gate.wait(WAIT)
        return Result()

    rec.script("a", blocked)
    ctl = make_controller(reconciler=rec, shutdown_timeout=0.05)
    ctl.start()
    assert ctl.wait_for_started(WAIT)
    ctl.queue.add(Request("a"))
    assert rec.wait_for(lambda: rec.in_flight == 1)
    with caplog.at_level(logging.WARNING, logger="nvinformers.controller"):
        assert ctl.stop(WAIT) is False
    assert "1 reconcile(s) still running" in caplog.text
    assert "nvinformers-controller-ctl-worker-0" in caplog.text
    gate.set()
    for thread in threading.enumerate():
        if thread.name == "nvinformers-controller-ctl-worker-0":
            thread.join(WAIT)
    assert controller_threads("ctl") == []


def test_a_reconcile_may_stop_its_own_controller(
    make_controller: Callable[..., Controller],
) -> None:
    holder: list[Controller] = []
    returned: list[bool] = []

    def reconcile(request: Request) -> Result:
        returned.append(holder[0].stop())  # must not wait for itself
        return Result()

    ctl = make_controller(reconciler=reconcile)
    holder.append(ctl)
    ctl.start()
    assert ctl.wait_for_started(WAIT)
    ctl.queue.add(Request("a"))
    assert ctl.wait_for_stopped(WAIT)
    assert returned == [False]


def test_a_controller_runs_once(make_controller: Callable[..., Controller]) -> None:
    ctl = make_controller()
    ctl.start()
    with pytest.raises(RuntimeError, match="started more than once"):
        ctl.start()
    with pytest.raises(RuntimeError, match="started more than once"):
        ctl.run(threading.Event())
    assert ctl.stop(WAIT)
    assert ctl.stop(WAIT)  # idempotent
    with pytest.raises(RuntimeError, match="state 'stopped'"):
        ctl.start()


def test_stop_before_start_releases_the_queue(make_controller: Callable[..., Controller]) -> None:
    ctl = make_controller()
    assert ctl.stop()
    assert ctl.queue.shutting_down()
    assert ctl.status() == "stopped"
    assert not ctl.wait_for_started(0)
