"""Fixtures for the clientset's integration tests: a scripted gRPC server on a real Unix socket
and a clientset (fresh metrics registry, debug logging) pointed at it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.clientset import Clientset, Config, new_for_config

from .clientset_servicer import ScriptedServer, ScriptedServicer

LOGGER = "test.clientset.integration"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def servicer(server: ScriptedServer) -> ScriptedServicer:
    return server.servicer


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def clientset(server: ScriptedServer, registry: CollectorRegistry) -> Iterator[Clientset]:
    config = Config(
        target=server.target, metrics_registry=registry, logger=logging.getLogger(LOGGER)
    )
    with new_for_config(config) as cs:
        yield cs
