"""GPUs built by the class swap are ordinary frozen GPUs, and only a same-layout class can swap."""

from __future__ import annotations

import pytest

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.api.device.v1alpha1._class_swap import GPUSlots, gpu_builder


def test_the_builder_yields_frozen_gpus_with_their_slots_filled() -> None:
    raw = GPU.new("gpu-1", namespace="ns", resource_version="4").to_bytes()
    gpu = gpu_builder(GPU)(raw, "gpu-1", "ns", "4")
    assert type(gpu) is GPU
    assert gpu == GPU.from_bytes(raw)
    assert (gpu.metadata.name, gpu.metadata.namespace, gpu.metadata.resource_version) == (
        "gpu-1",
        "ns",
        "4",
    )
    assert not hasattr(gpu, "__dict__")  # four slots: what a cached GPU costs (S6)
    with pytest.raises(AttributeError, match="immutable"):
        gpu._name = "other"


def test_only_a_class_with_the_gpu_layout_can_be_built() -> None:
    class Wider(GPUSlots):
        __slots__ = ("extra",)

    with pytest.raises(TypeError, match="add no slots"):
        gpu_builder(Wider)
    with pytest.raises(TypeError, match="derive from GPUSlots"):
        gpu_builder(int)  # type: ignore[type-var]
