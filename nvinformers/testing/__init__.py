"""Test helpers: the fake Device API server and a fake Kubernetes API server.

:class:`FakeServer` is a real gRPC server on a real Unix socket with the semantics of the Device
API server (revisions, history replay, "too old" expiry, bookmarks, streaming lists, label
selectors) and fault injection; ``server.hostile`` (:class:`Hostility`) makes it misbehave on
purpose: hung calls, silent or flapping watches, garbage responses, revisions that are not decimal
integers or that go backwards. It is also the console command ``nvinformers fake-server``
(:func:`main_fake_server`) and ``python -m nvinformers.testing``.

:class:`FakeKubeAPIServer` speaks the Kubernetes list/watch protocol over loopback HTTP (nodes and
pods), so the official ``kubernetes`` client and :mod:`nvinformers.kube` run end to end in tests.

Both, and the fake clientset (:mod:`nvinformers.clientset.fake`), keep their objects in one kind
of store, :class:`nvinformers.testing.tracker.ObjectTracker` (revisions, history with compaction,
filtered watches, fault hooks), and add only their protocol. That module and
:mod:`nvinformers.testing.storage` (GPUs in it) import no gRPC.

The names are imported when first used, so that ``python -m nvinformers.testing`` can handle
Ctrl-C before it loads gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nvinformers.testing._hostile import (
        ALPHA_REVISIONS,
        BACKWARD_REVISIONS,
        EXPONENT_REVISIONS,
        GARBAGE,
        NEGATIVE_REVISIONS,
        Hostility,
        RevisionCodec,
    )
    from nvinformers.testing._server import (
        DEFAULT_MAX_WORKERS,
        DEFAULT_SOCKET_PATH,
        INITIAL_EVENTS_END_ANNOTATION,
        NOT_READY_RECOMMENDED_ACTION,
        READY_CONDITION,
        SOCK_ENV,
        TARGET_ENV,
        FakeServer,
        FakeServerError,
        main_fake_server,
    )
    from nvinformers.testing.kube_api import FakeKubeAPIError, FakeKubeAPIServer

__all__ = [
    "FakeServer",
    "FakeServerError",
    "main_fake_server",
    "FakeKubeAPIServer",
    "FakeKubeAPIError",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_MAX_WORKERS",
    "TARGET_ENV",
    "SOCK_ENV",
    "READY_CONDITION",
    "NOT_READY_RECOMMENDED_ACTION",
    "INITIAL_EVENTS_END_ANNOTATION",
    "Hostility",
    "RevisionCodec",
    "GARBAGE",
    "ALPHA_REVISIONS",
    "NEGATIVE_REVISIONS",
    "EXPONENT_REVISIONS",
    "BACKWARD_REVISIONS",
]

_KUBE = ("FakeKubeAPIServer", "FakeKubeAPIError")
_HOSTILE = (
    "Hostility",
    "RevisionCodec",
    "GARBAGE",
    "ALPHA_REVISIONS",
    "NEGATIVE_REVISIONS",
    "EXPONENT_REVISIONS",
    "BACKWARD_REVISIONS",
)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'nvinformers.testing' has no attribute {name!r}")
    module = "kube_api" if name in _KUBE else "_hostile" if name in _HOSTILE else "_server"
    return getattr(importlib.import_module(f"nvinformers.testing.{module}"), name)


def __dir__() -> list[str]:
    # The lazy names too (a module's default dir() lists only what is already imported).
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
