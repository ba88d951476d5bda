"""The GPU informer: a shared informer over ``gpus`` keyed by name, and its lister.

:class:`InformerFactory` is what a typed informer needs of its factory (client-go's
``informers/internalinterfaces``): :class:`~nvinformers.informers.SharedInformerFactory`
satisfies it, and the typed informer depends on this protocol only, so the factory can import it
without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU, RESOURCE, GPUList
from nvinformers.cache import (
    NAMESPACE_INDEX,
    ListWatch,
    SharedIndexInformer,
    TransformFunc,
    TweakListOptionsFunc,
    cluster_scoped_key_func,
    meta_namespace_index_func,
)
from nvinformers.cancel import CancelToken
from nvinformers.listers import GPULister
from nvinformers.options import ListOptions
from nvinformers.watch import Interface as WatchInterface

if TYPE_CHECKING:
    from nvinformers.clientset import Interface as ClientsetInterface

__all__ = ["GPUInformer", "new_gpu_informer", "InformerFactory", "NewInformerFunc"]

NewInformerFunc = Callable[["InformerFactory"], "SharedIndexInformer[Any]"]
"""Builds a resource's informer from the factory's settings (client-go's ``NewInformerFunc``)."""


class InformerFactory(Protocol):
    """The factory settings and the one-informer-per-resource registry a typed informer uses."""

    @property
    def client(self) -> ClientsetInterface: ...
    @property
    def tweak_list_options(self) -> TweakListOptionsFunc | None: ...
    @property
    def transform(self) -> TransformFunc | None: ...
    @property
    def watch_inactivity_timeout(self) -> float | None: ...
    @property
    def use_watch_list(self) -> bool: ...
    @property
    def list_timeout(self) -> float | None: ...
    @property
    def outage_grace(self) -> float: ...
    @property
    def registry(self) -> CollectorRegistry | None: ...

    def resync_for(self, resource: str) -> float:
        """The resync period for informers of ``resource``."""
        ...

    def informer_for(self, resource: str, new: NewInformerFunc) -> SharedIndexInformer[Any]:
        """The factory's one informer for ``resource``, built with ``new`` the first time."""
        ...


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


class GPUInformer:
    """Access to the factory's shared GPU informer and a lister over its cache."""

    __slots__ = ("_factory",)

    def __init__(self, factory: InformerFactory) -> None:
        self._factory = factory

    def informer(self) -> SharedIndexInformer[GPU]:
        """The factory's one GPU informer (created on first use)."""
        return self._factory.informer_for(RESOURCE, self._new)

    def lister(self) -> GPULister:
        """A lister reading the informer's cache (never the socket)."""
        return GPULister(self.informer().get_indexer())

    @staticmethod
    def _new(factory: InformerFactory) -> SharedIndexInformer[Any]:
        return new_gpu_informer(
            factory.client,
            resync_period=factory.resync_for(RESOURCE),
            list_timeout=factory.list_timeout,
            tweak_list_options=factory.tweak_list_options,
            transform=factory.transform,
            watch_inactivity_timeout=factory.watch_inactivity_timeout,
            use_watch_list=factory.use_watch_list,
            outage_grace=factory.outage_grace,
            registry=factory.registry,
        )
