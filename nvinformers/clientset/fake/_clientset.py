"""The fake clientset: client-go's ``fake.NewSimpleClientset`` for the Device API, and its
object tracker (client-go's ``testing.ObjectTracker`` for GPUs).

Example::

    from nvinformers.clientset.fake import FakeClientset

    cs = FakeClientset(GPU.new("gpu-0", labels={"rack": "a"}))
    gpus = cs.device_v1alpha1().gpus()
    assert gpus.get("gpu-0").metadata.resource_version == "1"
    cs.tracker.update(GPU.new("gpu-0", labels={"rack": "b"}))   # watches see MODIFIED
    assert [a.verb for a in cs.actions()] == ["get"]

Same surface as :class:`nvinformers.clientset.Clientset` (``device_v1alpha1().gpus()`` with get,
list and watch; the write verbs raise ``MethodNotSupportedError`` as the real client's do), backed
by an :class:`ObjectTracker`. No socket, no gRPC.

Test seams, as in client-go's ``testing.Fake``:

* :meth:`FakeClientset.actions` records every verb called (get, list, watch, and the refused
  writes) with its name and options.
* :meth:`FakeClientset.prepend_reactor` installs a reaction run before the tracker for a verb
  (``"*"`` for all). A reaction receives the :class:`Action` and returns ``(handled, result)``;
  when ``handled`` is true, ``result`` is returned to the caller (a GPU for get, a GPUList for
  list, a watch for watch). A reaction may raise, for example a ``ServiceUnavailableError``, to
  simulate a failing server.

:class:`ObjectTracker` writes GPUs as given, like client-go's (no uid, generation or validation
beyond a name), on the store every fake shares (:mod:`nvinformers.testing.tracker`, which says
where it departs from client-go's: real revisions, watches that replay the history). A resource
version set on a GPU given to :meth:`~ObjectTracker.add` / :meth:`~ObjectTracker.update` is
replaced. Watches behave as the Device API server's (:mod:`nvinformers.testing.storage`): a
revision older than the history (at least ``history_limit`` changes) fails with ``ExpiredError``;
``allow_watch_bookmarks`` lets :meth:`ObjectTracker.send_bookmarks` reach the watch;
``timeout_seconds`` ends it cleanly.

Thread-safety: every method may be called from any thread; no user code runs under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU, RESOURCE, GPUList, ListMeta
from nvinformers.cancel import CancelToken
from nvinformers.clientset._gpus import ReadOnlyVerbs
from nvinformers.errors import BadRequestError, StatusError, qualify
from nvinformers.options import GetOptions, ListOptions
from nvinformers.testing import tracker as store
from nvinformers.testing.storage import (
    StoredGPU,
    already_exists,
    event_gpu,
    expired,
    gpu_matcher,
    key,
    not_found,
)
from nvinformers.watch import Event, EventType
from nvinformers.watch import Interface as WatchInterface

__all__ = [
    "Action",
    "FakeClientset",
    "FakeDeviceV1alpha1Client",
    "FakeGPUClient",
    "Reaction",
    "ObjectTracker",
    "FakeGPUWatch",
    "DEFAULT_HISTORY_LIMIT",
]

_T = TypeVar("_T")

#: Changes kept for watch replay (the Device API server keeps at least the last 1,000 revisions).
DEFAULT_HISTORY_LIMIT = store.DEFAULT_HISTORY_LIMIT


class ObjectTracker:
    """In-memory GPUs with a global revision, history and watches (see the module docstring).

    Args:
        history_limit: how many changes are kept for watch replay (at least).

    Attributes:
        store: the shared store underneath (for fault hooks the GPU verbs do not offer).
    """

    def __init__(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        self.store: store.ObjectTracker[StoredGPU] = store.ObjectTracker(
            history_limit=history_limit
        )

    # -- writes ----------------------------------------------------------------------------------

    def add(self, gpu: GPU) -> GPU:
        """Store a new GPU at the next revision; open watches see ADDED.

        Returns:
            The stored GPU (its ``resource_version`` is the new revision).

        Raises:
            ValueError: the GPU has no name.
            AlreadyExistsError: a GPU of that name exists.
        """
        name = _name_of(gpu)
        return _stored_gpu(name, lambda: self.store.create(key(name), _build(gpu)))

    def update(self, gpu: GPU) -> GPU:
        """Replace a GPU at the next revision; open watches see MODIFIED.

        Raises:
            ValueError: the GPU has no name.
            NotFoundError: no GPU of that name exists.
        """
        name = _name_of(gpu)
        return _stored_gpu(name, lambda: self.store.update(key(name), _build(gpu)))

    def delete(self, name: str) -> GPU:
        """Delete a GPU at the next revision; open watches see DELETED with its last state.

        Returns:
            The deleted GPU's last state, stamped with the deletion's revision.

        Raises:
            NotFoundError: no GPU of that name exists.
        """
        return _stored_gpu(name, lambda: self.store.delete(key(name)))

    # -- reads -----------------------------------------------------------------------------------

    def get(self, name: str) -> GPU:
        """The GPU ``name``.

        Raises:
            NotFoundError: no such GPU.
        """
        return _stored_gpu(name, lambda: self.store.get(key(name)))

    def list(self, label_selector: str = "") -> GPUList:
        """Every GPU (matching ``label_selector``), sorted by name, and the current revision.

        Raises:
            BadRequestError: the selector does not parse.
        """
        records, revision = self.store.list(RESOURCE, "", _matcher(label_selector))
        return GPUList(
            items=tuple(r.gpu for r in records),
            metadata=ListMeta(resource_version=str(revision)),
        )

    @property
    def resource_version(self) -> str:
        """The current revision ("0" before the first write)."""
        return str(self.store.revision)

    # -- watches ---------------------------------------------------------------------------------

    def watch(self, opts: ListOptions | None = None) -> FakeGPUWatch:
        """Open a watch (see the module docstring for what it delivers).

        Errors the server would report on the stream (a bad resource version or selector, an
        expired revision) are raised by the watch's first ``next()``, as with the real client.
        """
        opts = ListOptions() if opts is None else opts
        deadline = (
            time.monotonic() + opts.timeout_seconds if opts.timeout_seconds is not None else None
        )
        try:
            matches = _matcher(opts.label_selector)
            since, initial = _start(opts)
            watcher = self.store.watch(
                RESOURCE,
                matches=matches,
                since=since,
                initial_events=initial,
                initial_events_end=bool(opts.send_initial_events) and opts.allow_watch_bookmarks,
                bookmarks=opts.allow_watch_bookmarks,
            )
        except store.RevisionExpiredError as exc:
            return FakeGPUWatch(self.store, None, deadline, expired(exc))
        except BadRequestError as exc:
            return FakeGPUWatch(self.store, None, deadline, exc)
        return FakeGPUWatch(self.store, watcher, deadline, None)

    def send_bookmarks(self) -> int:
        """Send a progress BOOKMARK (current revision) to every watch that allows bookmarks.

        Returns:
            How many watches received one.
        """
        return self.store.send_bookmarks()

    def close_watches(self, error: StatusError | None = None) -> int:
        """End every open watch after the events already queued for it.

        Args:
            error: None ends them cleanly (like a server-side timeout); an error is raised by
                their ``next()`` (for example ``ExpiredError`` or ``ServiceUnavailableError``).

        Returns:
            How many watches were closed.
        """
        return self.store.end_watches(error, drain=True)

    def compact(self, revision: int | None = None) -> int:
        """Forget history up to ``revision`` (default: all of it); older watches then expire.

        Returns:
            The compacted revision.
        """
        return self.store.compact(revision)

    @property
    def open_watches(self) -> int:
        """Number of watches currently open."""
        return self.store.watcher_count


def _name_of(gpu: GPU) -> str:
    if not isinstance(gpu, GPU):
        raise ValueError(f"the fake tracker stores GPUs, got {type(gpu).__name__}")
    name = gpu.metadata.name
    if not name:
        raise ValueError("a GPU needs metadata.name to be stored")
    return name


def _stored_gpu(name: str, call: Callable[[], StoredGPU]) -> GPU:
    """The GPU ``call`` returns, the store's errors as the server's."""
    try:
        return call().gpu
    except store.ObjectNotFoundError:
        raise not_found(name) from None
    except store.ObjectExistsError:
        raise already_exists(name) from None


def _build(gpu: GPU) -> Callable[[int], StoredGPU]:
    msg = gpu.to_proto()
    return lambda revision: StoredGPU.stamp(msg, revision)


def _matcher(selector: str) -> store.Matcher[StoredGPU] | None:
    """The store's filter for a label selector ("" matches everything).

    Raises:
        BadRequestError: the selector does not parse (the server answers INVALID_ARGUMENT).
    """
    try:
        return gpu_matcher(labels.parse(selector) if selector else None)
    except ValueError as exc:
        raise BadRequestError(
            f"bad request for {qualify(RESOURCE)}: {exc}", resource=qualify(RESOURCE)
        ) from exc


def _start(opts: ListOptions) -> tuple[int | None, bool]:
    try:
        return store.watch_start(opts.resource_version, opts.send_initial_events)
    except ValueError as exc:
        raise BadRequestError(str(exc), resource=qualify(RESOURCE)) from None


class FakeGPUWatch(WatchInterface[GPU]):
    """A watch on an :class:`ObjectTracker`; implements :class:`nvinformers.watch.Interface`.

    Iteration ends after ``stop()``, after ``timeout_seconds``, or after
    :meth:`ObjectTracker.close_watches`; errors the server would send on the stream are raised
    by ``next()``, after which iteration ends.

    Thread-safety: iterate from one thread; ``stop()`` from any thread, any number of times.
    Blocking: ``next()`` blocks until an event arrives or the watch ends.
    """

    def __init__(
        self,
        tracker: store.ObjectTracker[StoredGPU],
        watcher: store.Watcher[StoredGPU] | None,
        deadline: float | None,
        error: StatusError | None,
    ) -> None:
        self._tracker = tracker
        self._watcher = watcher
        self._events = iter(()) if watcher is None else tracker.events(watcher, deadline=deadline)
        self._error = error  # raised by the first next(): the watch never opened
        self._stopped = False
        self._rv = ""

    def __next__(self) -> Event[GPU]:
        item = next(self._events, None)
        if isinstance(item, list):
            gpu = event_gpu(item[0])
            self._rv = gpu.metadata.resource_version
            return Event(EventType(item[0].type), gpu)
        # Ended, or timeout_seconds passed: the watch is over.
        self._events = iter(())
        if self._watcher is not None:
            self._tracker.unwatch(self._watcher)
        error, self._error = self._error, None
        reason = item.reason if item is not None else error
        if isinstance(reason, StatusError):
            raise reason
        raise StopIteration

    def stop(self) -> None:
        """End the watch; a ``next()`` blocked in another thread returns. Idempotent."""
        self._stopped = True
        if self._watcher is not None:
            self._tracker.unwatch(self._watcher)

    @property
    def resource_version(self) -> str:
        """Resource version of the last event returned; "" before any."""
        return self._rv

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped

    def __repr__(self) -> str:
        return f"FakeGPUWatch(resource_version={self._rv!r}, stopped={self._stopped})"


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
