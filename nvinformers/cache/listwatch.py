"""The list-watch protocol a reflector consumes, and ``ListWatch``, its function adapter.

The cache never sees gRPC: anything that can list objects and watch them from a resource version
can feed an informer (the GPU clientset, the fake clientset, the Kubernetes API source).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from nvinformers.options import ListOptions
from nvinformers.watch import Interface as WatchInterface

__all__ = ["ListMetaLike", "ListResult", "ListerWatcher", "ListWatch", "TweakListOptionsFunc"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Called with the options of every list and watch; returns the options to send.
TweakListOptionsFunc = Callable[[ListOptions], ListOptions]


class ListMetaLike(Protocol):
    """What a reflector reads from a list's metadata."""

    @property
    def resource_version(self) -> str: ...


class ListResult(Protocol[T_co]):
    """A list response: ``items`` and ``metadata.resource_version`` (``GPUList`` is one)."""

    @property
    def items(self) -> Sequence[T_co]: ...

    @property
    def metadata(self) -> ListMetaLike: ...


class ListerWatcher(Protocol[T_co]):
    """Lists and watches one kind of object.

    ``list`` blocks for one round trip and raises :class:`nvinformers.errors.StatusError` on
    failure. ``watch`` returns a running watch (see :mod:`nvinformers.watch`); failures to open it
    are raised either here or from the first ``next()``.
    """

    def list(self, options: ListOptions) -> ListResult[T_co]: ...

    def watch(self, options: ListOptions) -> WatchInterface[T_co]: ...


class ListWatch(Generic[T]):
    """A :class:`ListerWatcher` made of two functions, with an optional options tweak.

    Example::

        gpus = clientset.device_v1alpha1().gpus()
        lw = ListWatch(list_func=gpus.list, watch_func=gpus.watch,
                       tweak_list_options=lambda o: replace(o, label_selector="rack=a"))

    Thread-safety: as thread-safe as the functions it wraps (the clientset's are).
    """

    __slots__ = ("_list", "_watch", "_tweak")

    def __init__(
        self,
        *,
        list_func: Callable[[ListOptions], ListResult[T]],
        watch_func: Callable[[ListOptions], WatchInterface[T]],
        tweak_list_options: TweakListOptionsFunc | None = None,
    ) -> None:
        self._list = list_func
        self._watch = watch_func
        self._tweak = tweak_list_options

    def list(self, options: ListOptions) -> ListResult[T]:
        """List with ``options`` (after the tweak). Blocks for one round trip."""
        if self._tweak is not None:
            options = self._tweak(options)
        return self._list(options)

    def watch(self, options: ListOptions) -> WatchInterface[T]:
        """Open a watch with ``options`` (after the tweak)."""
        if self._tweak is not None:
            options = self._tweak(options)
        return self._watch(options)
