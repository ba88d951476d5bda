"""The fake clientset: client-go's ``fake.NewSimpleClientset`` for the Device API.

Example::

    from nvinformers.clientset.fake import FakeClientset

    cs = FakeClientset(GPU.new("gpu-0", labels={"rack": "a"}))
    gpus = cs.device_v1alpha1().gpus()
    assert gpus.get("gpu-0").metadata.resource_version == "1"
    cs.tracker.update(GPU.new("gpu-0", labels={"rack": "b"}))   # watches see MODIFIED
    assert [a.verb for a in cs.actions()] == ["get"]

Same surface as :class:`nvinformers.clientset.Clientset` (``device_v1alpha1().gpus()`` with get,
list and watch; the write verbs raise ``MethodNotSupportedError`` as the real client's do), backed
by an :class:`~nvinformers.clientset.fake._tracker.ObjectTracker` (real revisions, watch replay:
see its module docstring). No socket, no gRPC.

Test seams, as in client-go's ``testing.Fake``:

* :meth:`FakeClientset.actions` records every verb called (get, list, watch, and the refused
  writes) with its name and options.
* :meth:`FakeClientset.prepend_reactor` installs a reaction run before the tracker for a verb
  (``"*"`` for all). A reaction receives the :class:`Action` and returns ``(handled, result)``;
  when ``handled`` is true, ``result`` is returned to the caller (a GPU for get, a GPUList for
  list, a watch for watch). A reaction may raise, for example a ``ServiceUnavailableError``, to
  simulate a failing server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar

from nvinformers.api.device.v1alpha1 import GPU, RESOURCE, GPUList
from nvinformers.cancel import CancelToken
from nvinformers.clientset._gpus import ReadOnlyVerbs
from nvinformers.clientset.fake._tracker import DEFAULT_HISTORY_LIMIT, ObjectTracker
from nvinformers.options import GetOptions, ListOptions
from nvinformers.watch import Interface as WatchInterface

__all__ = ["Action", "FakeClientset", "FakeDeviceV1alpha1Client", "FakeGPUClient", "Reaction"]

_T = TypeVar("_T")

#: A reaction: given the action, return ``(handled, result)``, or raise.
Reaction = Callable[["Action"], tuple[bool, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One recorded call on the fake clientset.

    Attributes:
        verb: ``get``, ``list``, ``watch``, or a refused write (``create``, ``update``,
            ``update_status``, ``delete``, ``patch``).
        resource: always ``"gpus"``.
        name: the object name for get, delete and patch ("" otherwise).
        options: the ListOptions / GetOptions given (None if none).
    """

    verb: str
    resource: str = RESOURCE
    name: str = ""
    options: ListOptions | GetOptions | None = None


