"""The fake clientset's in-memory object store: client-go's ``testing.ObjectTracker`` for GPUs.

Differences from client-go's tracker, on purpose:

* **Real revisions.** One global integer revision, bumped by every write; each stored object's
  ``resource_version`` is the revision of its last write, and a list reports the revision it was
  taken at, exactly like the Device API server. A resource version set on an object given to
  :meth:`ObjectTracker.add` / :meth:`ObjectTracker.update` is *replaced* (client-go's tracker keeps
  it). This is what makes an informer's list-then-watch correct against the fake.
* **Watch replays history.** A watch from a concrete revision first receives every change after
  it (client-go's fake loses writes made between an informer's LIST and WATCH, which forces
  tests into synchronisation tricks). History is kept up to ``history_limit`` changes; a watch
  from an older revision fails with ``ExpiredError`` (the server's OUT_OF_RANGE).
* **Server semantics.** Watch from "" or "0": an ADDED event for every current object, then live
  changes. ``send_initial_events=True``: the current objects as ADDED, then a BOOKMARK annotated
  ``k8s.io/initial-events-end``. ``allow_watch_bookmarks``: :meth:`ObjectTracker.send_bookmarks`
  sends progress bookmarks. ``timeout_seconds``: the watch ends cleanly after that long. A label
  selector filters list and watch, turning changes that enter or leave the selection into ADDED
  and DELETED, as the Kubernetes watch cache does. DELETED carries the last state of the object
  with the deletion's revision as its resource version.

Thread-safety: every method may be called from any thread. Watches are fed under the tracker's
lock, into unbounded per-watch queues (a test fake favours never dropping an event over bounding
memory); no user code runs under the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from nvinformers.api.device.v1alpha1.types import GPU, RESOURCE, GPUList, ListMeta
from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ExpiredError,
    NotFoundError,
    StatusError,
    qualify,
)
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION, ListOptions
from nvinformers.watch import Event, EventType

__all__ = ["ObjectTracker", "FakeGPUWatch", "DEFAULT_HISTORY_LIMIT"]

#: Changes kept for watch replay (the Device API server keeps at least the last 1,000 revisions).
DEFAULT_HISTORY_LIMIT = 10_000

log = logging.getLogger("nvinformers.clientset.fake")

_Matcher = Callable[[Mapping[str, str]], bool]


def _match_all(_labels: Mapping[str, str]) -> bool:
    return True


def compile_selector(selector: str) -> _Matcher:
    """A predicate over labels for a Kubernetes label selector ("" matches everything).

    Uses :mod:`nvinformers.labels`, imported lazily.

    Raises:
        BadRequestError: the selector does not parse (the server answers INVALID_ARGUMENT).
    """
    if not selector:
        return _match_all
    from nvinformers import labels

    try:
        parsed = labels.parse(selector)
    except ValueError as exc:
        raise BadRequestError(
            f"bad request for {qualify(RESOURCE)}: {exc}", resource=qualify(RESOURCE)
        ) from exc
    return parsed.matches


@dataclass(frozen=True, slots=True)
class _Change:
    """One write in the history: the revision, the event type, the object and its previous state."""

    revision: int
    type: EventType
    object: GPU
    previous: GPU | None


@dataclass(frozen=True, slots=True)
class _End:
    """Queue item ending a watch: cleanly (error None) or with ``error``."""

    error: StatusError | None


def _with_resource_version(gpu: GPU, resource_version: str) -> GPU:
    msg = gpu.to_proto()
    msg.object_meta.resource_version = resource_version
    return GPU.from_proto(msg)


def _filtered(change: _Change, matches: _Matcher) -> Event[GPU] | None:
    """The event a watch with selector ``matches`` sees for ``change`` (None: nothing)."""
    now = matches(change.object.metadata.labels)
    if change.type is EventType.MODIFIED and change.previous is not None:
        before = matches(change.previous.metadata.labels)
        if before and now:
            return Event(EventType.MODIFIED, change.object)
        if now:
            return Event(EventType.ADDED, change.object)
        if before:
            # Left the selection: the watcher sees it deleted, in its last state it could see,
            # at the revision of the change (as the Kubernetes watch cache does).
            return Event(
                EventType.DELETED,
                _with_resource_version(change.previous, change.object.metadata.resource_version),
            )
        return None
    return Event(change.type, change.object) if now else None


class ObjectTracker:
    """In-memory GPUs with a global revision, history and watches (see the module docstring).

    Args:
        history_limit: how many changes are kept for watch replay.
    """

    def __init__(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        self._lock = threading.Lock()
        self._history_limit = history_limit
        # All guarded by _lock. Invariant: _history holds the changes with revision in
        # (_compacted, _revision], oldest first.
        self._objects: dict[str, GPU] = {}
        self._revision = 0
        self._compacted = 0
        self._history: deque[_Change] = deque()
        self._watches: set[FakeGPUWatch] = set()

    # -- writes ----------------------------------------------------------------------------------

    def add(self, gpu: GPU) -> GPU:
        """Store a new GPU at the next revision; open watches see ADDED.

        Returns:
            The stored GPU (its ``resource_version`` is the new revision).

        Raises:
            ValueError: the GPU has no name.
            AlreadyExistsError: a GPU of that name exists.
        """
        name = self._name_of(gpu)
        with self._lock:
            if name in self._objects:
                raise AlreadyExistsError(
                    f'{qualify(RESOURCE)} "{name}" already exists',
                    resource=qualify(RESOURCE),
                    name=name,
                )
            return self._write_locked(EventType.ADDED, name, gpu, None)

    def update(self, gpu: GPU) -> GPU:
        """Replace a GPU at the next revision; open watches see MODIFIED.

        Raises:
            ValueError: the GPU has no name.
            NotFoundError: no GPU of that name exists.
        """
        name = self._name_of(gpu)
        with self._lock:
            previous = self._objects.get(name)
            if previous is None:
                raise NotFoundError.for_object(RESOURCE, name)
            return self._write_locked(EventType.MODIFIED, name, gpu, previous)

    def delete(self, name: str) -> GPU:
        """Delete a GPU at the next revision; open watches see DELETED with its last state.

        Returns:
            The deleted GPU's last state, stamped with the deletion's revision.

        Raises:
            NotFoundError: no GPU of that name exists.
        """
        with self._lock:
            previous = self._objects.get(name)
            if previous is None:
                raise NotFoundError.for_object(RESOURCE, name)
            return self._write_locked(EventType.DELETED, name, previous, previous)

    def _write_locked(
        self, event_type: EventType, name: str, gpu: GPU, previous: GPU | None
    ) -> GPU:
        self._revision += 1
        stored = _with_resource_version(gpu, str(self._revision))
        if event_type is EventType.DELETED:
            del self._objects[name]
        else:
            self._objects[name] = stored
        change = _Change(self._revision, event_type, stored, previous)
        self._history.append(change)
        while len(self._history) > self._history_limit:
            self._compacted = self._history.popleft().revision
        for watch in self._watches:
            event = _filtered(change, watch._matches)
            if event is not None:
                watch._push(event)
        return stored

    @staticmethod
    def _name_of(gpu: GPU) -> str:
        if not isinstance(gpu, GPU):
            raise ValueError(f"the fake tracker stores GPUs, got {type(gpu).__name__}")
        name = gpu.metadata.name
        if not name:
            raise ValueError("a GPU needs metadata.name to be stored")
        return name

    # -- reads -----------------------------------------------------------------------------------

    def get(self, name: str) -> GPU:
        """The GPU ``name``.

        Raises:
            NotFoundError: no such GPU.
        """
        with self._lock:
            gpu = self._objects.get(name)
        if gpu is None:
            raise NotFoundError.for_object(RESOURCE, name)
        return gpu

    def list(self, label_selector: str = "") -> GPUList:
        """Every GPU (matching ``label_selector``), sorted by name, and the current revision.

        Raises:
            BadRequestError: the selector does not parse.
        """
        matches = compile_selector(label_selector)
        with self._lock:
            objects = sorted(self._objects.items())
            revision = self._revision
        return GPUList(
            items=tuple(gpu for _, gpu in objects if matches(gpu.metadata.labels)),
            metadata=ListMeta(resource_version=str(revision)),
        )

    @property
    def resource_version(self) -> str:
        """The current revision ("0" before the first write)."""
        with self._lock:
            return str(self._revision)

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
            matches = compile_selector(opts.label_selector)
        except BadRequestError as exc:
            return FakeGPUWatch(self, _match_all, deadline, False, [_End(exc)])
        rv = opts.resource_version
        initial: list[Event[GPU] | _End] = []
        with self._lock:
            if opts.send_initial_events or rv in ("", "0"):
                initial.extend(
                    Event(EventType.ADDED, gpu)
                    for _, gpu in sorted(self._objects.items())
                    if matches(gpu.metadata.labels)
                )
                if opts.send_initial_events:
                    initial.append(self._bookmark_locked(initial_events_end=True))
            else:
                try:
                    since = int(rv)
                except ValueError:
                    since = -1
                if since < 0:
                    initial.append(
                        _End(
                            BadRequestError(
                                f"invalid resource version {rv!r}: not a revision",
                                resource=qualify(RESOURCE),
                            )
                        )
                    )
                elif since < self._compacted:
                    initial.append(
                        _End(
                            ExpiredError(
                                f"too old resource version: {since} (oldest retained: "
                                f"{self._compacted + 1})",
                                grpc_code="OUT_OF_RANGE",
                                resource=qualify(RESOURCE),
                            )
                        )
                    )
                else:
                    for change in self._history:
                        if change.revision > since:
                            event = _filtered(change, matches)
                            if event is not None:
                                initial.append(event)
            watch = FakeGPUWatch(self, matches, deadline, opts.allow_watch_bookmarks, initial)
            if not (initial and isinstance(initial[-1], _End)):
                self._watches.add(watch)
        return watch

    def _bookmark_locked(self, *, initial_events_end: bool = False) -> Event[GPU]:
        annotations = {INITIAL_EVENTS_END_ANNOTATION: "true"} if initial_events_end else None
        gpu = GPU.new("", resource_version=str(self._revision), annotations=annotations)
        return Event(EventType.BOOKMARK, gpu)

    def send_bookmarks(self) -> int:
        """Send a progress BOOKMARK (current revision) to every watch that allows bookmarks.

        Returns:
            How many watches received one.
        """
        with self._lock:
            bookmark = self._bookmark_locked()
            targets = [w for w in self._watches if w._bookmarks]
            for watch in targets:
                watch._push(bookmark)
        return len(targets)

    def close_watches(self, error: StatusError | None = None) -> int:
        """End every open watch after the events already queued for it.

        Args:
            error: None ends them cleanly (like a server-side timeout); an error is raised by
                their ``next()`` (for example ``ExpiredError`` or ``ServiceUnavailableError``).

        Returns:
            How many watches were closed.
        """
        with self._lock:
            watches = list(self._watches)
            self._watches.clear()
            for watch in watches:
                watch._push(_End(error))
        return len(watches)

    def compact(self, revision: int | None = None) -> None:
        """Forget history up to ``revision`` (default: all of it); older watches then expire."""
        with self._lock:
            limit = self._revision if revision is None else min(revision, self._revision)
            while self._history and self._history[0].revision <= limit:
                self._history.popleft()
            self._compacted = max(self._compacted, limit)

    @property
    def open_watches(self) -> int:
        """Number of watches currently open."""
        with self._lock:
            return len(self._watches)

    def _unregister(self, watch: FakeGPUWatch) -> None:
        with self._lock:
            self._watches.discard(watch)


class FakeGPUWatch:
    """A watch on an :class:`ObjectTracker`; implements :class:`nvinformers.watch.Interface`.

    Iteration ends after ``stop()``, after ``timeout_seconds``, or after
    :meth:`ObjectTracker.close_watches`; errors the server would send on the stream are raised
    by ``next()``, after which iteration ends.

    Thread-safety: iterate from one thread; ``stop()`` from any thread, any number of times.
    Blocking: ``next()`` blocks until an event arrives or the watch ends.
    """

    def __init__(
        self,
        tracker: ObjectTracker,
        matches: _Matcher,
        deadline: float | None,
        bookmarks: bool,
        initial: list[Event[GPU] | _End],
    ) -> None:
        self._tracker = tracker
        self._matches = matches
        self._deadline = deadline
        self._bookmarks = bookmarks
        self._cond = threading.Condition(threading.Lock())
        # Guarded by _cond.
        self._queue: deque[Event[GPU] | _End] = deque(initial)
        self._stopped = False
        self._done = False
        self._rv = ""

    def _push(self, item: Event[GPU] | _End) -> None:
        with self._cond:
            self._queue.append(item)
            self._cond.notify()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Event[GPU]:
        with self._cond:
            while True:
                if self._stopped or self._done:
                    raise StopIteration
                if self._queue:
                    item = self._queue.popleft()
                    if isinstance(item, _End):
                        self._done = True
                        break
                    self._rv = item.object.metadata.resource_version
                    return item
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._done = True
                    item = _End(None)
                    break
                self._cond.wait(remaining)
        # Out of the lock: unregistering takes the tracker's lock (lock order: tracker, watch).
        self._tracker._unregister(self)
        if item.error is not None:
            raise item.error
        raise StopIteration

    def stop(self) -> None:
        """End the watch; a ``next()`` blocked in another thread returns. Idempotent."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._tracker._unregister(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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
