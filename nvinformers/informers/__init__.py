"""Shared informers for the Device API: ``SharedInformerFactory`` and the GPU informer."""

from nvinformers.informers._factory import GPUInformer, SharedInformerFactory, new_gpu_informer

__all__ = ["SharedInformerFactory", "GPUInformer", "new_gpu_informer"]
