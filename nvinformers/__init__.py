"""nvinformers: the Python SDK for the node-local NVIDIA Device API.

A Python peer of client-go: a read-only clientset for GPUs over gRPC, shared informers with an
indexed cache, listers, a rate-limited workqueue and a reconcile loop.

``Config`` and the other heavy names are imported lazily, so ``import nvinformers.workqueue`` or
``import nvinformers.cache`` does not load gRPC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvinformers._version import __version__

if TYPE_CHECKING:
    from nvinformers.api.device.v1alpha1._types import GPU, Condition, GPUList
    from nvinformers.clientset._config import Config
    from nvinformers.options import GetOptions, ListOptions

__all__ = ["__version__", "Config", "GPU", "GPUList", "Condition", "ListOptions", "GetOptions"]

_LAZY = {
    "Config": "nvinformers.clientset._config",
    "GPU": "nvinformers.api.device.v1alpha1._types",
    "GPUList": "nvinformers.api.device.v1alpha1._types",
    "Condition": "nvinformers.api.device.v1alpha1._types",
    "ListOptions": "nvinformers.options",
    "GetOptions": "nvinformers.options",
}


#: The subpackages and modules, listed by ``dir(nvinformers)`` next to the lazy names.
_SUBMODULES = (
    "aio", "api", "cache", "cancel", "clientset", "clock", "controller", "errors", "informers",
    "kube", "labels", "listers", "meta", "options", "signals", "testing", "watch", "workqueue",
)  # fmt: skip


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:  # nvinformers.cache without an import statement, as after one
        return importlib.import_module(f"nvinformers.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nvinformers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public names, the lazy ones included, and the subpackages (for completion)."""
    dunders = (name for name in globals() if name.startswith("__"))
    return sorted({*__all__, *_SUBMODULES, *dunders})
