"""A SharedIndexInformer over a scripted source, run on its own thread: the shared test harness."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import BackoffConfig, SharedIndexInformer, cluster_scoped_key_func
from tests.unit.cache.scripted import WAIT, ScriptedListerWatcher

#: Retries after injected failures in milliseconds, not seconds.
FAST = BackoffConfig(initial=0.001, cap=0.002)


class Harness:
    """A SharedIndexInformer over a scripted source, run on a thread, stopped and joined."""

    def __init__(self, informer: SharedIndexInformer[Any], lw: Any) -> None:
        self.informer = informer
        self.lw = lw
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> Harness:
        self.thread = threading.Thread(
            target=self.informer.run, args=(self.stop,), name="test-informer"
        )
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(WAIT)
            assert not self.thread.is_alive()


H = TypeVar("H", bound=Harness)


@contextmanager
def harness_factory(cls: type[H], default_objects: list[GPU]) -> Iterator[Callable[..., H]]:
    """``make(objects=None, *, lw=None, **informer_kwargs)`` builds harnesses (GPU informers
    keyed by name, fast backoff, a fresh registry, seeded jitter unless given); every harness
    made is closed on exit. Without ``lw``, the source lists ``objects`` (default:
    ``default_objects``)."""
    made: list[H] = []

    def make(objects: list[GPU] | None = None, *, lw: Any = None, **kwargs: Any) -> H:
        if lw is None:
            listed = default_objects if objects is None else objects
            lw = ScriptedListerWatcher(default_list=list(listed))
        kwargs.setdefault("backoff", FAST)
        kwargs.setdefault("registry", CollectorRegistry())
        kwargs.setdefault("rng", random.Random(3))
        informer: SharedIndexInformer[Any] = SharedIndexInformer(
            lw, name="gpus", key_func=cluster_scoped_key_func, **kwargs
        )
        harness = cls(informer, lw)
        made.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in made:
            harness.close()
