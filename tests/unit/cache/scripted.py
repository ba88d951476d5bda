"""A scripted list-watch source for reflector and informer unit tests.

The test decides what every list and watch call returns or raises, and pushes events into open
watches; calls are recorded and can be waited for. Nothing here sleeps: waits are on conditions.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from nvinformers.api.device.v1alpha1 import GPU, GPUList, ListMeta
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION, ListOptions
from nvinformers.watch import Event, EventType

WAIT = 10.0


def gpu(name: str, rv: int | str, **labels: str) -> GPU:
    return GPU.new(name, resource_version=str(rv), uuid=f"GPU-{name}", labels=labels or None)


class _ClientMeta:
    def __init__(self, name: str, namespace: str | None, rv: str) -> None:
        self.name = name
        self.namespace = namespace
        self.resource_version = rv


class ClientModel:
    """An object whose header is read through ``metadata`` (like a Kubernetes client model)."""

    def __init__(self, name: str, namespace: str | None = None, rv: str = "1") -> None:
        self.metadata = _ClientMeta(name, namespace, rv)


def bookmark(rv: int | str, *, initial_end: bool = False) -> Event[GPU]:
    annotations = {INITIAL_EVENTS_END_ANNOTATION: "true"} if initial_end else None
    return Event(EventType.BOOKMARK, GPU.new("", resource_version=str(rv), annotations=annotations))


class ScriptedWatch:
    """A watch whose events, end and errors are pushed by the test."""

    _END = object()

    def __init__(self, options: ListOptions) -> None:
        self.options = options
        self._cond = threading.Condition()
        self._items: deque[Any] = deque()
        self.stopped = False
        self.finished = threading.Event()

    def push(self, *events: Event[GPU]) -> None:
        with self._cond:
            self._items.extend(events)
            self._cond.notify_all()

    def end(self) -> None:
        """End the stream cleanly (like a server timeout)."""
        with self._cond:
            self._items.append(self._END)
            self._cond.notify_all()

    def fail(self, err: BaseException) -> None:
        """End the stream with an error raised from next()."""
        with self._cond:
            self._items.append(err)
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Event[GPU]]:
        return self

    def __next__(self) -> Event[GPU]:
        with self._cond:
            while not self._items and not self.stopped:
                self._cond.wait()
            if self.stopped or self._items[0] is self._END:
                self.finished.set()
                raise StopIteration
            item = self._items.popleft()
        if isinstance(item, BaseException):
            self.finished.set()
            raise item
        assert isinstance(item, Event)
        return item

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def __enter__(self) -> ScriptedWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ScriptedListerWatcher:
    """Lists return the next scripted result (or raise it); watches return ScriptedWatch objects.

    With nothing scripted, ``list`` returns ``default_list`` and ``watch`` opens a fresh watch.
    A scripted watch entry may be an exception (raised by ``watch()``) or a callable that gets
    the new ScriptedWatch (to pre-load events).
    """

    default_list: list[GPU] = field(default_factory=list)
    default_list_rv: str = "10"
    lists: deque[Any] = field(default_factory=deque)
    watch_scripts: deque[Any] = field(default_factory=deque)
    calls: list[tuple[str, ListOptions]] = field(default_factory=list)
    watches: list[ScriptedWatch] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def list(self, options: ListOptions) -> GPUList:
        with self._cond:
            self.calls.append(("list", options))
            self._cond.notify_all()
            script = self.lists.popleft() if self.lists else None
        if isinstance(script, BaseException):
            raise script
        if script is None:
            return GPUList(
                items=tuple(self.default_list),
                metadata=ListMeta(resource_version=self.default_list_rv),
            )
        assert isinstance(script, GPUList)
        return script

    def watch(self, options: ListOptions) -> ScriptedWatch:
        with self._cond:
            self.calls.append(("watch", options))
            script = self.watch_scripts.popleft() if self.watch_scripts else None
            if isinstance(script, BaseException):
                self._cond.notify_all()
                raise script
            w = ScriptedWatch(options)
            if callable(script):
                script(w)
            self.watches.append(w)
            self._cond.notify_all()
            return w

    def count(self, kind: str) -> int:
        with self._cond:
            return sum(1 for k, _ in self.calls if k == kind)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_calls(self, kind: str, n: int, timeout: float = WAIT) -> bool:
        return self.wait_for(lambda: sum(1 for k, _ in self.calls if k == kind) >= n, timeout)

    def options(self, kind: str, index: int) -> ListOptions:
        with self._cond:
            return [o for k, o in self.calls if k == kind][index]

    def watch_at(self, index: int) -> ScriptedWatch:
        assert self.wait_for(lambda: len(self.watches) > index), f"no watch #{index}"
        with self._cond:
            return self.watches[index]


def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` (every 2 ms) until it holds or ``timeout`` passes.

    For state that no condition variable announces (counters, flags); returns as soon as it holds.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        pause.wait(0.002)
    return True
