"""Group and version accessors: ``factory.device().v1alpha1().gpus()``."""

from __future__ import annotations

from nvinformers.informers._gpu import GPUInformer
from nvinformers.informers._interfaces import InformerFactory

__all__ = ["DeviceGroup", "DeviceV1alpha1"]


class DeviceGroup:
    """Informers of the ``device.nvidia.com`` API group."""

    __slots__ = ("_factory",)

    def __init__(self, factory: InformerFactory) -> None:
        self._factory = factory

    def v1alpha1(self) -> DeviceV1alpha1:
        return DeviceV1alpha1(self._factory)


class DeviceV1alpha1:
    """Informers of ``device.nvidia.com/v1alpha1``."""

    __slots__ = ("_factory",)

    def __init__(self, factory: InformerFactory) -> None:
        self._factory = factory

    def gpus(self) -> GPUInformer:
        return GPUInformer(self._factory)
