"""Listers: read-only, selector-aware views of an informer's cache.

``GPULister`` for GPUs; ``Lister[T]`` / ``NamespaceLister[T]`` for any object with Kubernetes-style
metadata. Objects returned are shared with the cache: never mutate them.
"""

from nvinformers.listers._lister import GPULister, Lister, NamespaceLister, SelectorLike

__all__ = ["GPULister", "Lister", "NamespaceLister", "SelectorLike"]
