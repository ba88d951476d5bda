"""One error hierarchy: every exception class nvinformers defines derives from NvInformersError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import nvinformers
from nvinformers.errors import NvInformersError
from nvinformers.signals import Interrupted

#: BaseExceptions on purpose (see nvinformers.errors): they must not be caught as errors.
NOT_ERRORS = {Interrupted}


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of the package (kube needs its extra)."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(nvinformers.__path__, "nvinformers."):
        if info.name.endswith(("_pb2", "_pb2_grpc", ".__main__")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_exception_class_derives_from_nvinformers_error() -> None:
    classes = exception_classes()
    assert len(classes) >= 25  # the walk found the package's classes
    stray = [
        name
        for name, cls in classes.items()
        if cls not in NOT_ERRORS and not issubclass(cls, NvInformersError)
    ]
    assert stray == []


def test_the_builtin_bases_users_catch_are_kept() -> None:
    from nvinformers.cache import InformerStoppedError, KeyFuncError
    from nvinformers.controller import CacheSyncTimeoutError, ReconcilePanicError
    from nvinformers.labels import SelectorParseError

    assert issubclass(CacheSyncTimeoutError, TimeoutError)
    assert issubclass(InformerStoppedError, RuntimeError)
    assert issubclass(ReconcilePanicError, RuntimeError)
    assert issubclass(KeyFuncError, ValueError)
    assert issubclass(SelectorParseError, ValueError)
    import nvinformers.aio

    assert nvinformers.aio.CacheSyncTimeoutError is CacheSyncTimeoutError
