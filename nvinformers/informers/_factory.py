"""SharedInformerFactory: one informer per resource, started and stopped together.

Mirrors client-go's generated ``informers.SharedInformerFactory``: ask it for informers, start them
with one call that does not block, wait for their caches, and shut everything down with one call
that joins every thread the factory started.

One deliberate difference: an informer asked for *after* ``start`` starts at once, with the stop
event of the latest ``start`` call, and the next ``wait_for_cache_sync`` waits for it too. In
client-go it would stay stopped until ``Start`` is called again, so a lister obtained after
``Start`` silently reads an empty cache forever (``list()`` is empty, ``get`` says NotFound for a
GPU that exists). Asking before ``start`` remains the usual order; after ``shutdown`` nothing
starts.

The factory's typed accessors live here too (client-go's generated ``interface.go`` files and
``gpu.go``): ``factory.device().v1alpha1().gpus()`` is a :class:`GPUInformer`, whose informer
:func:`new_gpu_informer` builds (``NewGPUInformer``: also usable outside any factory).

Example::

    factory = SharedInformerFactory(clientset, resync_period=0.0)
    gpus = factory.device().v1alpha1().gpus()
    gpus.informer().add_event_handler(ResourceEventHandlerFuncs(on_update=print))
    stop = threading.Event()
    factory.start(stop)
    factory.wait_for_cache_sync(stop)
    print(gpus.lister().get("gpu-0"))
    ...
    factory.shutdown()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    wait_for_cache_sync,
)
from nvinformers.cache._reflector import DEFAULT_WATCH_INACTIVITY_TIMEOUT
from nvinformers.cache._reflector_health import DEFAULT_OUTAGE_GRACE
from nvinformers.cancel import CancelToken
from nvinformers.listers import GPULister
from nvinformers.options import ListOptions
from nvinformers.watch import Interface as WatchInterface

if TYPE_CHECKING:
    from nvinformers.clientset import Interface as ClientsetInterface

__all__ = [
    "SharedInformerFactory",
    "NewInformerFunc",
    "DeviceGroup",
    "DeviceV1alpha1",
    "GPUInformer",
    "new_gpu_informer",
]

log = logging.getLogger("nvinformers.informers")

NewInformerFunc = Callable[["SharedInformerFactory"], SharedIndexInformer[Any]]
"""Builds a resource's informer from the factory's settings (client-go's ``NewInformerFunc``)."""


class SharedInformerFactory:
    """Creates and shares informers for the Device API's resources.

    There is no ``namespace`` option (client-go's ``WithNamespace``): the Device API's resources
    are cluster-scoped, and client-go's cluster-scoped informers ignore the factory's namespace, so
    the option could only be silently ignored. A server that stamps namespace ``"default"`` on GPUs
    is tolerated: they are keyed and looked up by name.

    ``resync_period``, ``transform`` and ``registry`` are given to every informer, as
    documented on :class:`~nvinformers.cache.SharedIndexInformer`; ``watch_inactivity_timeout``,
    ``use_watch_list`` and ``outage_grace`` likewise, as on :class:`~nvinformers.cache.Reflector`.

    Args:
        client: the clientset the informers list and watch through.
        tweak_list_options: applied to the options of every list and watch (e.g. a label
            selector, which the server then applies).
        custom_resync: per-resource resync periods (``{"gpus": 30.0}``).
        list_timeout: deadline of each list call, and of a streaming list's initial events
            (its ``initial_events_timeout``), seconds (stopping cancels a list at once).

    Thread-safety: all methods may be called from any thread.
    """

    def __init__(
        self,
        client: ClientsetInterface,
        resync_period: float = 0.0,
        *,
        tweak_list_options: TweakListOptionsFunc | None = None,
        transform: TransformFunc | None = None,
        watch_inactivity_timeout: float | None = DEFAULT_WATCH_INACTIVITY_TIMEOUT,
        custom_resync: dict[str, float] | None = None,
        use_watch_list: bool = False,
        list_timeout: float | None = 60.0,
        outage_grace: float = DEFAULT_OUTAGE_GRACE,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.client = client
        self.default_resync = resync_period
        self.tweak_list_options = tweak_list_options
        self.transform = transform
        self.watch_inactivity_timeout = watch_inactivity_timeout
        self.custom_resync = dict(custom_resync or {})
        self.use_watch_list = use_watch_list
        self.list_timeout = list_timeout
        self.outage_grace = outage_grace
        self.registry = registry
        self._lock = threading.Lock()
        self._informers: dict[str, SharedIndexInformer[Any]] = {}  # guarded by _lock
        self._threads: dict[str, threading.Thread] = {}  # guarded by _lock: started informers
        self._stop = threading.Event()  # stops informers started without a stop event
        self._stop_events: list[threading.Event] = []  # guarded by _lock: set by shutdown()
        self._shutting_down = False  # guarded by _lock

    def resync_for(self, resource: str) -> float:
        """The resync period the factory gives informers of ``resource``."""
        return self.custom_resync.get(resource, self.default_resync)

    def informer_for(self, resource: str, new: NewInformerFunc) -> SharedIndexInformer[Any]:
        """The factory's informer for ``resource``, created with ``new(factory)`` the first time.

        If the factory has been started (and not shut down), a newly created informer starts at
        once with the stop event of the latest :meth:`start` (client-go would wait for another
        ``Start``; see the module docstring). Does not block.
        """
        with self._lock:
            informer = self._informers.get(resource)
            if informer is None:
                informer = new(self)
                self._informers[resource] = informer
                if self._stop_events and not self._shutting_down:
                    self._start_locked(resource, informer, self._stop_events[-1])
            return informer

    def informers(self) -> dict[str, SharedIndexInformer[Any]]:
        """The informers requested so far, by resource (a snapshot)."""
        with self._lock:
            return dict(self._informers)

    def device(self) -> DeviceGroup:
        """Informers of the ``device.nvidia.com`` group."""
        return DeviceGroup(self)

    def start(self, stop: threading.Event | None = None) -> None:
        """Start every informer requested so far that is not running yet. Does not block.

        The informers run until ``stop`` is set (or :meth:`shutdown` is called; without
        ``stop``, only until :meth:`shutdown`). Informers requested later start at once with
        the same ``stop`` (unlike client-go, where ``Start`` must be called again; calling it
        again is harmless). After :meth:`shutdown`, it does nothing.
        """
        with self._lock:
            if self._shutting_down:
                return
            event = self._stop if stop is None else stop
            self._stop_events.append(event)
            for resource, informer in self._informers.items():
                if resource not in self._threads:
                    self._start_locked(resource, informer, event)

    def _start_locked(
        self, resource: str, informer: SharedIndexInformer[Any], stop: threading.Event
    ) -> None:
        thread = threading.Thread(
            target=informer.run,
            args=(stop,),
            name=f"nvinformers-informer-{informer.name}",
            daemon=True,
        )
        self._threads[resource] = thread
        thread.start()

    def wait_for_cache_sync(
        self, stop: threading.Event | None = None, timeout: float | None = None
    ) -> dict[str, bool]:
        """Block until every started informer has synced, ``stop`` is set, or ``timeout``.

        "Started" includes informers asked for after :meth:`start` (they start when asked). The
        informers wake the waiting thread when they sync (:mod:`nvinformers.cache._wait`); an
        informer that stops unsynced ends the wait. Waiting on a factory that has no informer at
        all logs a warning: it returns ``{}`` at once, which is almost always an informer
        requested too late.

        Returns ``{resource: synced}`` for the started informers.
        """
        with self._lock:
            started = {r: self._informers[r] for r in self._threads}
            requested = bool(self._informers)
        if not requested:
            log.warning(
                "wait_for_cache_sync: no informer has been requested from this factory, so "
                "there is nothing to wait for; ask for informers (for example "
                "factory.device().v1alpha1().gpus().informer()) before waiting"
            )
        wait_for_cache_sync(stop, *started.values(), timeout=timeout)
        return {resource: informer.has_synced() for resource, informer in started.items()}

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every informer the factory started and wait for their threads to end.

        Sets the stop events given to :meth:`start` (as client-go's callers close their stop
        channel before ``Shutdown``), then blocks until every informer thread has ended (up to
        ``timeout`` seconds each). Stopping cancels the lists and watches in flight, so this
        does not wait for a server that never answers. After shutdown, :meth:`start` does
        nothing.
        """
        with self._lock:
            self._shutting_down = True
            threads = list(self._threads.values())
            events = [self._stop, *self._stop_events]
        for event in events:
            event.set()
        for thread in threads:
            thread.join(timeout)

    def __enter__(self) -> SharedInformerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class DeviceGroup:
    """Informers of the ``device.nvidia.com`` API group: ``factory.device()``."""

    __slots__ = ("_factory",)

    def __init__(self, factory: SharedInformerFactory) -> None:
        self._factory = factory

    def v1alpha1(self) -> DeviceV1alpha1:
        return DeviceV1alpha1(self._factory)


class DeviceV1alpha1:
    """Informers of ``device.nvidia.com/v1alpha1``: ``factory.device().v1alpha1()``."""

    __slots__ = ("_factory",)

    def __init__(self, factory: SharedInformerFactory) -> None:
        self._factory = factory

    def gpus(self) -> GPUInformer:
        return GPUInformer(self._factory)


class GPUInformer:
    """Access to the factory's shared GPU informer and a lister over its cache."""

    __slots__ = ("_factory",)

    def __init__(self, factory: SharedInformerFactory) -> None:
        self._factory = factory

    def informer(self) -> SharedIndexInformer[GPU]:
        """The factory's one GPU informer (created on first use)."""
        return self._factory.informer_for(RESOURCE, self._new)

    def lister(self) -> GPULister:
        """A lister reading the informer's cache (never the socket)."""
        return GPULister(self.informer().get_indexer())

    @staticmethod
    def _new(factory: SharedInformerFactory) -> SharedIndexInformer[Any]:
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
