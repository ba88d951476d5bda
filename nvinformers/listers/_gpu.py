"""The GPU lister: ``get`` and ``list`` GPUs from an informer's cache.

Mirrors a client-go generated lister (``listers/<group>/<version>/<kind>.go``) for the
cluster-scoped ``gpus.device.nvidia.com`` resource::

    lister = factory.device().v1alpha1().gpus().lister()
    gpu = lister.get("gpu-0")                       # NotFoundError if not cached
    ready_rack_a = lister.list("rack=a")            # or labels.parse("rack=a")
"""

from __future__ import annotations

from nvinformers.api.device.v1alpha1 import GPU, RESOURCE
from nvinformers.cache import Indexer
from nvinformers.listers._lister import Lister

__all__ = ["GPULister"]


class GPULister(Lister[GPU]):
    """Read-only access to the GPUs in an informer's cache (cluster-scoped, keyed by name).

    ``get(name) -> GPU`` raises :class:`nvinformers.errors.NotFoundError`
    (``gpus.device.nvidia.com "gpu-9" not found``) exactly like the clientset;
    ``list(selector=None) -> list[GPU]`` filters by labels. See :class:`Lister` for the rest.

    The indexer must key GPUs by name alone
    (:func:`~nvinformers.cache._keys.cluster_scoped_key_func`, as the GPU informer does), so that a
    GPU a server stamped with ``namespace: default`` is still found by ``get("gpu-0")``.

    Sharing: the GPUs returned are the cached objects, shared with every reader; they are
    immutable, so no reader can corrupt the cache. Blocking: each call takes the store lock
    briefly; label matching runs after it is released.
    """

    __slots__ = ()

    def __init__(self, indexer: Indexer[GPU]) -> None:
        """Create a GPU lister over ``indexer`` (``informer.get_indexer()``)."""
        super().__init__(indexer, resource=RESOURCE, namespaced=False)
