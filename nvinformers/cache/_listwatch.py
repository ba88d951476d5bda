"""The list-watch protocol a reflector consumes, and ``ListWatch``, its function adapter.

The cache never sees gRPC: anything that can list objects and watch them from a resource version
can feed an informer (the GPU clientset, the fake clientset, the Kubernetes API source).

Cancellation (client-go's ``ListerWatcherWithContext``): a source that can abort a list in flight
also implements :class:`CancellableLister` (``list_with_cancel(options, cancel)``). The reflector
then fires the token when it is stopped, so a list that the server never answers does not hold
the shutdown; other sources' lists run to their own deadline. A watch is stopped through its
``stop()``, which every watch has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar, runtime_checkable

from nvinformers.cancel import CancelToken
from nvinformers.options import ListOptions
from nvinformers.watch import Interface as WatchInterface

__all__ = [
    "ListMetaLike",
    "ListResult",
    "ListerWatcher",
    "CancellableLister",
    "ListWatch",
    "TweakListOptionsFunc",
]

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


@runtime_checkable
class CancellableLister(Protocol[T_co]):
    """A source whose lists can be aborted from another thread (see the module docstring).

    ``list_with_cancel`` blocks like ``list``, and raises (any :class:`StatusError`; the
    clientset raises ``ServiceUnavailableError`` with code CANCELLED) soon after ``cancel`` fires.
    """

    def list_with_cancel(self, options: ListOptions, cancel: CancelToken) -> ListResult[T_co]: ...


#: A list function that honours a cancel token (``lambda o, c: gpus.list(o, cancel=c)``).
ListWithCancelFunc = Callable[[ListOptions, CancelToken], ListResult[T]]


class ListWatch(Generic[T]):
    """A :class:`ListerWatcher` made of functions, with an optional options tweak.

    Example::

        gpus = clientset.device_v1alpha1().gpus()
        lw = ListWatch(list_func=gpus.list, watch_func=gpus.watch,
                       tweak_list_options=lambda o: replace(o, label_selector="rack=a"))
        lw = ListWatch(list_with_cancel_func=lambda o, c: gpus.list(o, cancel=c),
                       watch_func=gpus.watch)   # lists a stopped informer can abort

    Give ``list_func``, ``list_with_cancel_func`` or both (client-go's ``ListFunc`` and
    ``ListWithContextFunc``). It is always a :class:`CancellableLister`: without
    ``list_with_cancel_func``, ``list_with_cancel`` calls ``list_func`` and ignores the token.

    Thread-safety: as thread-safe as the functions it wraps (the clientset's are).

    Raises:
        ValueError: neither list function was given.
    """

    __slots__ = ("_list", "_list_with_cancel", "_watch", "_tweak")

    def __init__(
        self,
        *,
        list_func: Callable[[ListOptions], ListResult[T]] | None = None,
        watch_func: Callable[[ListOptions], WatchInterface[T]],
        list_with_cancel_func: ListWithCancelFunc[T] | None = None,
        tweak_list_options: TweakListOptionsFunc | None = None,
    ) -> None:
        if list_func is None and list_with_cancel_func is None:
            raise ValueError("ListWatch needs list_func or list_with_cancel_func")
        self._list = list_func
        self._list_with_cancel = list_with_cancel_func
        self._watch = watch_func
        self._tweak = tweak_list_options

    def list(self, options: ListOptions) -> ListResult[T]:
        """List with ``options`` (after the tweak). Blocks for one round trip."""
        if self._tweak is not None:
            options = self._tweak(options)
        if self._list is None:
            assert self._list_with_cancel is not None
            return self._list_with_cancel(options, CancelToken())
        return self._list(options)

    def list_with_cancel(self, options: ListOptions, cancel: CancelToken) -> ListResult[T]:
        """List with ``options`` (after the tweak); ``cancel`` aborts it when the list function
        honours it. Blocks for one round trip."""
        if self._tweak is not None:
            options = self._tweak(options)
        if self._list_with_cancel is None:
            assert self._list is not None
            return self._list(options)
        return self._list_with_cancel(options, cancel)

    def watch(self, options: ListOptions) -> WatchInterface[T]:
        """Open a watch with ``options`` (after the tweak)."""
        if self._tweak is not None:
            options = self._tweak(options)
        return self._watch(options)
