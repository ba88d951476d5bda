"""Fixtures for the reliability tests: a FakeServer on a real Unix socket, a clientset, and
informers that are always stopped and joined."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import BackoffConfig, SharedIndexInformer
from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.informers import new_gpu_informer
from nvinformers.testing import FakeServer

#: Upper bound of every wait; reached only when a test fails.
WAIT = 10.0
#: Fast backoff so that recoveries do not dominate test time.
FAST_BACKOFF = BackoffConfig(initial=0.02, cap=0.1)


class RunInformer:
    """Builds GPU informers over a clientset and runs each on a thread (see :meth:`__call__`);
    :meth:`stop_all` stops and joins them (also done at teardown)."""

    def __init__(self) -> None:
        self._running: list[tuple[threading.Event, threading.Thread]] = []

    def __call__(
        self, clientset: Clientset, handlers: tuple[Any, ...] = (), **options: Any
    ) -> SharedIndexInformer[GPU]:
        """Start an informer with ``handlers`` (named ``handler-0``...); ``options`` go to
        :func:`new_gpu_informer` (default: a fast backoff and a fresh registry)."""
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("registry", CollectorRegistry())
        informer = new_gpu_informer(clientset, **options)
        for i, handler in enumerate(handlers):
            informer.add_event_handler(handler, name=f"handler-{i}")
        stop = threading.Event()
        thread = threading.Thread(target=informer.run, args=(stop,), name="test-informer")
        thread.start()
        self._running.append((stop, thread))
        return informer

    def stop_all(self) -> None:
        """Stop every informer started so far and wait for its thread (before closing the
        clientset it uses)."""
        running, self._running = self._running, []
        for stop, _ in running:
            stop.set()
        for _, thread in running:
            thread.join(WAIT)
            assert not thread.is_alive(), "an informer did not stop"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, bookmark_interval=None, seed=5) as srv:
        yield srv


@pytest.fixture
def clientset(server: FakeServer) -> Iterator[Clientset]:
    with new_for_config(Config(target=server.target, metrics_registry=CollectorRegistry())) as cs:
        yield cs


@pytest.fixture
def run_informer() -> Iterator[RunInformer]:
    runner = RunInformer()
    yield runner
    runner.stop_all()


def cache_matches_server(informer: SharedIndexInformer[GPU], server: FakeServer) -> bool:
    cached = {g.metadata.name: g.metadata.resource_version for g in informer.get_indexer().list()}
    actual = {g.metadata.name: g.metadata.resource_version for g in server.list_gpus().items}
    return cached == actual


def nvinformers_records(records: list[Any], level: int) -> list[Any]:
    """Log records of the nvinformers loggers at ``level`` or above."""
    return [r for r in records if r.name.startswith("nvinformers") and r.levelno >= level]
