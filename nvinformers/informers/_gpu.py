"""The GPU informer: a shared informer over ``gpus`` keyed by name (client-go's
``NewGPUInformer``); the factory hands out the shared one (:class:`GPUInformer`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvinformers.api.device.v1alpha1 import GPU, RESOURCE, GPUList
from nvinformers.cache import (
    NAMESPACE_INDEX,
    ListWatch,
    SharedIndexInformer,
    cluster_scoped_key_func,
    meta_namespace_index_func,
)
from nvinformers.cancel import CancelToken
from nvinformers.options import ListOptions
from nvinformers.watch import Interface as WatchInterface

if TYPE_CHECKING:
    from nvinformers.clientset import Interface as ClientsetInterface

__all__ = ["new_gpu_informer"]


def new_gpu_informer(
    client: ClientsetInterface,
    *,
    resync_period: float = 0.0,
    name: str = RESOURCE,
    list_timeout: float | None = 60.0,
    **options: Any,
) -> SharedIndexInformer[GPU]:
    """Build a standalone GPU informer (outside any factory).

    GPUs are cluster-scoped, so the informer keys them by name even when a server stamps
    namespace "default" on them (``lister.get("gpu-0")`` always works); the ``namespace`` index
    is installed as client-go's generated informers do. ``list_timeout`` is the factory's. Extra
    keyword ``options`` are passed to :class:`~nvinformers.cache.SharedIndexInformer`
    (``tweak_list_options``, as for the factory, is applied by the list-watch).
    """
    gpus = client.device_v1alpha1().gpus()
    tweak = options.pop("tweak_list_options", None)
    # A streaming list is a list: it gets as long for its initial events.
    options.setdefault("initial_events_timeout", list_timeout)

    def list_gpus(opts: ListOptions, cancel: CancelToken) -> GPUList:
        # The token is fired when the informer stops: a list the server never answers is
        # cancelled at once instead of holding the shutdown until list_timeout.
        return gpus.list(opts, timeout=list_timeout, cancel=cancel)

    def watch_gpus(opts: ListOptions) -> WatchInterface[GPU]:
        return gpus.watch(opts)

    lw: ListWatch[GPU] = ListWatch(
        list_with_cancel_func=list_gpus, watch_func=watch_gpus, tweak_list_options=tweak
    )
    indexers = {NAMESPACE_INDEX: meta_namespace_index_func, **options.pop("indexers", {})}
    return SharedIndexInformer(
        lw,
        name=name,
        key_func=cluster_scoped_key_func,
        indexers=indexers,
        resync_period=resync_period,
        **options,
    )
