"""What a typed informer needs of its factory: client-go's ``informers/internalinterfaces``.

:class:`~nvinformers.informers.SharedInformerFactory` satisfies :class:`InformerFactory`; the
group accessors and typed informers depend on this protocol only, so the factory can import them
without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from nvinformers.cache import SharedIndexInformer, TransformFunc, TweakListOptionsFunc
    from nvinformers.clientset import Interface as ClientsetInterface

__all__ = ["InformerFactory", "NewInformerFunc"]

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
