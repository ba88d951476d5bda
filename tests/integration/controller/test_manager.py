"""Manager: health, readiness and metrics over real HTTP; ordered shutdown; signals."""

from __future__ import annotations

import gzip
import json
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.cache import BackoffConfig
from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.controller import (
    CacheSyncTimeoutError,
    Controller,
    Manager,
    Request,
    Result,
)
from nvinformers.informers import SharedInformerFactory, new_gpu_informer
from nvinformers.testing import FakeServer
from tests.unit.cache.scripted import eventually

from .conftest import WAIT

FAST = BackoffConfig(initial=0.001, cap=0.01)


def get(url: str, accept: str = "") -> tuple[int, str, str]:
    """(status, content type, body) of a GET, also for error statuses."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers["Content-Type"], err.read().decode()


def nvinformers_threads() -> list[str]:
    return sorted(
        t.name
        for t in threading.enumerate()
        if t.name.startswith("nvinformers-") and not t.name.startswith("nvinformers-fake-server")
    )


class Noop:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.cond = threading.Condition()

    def reconcile(self, request: Request) -> Result:
        with self.cond:
            self.seen.add(request.name)
            self.cond.notify_all()
        return Result()


def noop_manager(
    clientset: Clientset, registry: CollectorRegistry, make_manager: Callable[..., Manager]
) -> tuple[Manager, Controller]:
    """A manager (not started) with a GPU informer factory and a no-op controller on it."""
    factory = SharedInformerFactory(clientset, registry=registry)
    ctl = Controller("gpu-noop", Noop(), registry=registry)
    ctl.watch(factory.device().v1alpha1().gpus())
    mgr = make_manager()
    mgr.add_informer_factory(factory)
    mgr.add_controller(ctl)
    return mgr, ctl


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_manager(registry: CollectorRegistry) -> Iterator[Callable[..., Manager]]:
    managers: list[Manager] = []

    def build(**kwargs: object) -> Manager:
        kwargs.setdefault("registry", registry)
        mgr = Manager(**kwargs)  # type: ignore[arg-type]
        managers.append(mgr)
        return mgr

    yield build
    for mgr in managers:
        assert mgr.stop(WAIT)
    assert nvinformers_threads() == []


def test_health_readiness_and_metrics_over_http(
    clientset: Clientset,
    registry: CollectorRegistry,
    make_manager: Callable[..., Manager],
) -> None:
    factory = SharedInformerFactory(clientset, registry=registry)
    noop = Noop()
    ctl = Controller("gpu-noop", noop, registry=registry)
    ctl.watch(factory.device().v1alpha1().gpus())
    mgr = make_manager()
    mgr.add_informer_factory(factory)
    mgr.add_controller(ctl)
    mgr.add_healthz_check("always", lambda: None)
    mgr.start()
    url = mgr.url
    assert url is not None and url.startswith("http://127.0.0.1:")
    assert ctl.wait_for_started(WAIT)
    with noop.cond:
        assert noop.cond.wait_for(lambda: len(noop.seen) == 8, WAIT)

    status, ctype, body = get(url + "/healthz")
    assert (status, ctype) == (200, "text/plain; charset=utf-8")
    assert body.splitlines() == [
        "[+]informer/gpus ok",
        "[+]controller/gpu-noop ok",
        "[+]always ok",
        "healthz check passed",
    ]
    status, _, body = get(url + "/readyz")
    assert status == 200
    assert body.splitlines()[-1] == "readyz check passed"

    status, ctype, body = get(url + "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    assert 'controller_runtime_reconcile_total{controller="gpu-noop",result="success"} 8.0' in body
    assert 'controller_runtime_max_concurrent_reconciles{controller="gpu-noop"} 1.0' in body
    assert 'workqueue_adds_total{name="gpu-noop"} 8.0' in body
    assert 'nvinformers_informer_synced{informer="gpus"} 1.0' in body

    status, ctype, body = get(url + "/metrics", accept="application/openmetrics-text")
    assert ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")

    status, ctype, body = get(url + "/healthz?format=json")
    assert (status, ctype) == (200, "application/json")
    report = json.loads(body)
    assert report["status"] == "ok"
    assert {c["name"] for c in report["checks"]} == {
        "informer/gpus",
        "controller/gpu-noop",
        "always",
    }
    assert get(url + "/readyz/informer/gpus")[2] == "[+]informer/gpus ok\nreadyz check passed\n"
    assert get(url + "/readyz/nope")[0] == 404
    assert get(url + "/nope")[0] == 404


def test_metrics_are_served_by_prometheus_clients_exposition(
    registry: CollectorRegistry, make_manager: Callable[..., Manager]
) -> None:
    ctl = Controller("gpu-noop", Noop(), registry=registry)  # kept alive: its gauges count
    mgr = make_manager()
    mgr.start()
    url = mgr.url
    assert url is not None
    # name[] filters and gzip are prometheus_client's, not ours.
    query = "/metrics?name[]=controller_runtime_max_concurrent_reconciles"
    request = urllib.request.Request(url + query, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(response.read()).decode()
    assert 'controller_runtime_max_concurrent_reconciles{controller="gpu-noop"} 1.0' in body
    assert "controller_runtime_reconcile_total" not in body
    assert ctl.max_concurrent_reconciles == 1
    head = urllib.request.Request(url + "/metrics", method="HEAD")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(head, timeout=WAIT)
    with info.value as err:
        assert err.code == 405  # GET only, as prometheus_client's own server
    head = urllib.request.Request(url + "/healthz", method="HEAD")
    with urllib.request.urlopen(head, timeout=WAIT) as response:
        assert (response.status, response.read()) == (200, b"")


def test_failing_checks_give_503_with_the_reason(
    make_manager: Callable[..., Manager],
) -> None:
    def broken() -> None:
        raise RuntimeError("database unreachable")

    mgr = make_manager(health_checks={"db": broken})
    mgr.add_readyz_check("warm", lambda: False)
    mgr.start()
    url = mgr.url
    assert url is not None
    status, _, body = get(url + "/healthz")
    assert status == 503
    assert body == "[-]db failed: database unreachable\nhealthz check failed\n"
    status, _, body = get(url + "/readyz", accept="application/json")
    assert status == 503
    assert json.loads(body) == {
        "status": "failed",
        "checks": [{"name": "warm", "ok": False, "reason": "check returned False"}],
    }
    with pytest.raises(ValueError, match="already exists"):
        mgr.add_readyz_check("warm", lambda: True)
    with pytest.raises(ValueError, match="reserved for the built-in checks"):
        mgr.add_healthz_check("informer/x", lambda: True)


def test_not_ready_until_the_caches_sync(
    registry: CollectorRegistry, make_manager: Callable[..., Manager]
) -> None:
    fake = FakeServer(flip_interval=None, bookmark_interval=None, gpus=2, seed=3)
    clientset = new_for_config(Config(target=fake.target))
    try:
        informer = new_gpu_informer(clientset, backoff=FAST, registry=registry)
        ctl = Controller("gpu-noop", Noop(), registry=registry)
        ctl.watch(informer)
        mgr = make_manager()
        mgr.add_informer(informer)
        mgr.add_controller(ctl)
        mgr.start()  # the server is not up yet: nothing can sync
        url = mgr.url
        assert url is not None
        status, _, body = get(url + "/readyz")
        assert status == 503
        assert "[-]informer/gpus failed: not synced" in body
        assert "[-]controller/gpu-noop failed: waiting for caches to sync" in body
        assert get(url + "/healthz")[0] == 503  # liveness includes the informer's health
        fake.start()
        assert ctl.wait_for_started(WAIT)
        assert get(url + "/readyz")[0] == 200
        assert eventually(lambda: get(url + "/healthz")[0] == 200)
        assert mgr.stop(WAIT)
    finally:
        clientset.close()
        fake.stop()


def test_shutdown_stops_controllers_before_informers_and_leaves_no_threads(
    clientset: Clientset, registry: CollectorRegistry, make_manager: Callable[..., Manager]
) -> None:
    factory = SharedInformerFactory(clientset, registry=registry)
    informer = factory.device().v1alpha1().gpus().informer()
    gate = threading.Event()
    in_reconcile = threading.Event()
    informer_stopped_at_end: list[bool] = []

    def reconcile(request: Request) -> Result:
        if request.name == "gpu-0":
            in_reconcile.set()
            assert gate.wait(WAIT)
            informer_stopped_at_end.append(informer.is_stopped())
        return Result()

    ctl = Controller("gpu-slow", reconcile, registry=registry)
    ctl.watch(informer)
    mgr = make_manager()
    mgr.add_informer_factory(factory)
    mgr.add_controller(ctl)
    mgr.start()
    assert in_reconcile.wait(WAIT)
    outcome: list[bool] = []
    stopper = threading.Thread(target=lambda: outcome.append(mgr.stop(WAIT)), name="stopper")
    stopper.start()
    assert eventually(lambda: ctl.status() == "stopping")
    assert not informer.is_stopped()  # the informers wait for the controllers
    assert mgr.url is not None
    gate.set()
    stopper.join(WAIT)
    assert outcome == [True]
    assert informer_stopped_at_end == [False]
    assert informer.is_stopped()
    assert nvinformers_threads() == []
    with pytest.raises(RuntimeError, match="stopped"):
        mgr.add_controller(Controller("late", Noop(), registry=registry))


def test_a_controller_failure_stops_the_manager_and_run_raises_it(
    registry: CollectorRegistry, make_manager: Callable[..., Manager]
) -> None:
    fake = FakeServer(flip_interval=None, gpus=1)  # never started: the cache cannot sync
    clientset = new_for_config(Config(target=fake.target))
    try:
        informer = new_gpu_informer(clientset, backoff=FAST, registry=registry)
        ctl = Controller("gpu-noop", Noop(), cache_sync_timeout=0.05, registry=registry)
        ctl.watch(informer)
        mgr = make_manager(port=None)
        mgr.add_informer(informer)
        mgr.add_controller(ctl)
        with pytest.raises(CacheSyncTimeoutError, match="gpu-noop"):
            mgr.run(threading.Event())
        assert mgr.error() is ctl.error()
        assert informer.is_stopped()
    finally:
        clientset.close()


def test_sigterm_stops_run_on_the_main_thread(
    clientset: Clientset, registry: CollectorRegistry, make_manager: Callable[..., Manager]
) -> None:
    assert threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    mgr, ctl = noop_manager(clientset, registry, make_manager)

    def send_sigterm_once_started() -> None:
        assert ctl.wait_for_started(WAIT)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send_sigterm_once_started, name="sigterm-sender")
    sender.start()
    mgr.run()
    sender.join(WAIT)
    assert ctl.status() == "stopped"
    assert signal.getsignal(signal.SIGTERM) is previous
    assert nvinformers_threads() == []


def test_the_ops_server_binds_loopback_by_default_and_can_be_disabled(
    make_manager: Callable[..., Manager],
) -> None:
    mgr = make_manager()
    mgr.start()
    assert mgr.port is not None and mgr.port > 0
    assert mgr.url == f"http://127.0.0.1:{mgr.port}"
    disabled = make_manager(port=None)
    disabled.start()
    assert disabled.url is None
    with pytest.raises(RuntimeError, match="runs once"):
        disabled.start()


def test_stop_cancels_a_hung_list_at_once(
    server: FakeServer,
    clientset: Clientset,
    registry: CollectorRegistry,
    make_manager: Callable[..., Manager],
) -> None:
    """Issue 10, case 3: the manager's stop waited for an informer's ListGpus that the server
    never answered (the factory's 60 s list deadline)."""
    server.hostile.hang("ListGpus")
    mgr, _ = noop_manager(clientset, registry, make_manager)
    mgr.start()
    assert server.hostile.wait_for_hung("ListGpus", 1, WAIT)
    try:
        assert mgr.stop(WAIT), "the manager did not stop in time"
        assert server.hostile.wait_for_hung("ListGpus", 0, WAIT)  # the call was cancelled
    finally:
        server.hostile.release()
