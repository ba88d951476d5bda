"""GPU views built on the receive path are ordinary, frozen GPUs."""

from __future__ import annotations

import copy
import pickle

import pytest

from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.api.device.v1alpha1._types import gpu_from_wire, gpus_from_wire
from nvinformers.errors import MalformedObjectError


def sample() -> GPU:
    return GPU.new(
        "gpu-3",
        uuid="GPU-3",
        namespace="default",
        resource_version="42",
        labels={"rack": "a"},
        conditions=[Condition(type="Ready", status="True", reason="DriverReady")],
    )


def test_a_gpu_from_the_wire_is_a_frozen_gpu_with_its_header_decoded() -> None:
    gpu = gpu_from_wire(sample().to_bytes())
    assert type(gpu) is GPU
    assert gpu == sample()
    meta = gpu.metadata
    assert (meta.name, meta.namespace, meta.resource_version) == ("gpu-3", "default", "42")
    assert (gpu._name, gpu._namespace, gpu._resource_version) == ("gpu-3", "default", "42")
    assert meta.labels == {"rack": "a"}
    assert gpu.status.conditions[0].reason == "DriverReady"
    for attribute in ("_raw", "_name", "metadata", "anything"):
        with pytest.raises(AttributeError):
            setattr(gpu, attribute, "x")
    with pytest.raises(AttributeError, match="immutable"):
        del gpu._raw
    assert not hasattr(gpu, "__dict__")  # four slots: what a cached GPU costs (S6)
    assert copy.copy(gpu) is gpu
    assert copy.deepcopy(gpu) is gpu
    assert pickle.loads(pickle.dumps(gpu)) == gpu
    with pytest.raises(TypeError, match=r"GPU\.new"):
        GPU()


def test_every_construction_path_yields_the_same_gpu() -> None:
    raw = sample().to_bytes()
    built = [
        GPU.from_bytes(raw),
        GPU.from_bytes(bytes(bytearray(raw))),
        GPU.from_proto(sample().to_proto()),
    ]
    built += list(gpus_from_wire([raw, raw]))
    assert all(g == sample() and g.to_bytes() == raw for g in built)


def test_bytes_that_are_not_a_gpu_are_rejected_at_once() -> None:
    with pytest.raises(MalformedObjectError, match="malformed GPU"):
        gpu_from_wire(b"\x12\xff")
    with pytest.raises(MalformedObjectError):
        gpus_from_wire([sample().to_bytes(), b"\x0a\x05ab"])
