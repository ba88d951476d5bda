"""Fixtures for the Kubernetes source's integration tests: a FakeKubeAPIServer on loopback, the
official client pointed at it, and a harness that runs informers in named, joined threads."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from nvinformers.cache import BackoffConfig, DeletedFinalStateUnknown, SharedIndexInformer
from nvinformers.testing.kube_api import FakeKubeAPIServer

WAIT = 10.0
#: Fast retries: the tests wait on outcomes, never on the backoff itself.
FAST = BackoffConfig(initial=0.01, cap=0.05)


@pytest.fixture
def server() -> Iterator[FakeKubeAPIServer]:
    # No seeded namespaces: the first object a test adds has revision 1, which the tests name.
    with FakeKubeAPIServer(namespaces=()) as running:
        yield running


@pytest.fixture
def api(server: FakeKubeAPIServer) -> Iterator[Any]:
    api_client = server.api_client()
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def core(api: Any) -> Any:
    return client.CoreV1Api(api)


def raw(
    server: FakeKubeAPIServer,
    method: str,
    path: str,
    *,
    accept: str = "application/json",
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, str, Any]:
    """One request over a fresh connection: (status, Content-Type, decoded body: JSON when the
    response is JSON, else text)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": accept, "Content-Type": content_type}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read().decode()
        ctype = response.getheader("Content-Type") or ""
        decoded = json.loads(data) if ctype.startswith("application/json") else data
        return response.status, ctype, decoded
    finally:
        conn.close()


def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` every 2 ms until it holds or ``timeout`` passes (for state no
    condition variable announces, such as an informer's revision)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        pause.wait(0.002)
    return True


def describe(obj: Any) -> str:
    if isinstance(obj, DeletedFinalStateUnknown):
        return f"tombstone:{obj.key}"
    return f"{obj.metadata.name}@{obj.metadata.resource_version}"


class Recorder:
    """An event handler that records ``add n@3``, ``update n@3->n@4``, ``delete n@5``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[str] = []
        self.deleted: list[Any] = []

    def _record(self, text: str) -> None:
        with self._cond:
            self.events.append(text)
            self._cond.notify_all()

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self._record(f"add {describe(obj)}")

    def on_update(self, old: Any, new: Any) -> None:
        self._record(f"update {describe(old)}->{describe(new)}")

    def on_delete(self, obj: Any) -> None:
        with self._cond:
            self.deleted.append(obj)
        self._record(f"delete {describe(obj)}")

    def wait_for(self, count: int, timeout: float = WAIT) -> list[str]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.events) >= count, timeout)
            return list(self.events)


class Running:
    """Runs informers in threads; stops and joins them all at teardown."""

    def __init__(self) -> None:
        self._runs: list[tuple[threading.Event, threading.Thread]] = []

    def start(self, informer: SharedIndexInformer[Any]) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(
            target=informer.run, args=(stop,), name=f"test-{informer.name}", daemon=True
        )
        thread.start()
        self._runs.append((stop, thread))
        return stop

    def stop_all(self) -> None:
        for stop, _ in self._runs:
            stop.set()
        for _, thread in self._runs:
            thread.join(WAIT)
            assert not thread.is_alive(), f"{thread.name} did not stop"


@pytest.fixture
def running() -> Iterator[Running]:
    runs = Running()
    try:
        yield runs
    finally:
        runs.stop_all()
