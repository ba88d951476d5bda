"""Fixtures for the controller integration tests: a FakeServer on a real Unix socket and a
clientset connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.testing import FakeServer

WAIT = 10.0  # upper bound of any wait; reached only when a test fails


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, bookmark_interval=None, gpus=8, seed=11) as fake:
        yield fake


@pytest.fixture
def clientset(server: FakeServer) -> Iterator[Clientset]:
    cs = new_for_config(Config(target=server.target))
    yield cs
    cs.close()
