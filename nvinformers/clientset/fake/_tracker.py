"""The fake clientset's object tracker: client-go's ``testing.ObjectTracker`` for GPUs, on the
store every fake shares (:mod:`nvinformers.testing.tracker`).

:class:`ObjectTracker` writes GPUs as given (no server rules: no uid, generation or validation
beyond a name), like client-go's; the revisions, the history and the watches are those of the
shared store, so the fake behaves like the Device API server where client-go's fake does not:

* **Real revisions.** One global integer revision, bumped by every write; each stored object's
  ``resource_version`` is the revision of its last write, and a list reports the revision it was
  taken at. A resource version set on an object given to :meth:`ObjectTracker.add` /
  :meth:`ObjectTracker.update` is *replaced* (client-go's tracker keeps it). This is what makes
  an informer's list-then-watch correct against the fake.
* **Watch replays history.** A watch from a concrete revision first receives every change after
  it (client-go's fake loses writes made between an informer's LIST and WATCH, which forces
  tests into synchronisation tricks). At least ``history_limit`` changes are kept; a watch from
  an older revision fails with ``ExpiredError`` (the server's OUT_OF_RANGE).
* **Server semantics.** Watch from "" or "0": an ADDED event for every current object, then live
  changes. ``send_initial_events=True``: the current objects as ADDED, then (the watch allowing
  bookmarks) a BOOKMARK annotated ``k8s.io/initial-events-end``; ``False``: from now.
  ``allow_watch_bookmarks``: :meth:`ObjectTracker.send_bookmarks` sends progress bookmarks.
  ``timeout_seconds``: the watch ends cleanly after that long. A label selector filters list and
  watch, turning changes that enter or leave the selection into ADDED and DELETED, as the
  Kubernetes watch cache does. DELETED carries the last state of the object with the deletion's
  revision as its resource version.

Thread-safety: every method may be called from any thread; no user code runs under a lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU, GPUList, ListMeta
from nvinformers.errors import BadRequestError, StatusError, qualify
from nvinformers.options import ListOptions
from nvinformers.testing import tracker as store
from nvinformers.testing.storage import (
    RESOURCE,
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

__all__ = ["ObjectTracker", "FakeGPUWatch", "DEFAULT_HISTORY_LIMIT"]

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
        try:
            return self.store.create(key(name), _build(gpu)).gpu
        except store.ObjectExistsError:
            raise already_exists(name) from None

    def update(self, gpu: GPU) -> GPU:
        """Replace a GPU at the next revision; open watches see MODIFIED.

        Raises:
            ValueError: the GPU has no name.
            NotFoundError: no GPU of that name exists.
        """
        name = _name_of(gpu)
        try:
            return self.store.update(key(name), _build(gpu)).gpu
        except store.ObjectNotFoundError:
            raise not_found(name) from None

    def delete(self, name: str) -> GPU:
        """Delete a GPU at the next revision; open watches see DELETED with its last state.

        Returns:
            The deleted GPU's last state, stamped with the deletion's revision.

        Raises:
            NotFoundError: no GPU of that name exists.
        """
        try:
            return self.store.delete(key(name)).gpu
        except store.ObjectNotFoundError:
            raise not_found(name) from None

    # -- reads -----------------------------------------------------------------------------------

    def get(self, name: str) -> GPU:
        """The GPU ``name``.

        Raises:
            NotFoundError: no such GPU.
        """
        try:
            return self.store.get(key(name)).gpu
        except store.ObjectNotFoundError:
            raise not_found(name) from None

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
