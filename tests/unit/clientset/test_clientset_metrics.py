"""Client metrics: one set of collectors per registry, shared by every clientset."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from nvinformers.clientset import Config
from nvinformers.clientset._metrics import client_metrics, short_method


def test_same_registry_same_collectors() -> None:
    registry = CollectorRegistry()
    assert client_metrics(registry) is client_metrics(registry)
    assert client_metrics(CollectorRegistry()) is not client_metrics(registry)


def test_default_registry_is_used_when_none() -> None:
    metrics = client_metrics(None)
    assert client_metrics(REGISTRY) is metrics
    assert client_metrics(Config().metrics_registry) is metrics


def test_two_clientsets_may_share_a_registry(tmp_path: object) -> None:
    from nvinformers.clientset import new_for_config

    registry = CollectorRegistry()
    config = Config(target="unix:///tmp/nvi-metrics-absent.sock", metrics_registry=registry)
    with new_for_config(config) as first, new_for_config(config) as second:
        assert first.metrics is second.metrics


def test_name_clash_leaves_the_registry_unchanged() -> None:
    registry = CollectorRegistry()
    Counter("nvinformers_client_stream_messages_received", "taken", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        client_metrics(registry)
    # Nothing was registered: only the squatter remains.
    names = {metric.name for metric in registry.collect()}
    assert names == {"nvinformers_client_stream_messages_received"}


def test_metric_names_and_labels() -> None:
    registry = CollectorRegistry()
    metrics = client_metrics(registry)
    metrics.requests.labels(method="GetGpu", code="OK").inc()
    metrics.duration.labels(method="GetGpu").observe(0.001)
    metrics.stream_messages.labels(method="WatchGpus").inc(3)
    sample = registry.get_sample_value
    assert sample("nvinformers_client_requests_total", {"method": "GetGpu", "code": "OK"}) == 1
    assert (
        sample(
            "nvinformers_client_request_duration_seconds_bucket",
            {"method": "GetGpu", "le": "0.001"},
        )
        == 1
    )
    assert sample("nvinformers_client_stream_messages_received_total", {"method": "WatchGpus"}) == 3


@pytest.mark.parametrize(
    ("full", "short"),
    [
        ("/nvidia.nvsentinel.v1alpha1.GpuService/ListGpus", "ListGpus"),
        ("ListGpus", "ListGpus"),
        ("/trailing/", "/trailing/"),
    ],
)
def test_short_method(full: str, short: str) -> None:
    assert short_method(full) == short