class FakeGPUClient(ReadOnlyVerbs):
    """The fake's GPU client (same verbs and errors as :class:`~nvinformers.clientset.GPUClient`).

    Thread-safety: safe for concurrent use.
    """

    __slots__ = ("_fake",)

    def __init__(self, fake: FakeClientset) -> None:
        self._fake = fake

    def get(
        self,
        name: str,
        opts: GetOptions | None = None,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> GPU:
        """The GPU ``name`` from the tracker (``opts.resource_version`` is ignored; the call never
        blocks, so ``timeout`` and ``cancel`` have nothing to end).

        Raises:
            ValueError: ``name`` is empty.
            NotFoundError: no such GPU.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"GPU name must be a non-empty string, got {name!r}")
        handled, result = self._fake._invoke(Action(verb="get", name=name, options=opts))
        if handled:
            return _expect(result, GPU, "get")
        return self._fake.tracker.get(name)

    def list(
        self,
        opts: ListOptions | None = None,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> GPUList:
        """The tracker's GPUs matching ``opts.label_selector``, at the current revision (never
        blocks: ``timeout`` and ``cancel`` have nothing to end).

        Raises:
            BadRequestError: the label selector does not parse.
        """
        handled, result = self._fake._invoke(Action(verb="list", options=opts))
        if handled:
            return _expect(result, GPUList, "list")
        return self._fake.tracker.list(opts.label_selector if opts is not None else "")

    def watch(self, opts: ListOptions | None = None) -> WatchInterface[GPU]:
        """A watch on the tracker (replays history after ``opts.resource_version``)."""
        handled, result = self._fake._invoke(Action(verb="watch", options=opts))
        if handled:
            if not hasattr(result, "stop") or not hasattr(result, "__next__"):
                raise TypeError(f"a watch reaction must return a watch, got {result!r}")
            watch: WatchInterface[GPU] = result
            return watch
        return self._fake.tracker.watch(opts)

    def _read_only(self, verb: str) -> NoReturn:
        self._fake._record(Action(verb=verb))
        super()._read_only(verb)


def _expect(result: object, kind: type[_T], verb: str) -> _T:
    if not isinstance(result, kind):
        raise TypeError(f"a {verb} reaction must return a {kind.__name__}, got {result!r}")
    return result


class FakeDeviceV1alpha1Client:
    """The fake's ``device.nvidia.com/v1alpha1`` group client."""

    __slots__ = ("_gpus",)

    def __init__(self, gpus: FakeGPUClient) -> None:
        self._gpus = gpus

    def gpus(self) -> FakeGPUClient:
        """The GPU client (the same object on every call)."""
        return self._gpus


class FakeClientset:
    """An in-memory clientset for tests (see the module docstring).

    Args:
        *objects: GPUs to store initially (each gets the next revision: "1", "2", ...).
        history_limit: changes kept for watch replay.

    Raises:
        ValueError, AlreadyExistsError: an initial object has no name, or two share one.

    Thread-safety: every method may be called from any thread.
    """

    #: The fake has no channel (client-go's fake ``ClientConn()`` returns nil).
    channel: None = None
    target = "fake"

    def __init__(self, *objects: GPU, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        self.tracker = ObjectTracker(history_limit=history_limit)
        for gpu in objects:
            self.tracker.add(gpu)
        self._lock = threading.Lock()
        self._actions: list[Action] = []  # guarded by _lock
        self._reactors: list[tuple[str, Reaction]] = []  # guarded by _lock
        self._closed = False
        self._device = FakeDeviceV1alpha1Client(FakeGPUClient(self))

    def device_v1alpha1(self) -> FakeDeviceV1alpha1Client:
        """The ``device.nvidia.com/v1alpha1`` group client."""
        return self._device

    def actions(self) -> list[Action]:
        """A copy of the actions recorded so far, oldest first."""
        with self._lock:
            return list(self._actions)

    def clear_actions(self) -> None:
        """Forget the recorded actions."""
        with self._lock:
            self._actions.clear()

    def prepend_reactor(self, verb: str, reaction: Reaction) -> None:
        """Run ``reaction`` before the tracker (and before earlier reactors) for ``verb``.

        Args:
            verb: ``"get"``, ``"list"``, ``"watch"``, or ``"*"`` for every verb.
            reaction: called with the :class:`Action` (outside any fake lock); returns
                ``(handled, result)`` or raises.
        """
        with self._lock:
            self._reactors.insert(0, (verb, reaction))

    def _record(self, action: Action) -> None:
        with self._lock:
            self._actions.append(action)

    def _invoke(self, action: Action) -> tuple[bool, Any]:
        with self._lock:
            self._actions.append(action)
            reactors = [r for verb, r in self._reactors if verb in ("*", action.verb)]
        for reaction in reactors:  # user code: never under the lock
            handled, result = reaction(action)
            if handled:
                return True, result
        return False, None

    def close(self) -> None:
        """End every open watch cleanly. Idempotent. (The fake keeps answering calls.)"""
        self._closed = True
        self.tracker.close_watches()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeClientset(resource_version={self.tracker.resource_version!r})"
