"""Fixtures: a real FakeServer on a Unix socket, a clientset, informers that are always
stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.cache import BackoffConfig
from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.informers import SharedInformerFactory
from nvinformers.testing import FakeServer

#: Fast backoff so that relists after injected faults do not dominate test time.
FAST_BACKOFF = BackoffConfig(initial=0.01, cap=0.05)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, bookmark_interval=None, seed=7) as srv:
        yield srv


@pytest.fixture
def clientset(server: FakeServer) -> Iterator[Clientset]:
    with new_for_config(Config(target=server.target, metrics_registry=CollectorRegistry())) as cs:
        yield cs


@pytest.fixture
def factory(clientset: Clientset) -> Iterator[Callable[..., SharedInformerFactory]]:
    made: list[SharedInformerFactory] = []

    def make(**kwargs: Any) -> SharedInformerFactory:
        kwargs.setdefault("registry", CollectorRegistry())
        f = SharedInformerFactory(clientset, **kwargs)
        made.append(f)
        return f

    yield make
    for f in made:
        f.shutdown(timeout=10)


def no_informer_threads() -> bool:
    return not [
        t
        for t in threading.enumerate()
        if t.name.startswith("nvinformers-") and not t.name.startswith("nvinformers-fake-server")
    ]
