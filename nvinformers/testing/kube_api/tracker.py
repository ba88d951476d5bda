"""A revisioned object store with history and watches: client-go's ``testing.ObjectTracker``, with
the API server's revision semantics.

:class:`ObjectTracker` knows nothing of HTTP, JSON or Kubernetes kinds: it stores opaque objects
under ``(resource, namespace, name)`` keys and gives them revisions. What it guarantees:

* **One global revision.** Every write (create, update, delete) bumps it by one; the stored
  object carries the revision of its last write (the caller's ``build(revision)`` stamps it).
* **History.** Every write appends one :class:`Change` (type, object, previous state); at least
  ``history_limit`` changes are kept (trimmed back to that when twice as many accumulate), and
  :meth:`~ObjectTracker.compact` drops older ones. A watch from a revision older than the
  history raises :class:`RevisionExpiredError`.
* **Watches** see, in revision order with no gap: an ADDED burst of the current state (when
  asked), then the history after a revision, then live changes. A watch's ``matches`` predicate
  filters as the API server's watch cache does: an object that stops matching arrives as
  DELETED (its previous state at the change's revision), one that starts matching as ADDED.
* **Optimistic concurrency.** :meth:`~ObjectTracker.update` takes the revision the caller read;
  a write in between raises :class:`StaleRevisionError`, so callers compute new states outside
  the lock and retry (``GuaranteedUpdate``), and no caller code but ``build`` runs under the lock.
* **Fault hooks**: :meth:`~ObjectTracker.drop_next_events` (changes stored but not delivered),
  :meth:`~ObjectTracker.end_watches`, :meth:`~ObjectTracker.compact`,
  :meth:`~ObjectTracker.send_bookmarks`.

It is the seed of the one store every fake shares (the Device API fake server and the fake
clientset keep their own until they move onto it).

Thread-safety: every method is thread-safe. One lock guards the objects, the revision, the
history and the watcher list; each :class:`Watcher` has its own condition for its buffer.
``build`` callbacks and ``matches`` predicates run under the lock and must be quick and pure.
"""

from __future__ import annotations

import builtins
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final, Generic, Protocol, Self, TypeVar

from nvinformers.errors import NvInformersError

__all__ = [
    "ObjectTracker",
    "Stored",
    "Change",
    "WatchEvent",
    "Watcher",
    "Key",
    "ObjectNotFoundError",
    "ObjectExistsError",
    "StaleRevisionError",
    "RevisionExpiredError",
    "ADDED",
    "MODIFIED",
    "DELETED",
    "BOOKMARK",
]

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"

#: (resource, namespace, name); the namespace is "" for cluster-scoped objects.
Key = tuple[str, str, str]


class Stored(Protocol):
    """What the tracker needs of a stored object."""

    @property
    def revision(self) -> int:
        """The revision of the object's last write."""
        ...

    def with_revision(self, revision: int) -> Self:
        """The same state stamped with another revision (a DELETED event's object)."""
        ...


ObjT = TypeVar("ObjT", bound=Stored)


class ObjectNotFoundError(NvInformersError, LookupError):
    """No object under the key."""


class ObjectExistsError(NvInformersError):
    """An object already exists under the key."""


class StaleRevisionError(NvInformersError):
    """The object changed since the revision the caller read."""


class RevisionExpiredError(NvInformersError):
    """A watch asked for a revision the history no longer reaches back to."""

    def __init__(self, revision: int, compacted: int) -> None:
        super().__init__(f"too old resource version: {revision} ({compacted})")
        self.revision = revision
        self.compacted = compacted


class Change(Generic[ObjT]):
    """One write: its revision, key, type, the object after it and (MODIFIED) before it."""

    __slots__ = ("revision", "key", "type", "object", "previous")

    def __init__(
        self, revision: int, key: Key, etype: str, obj: ObjT, previous: ObjT | None
    ) -> None:
        self.revision = revision
        self.key = key
        self.type = etype
        self.object = obj
        self.previous = previous


class WatchEvent(Generic[ObjT]):
    """One event queued for a watch. BOOKMARKs carry no object, only a revision."""

    __slots__ = ("type", "object", "revision", "initial_events_end")

    def __init__(
        self, etype: str, obj: ObjT | None, revision: int, *, initial_events_end: bool = False
    ) -> None:
        self.type = etype
        self.object = obj
        self.revision = revision
        self.initial_events_end = initial_events_end


class Watcher(Generic[ObjT]):
    """One open watch: its filter and a buffer of events, filled in revision order.

    The tracker pushes under its lock; the consumer takes events under :attr:`cond`. ``ended``
    says why the tracker ended the watch (None: open); the consumer decides what that means.
    """

    __slots__ = ("resource", "namespace", "matches", "bookmarks", "cond", "buffer", "ended")

    def __init__(
        self,
        resource: str,
        namespace: str,
        matches: Callable[[ObjT], bool] | None,
        bookmarks: bool,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.matches = matches
        self.bookmarks = bookmarks
        self.cond = threading.Condition(threading.Lock())
        self.buffer: deque[WatchEvent[ObjT]] = deque()  # guarded by cond
        self.ended: str | None = None  # guarded by cond

    def event_for(self, change: Change[ObjT]) -> WatchEvent[ObjT] | None:
        """The event this watch gets for ``change`` (None: not for it)."""
        resource, namespace, _ = change.key
        if resource != self.resource or (self.namespace and namespace != self.namespace):
            return None
        matches = self.matches
        if matches is None:
            return WatchEvent(change.type, change.object, change.revision)
        now = matches(change.object)
        if change.type == MODIFIED and change.previous is not None:
            before = matches(change.previous)
            if now and before:
                return WatchEvent(MODIFIED, change.object, change.revision)
            if now:
                return WatchEvent(ADDED, change.object, change.revision)
            if before:
                # Left the selection: deleted in the last state it could see, at this revision.
                vanished = change.previous.with_revision(change.revision)
                return WatchEvent(DELETED, vanished, change.revision)
            return None
        return WatchEvent(change.type, change.object, change.revision) if now else None

    def push(self, event: WatchEvent[ObjT]) -> None:
        with self.cond:
            self.buffer.append(event)
            self.cond.notify()

    def end(self, reason: str) -> None:
        """Mark the watch ended (the first reason wins) and wake its consumer."""
        with self.cond:
            if self.ended is None:
                self.ended = reason
            self.cond.notify()


class ObjectTracker(Generic[ObjT]):
    """Objects by key, one global revision, a bounded history and filtered watches.

    Args:
        history_limit: changes always kept for watches from a revision (at least 1).
    """

    def __init__(self, *, history_limit: int = 10_000) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        self._history_limit = history_limit
        self._lock = threading.Lock()
        self._watchers_changed = threading.Condition(self._lock)
        self._objects: dict[Key, ObjT] = {}
        self._revision = 0
        self._compacted = 0  # the history holds every change with revision > _compacted
        self._history: deque[Change[ObjT]] = deque()
        self._watchers: list[Watcher[ObjT]] = []
        self._drop_next = 0
        self._closed: str | None = None  # set: every new watch is born ended with this reason

    # ------------------------------------------------------------------------------- reads

    @property
    def revision(self) -> int:
        """The current global revision."""
        with self._lock:
            return self._revision

    @property
    def compacted_revision(self) -> int:
        """Watches from a revision older than this raise :class:`RevisionExpiredError`."""
        with self._lock:
            return self._compacted

    def get(self, key: Key) -> ObjT:
        """The stored object. Raises :class:`ObjectNotFoundError`."""
        with self._lock:
            obj = self._objects.get(key)
        if obj is None:
            raise ObjectNotFoundError(key)
        return obj

    def list(
        self, resource: str, namespace: str = "", matches: Callable[[ObjT], bool] | None = None
    ) -> tuple[builtins.list[ObjT], int]:
        """The objects of ``resource`` (in ``namespace``, "" for all) that match, sorted by key,
        and the revision they were read at (one consistent snapshot)."""
        with self._lock:
            return self._select_locked(resource, namespace, matches), self._revision

    def _select_locked(
        self, resource: str, namespace: str, matches: Callable[[ObjT], bool] | None
    ) -> builtins.list[ObjT]:
        return [
            obj
            for (res, ns, _), obj in sorted(self._objects.items())
            if res == resource
            and (not namespace or ns == namespace)
            and (matches is None or matches(obj))
        ]

    # ------------------------------------------------------------------------------ writes

    def create(self, key: Key, build: Callable[[int], ObjT]) -> ObjT:
        """Store ``build(revision)`` under ``key`` at the next revision.

        Raises:
            ObjectExistsError: an object is stored under ``key``.
        """
        with self._lock:
            if key in self._objects:
                raise ObjectExistsError(key)
            return self._commit_locked(key, ADDED, build, None)

    def update(self, key: Key, read_revision: int, build: Callable[[int], ObjT]) -> ObjT:
        """Replace the object under ``key`` with ``build(revision)``, if it is still the one
        the caller read at ``read_revision``.

        Raises:
            ObjectNotFoundError: no object under ``key``.
            StaleRevisionError: the object was written since ``read_revision``.
        """
        with self._lock:
            current = self._objects.get(key)
            if current is None:
                raise ObjectNotFoundError(key)
            if current.revision != read_revision:
                raise StaleRevisionError(key)
            return self._commit_locked(key, MODIFIED, build, current)

    def delete(self, key: Key) -> ObjT:
        """Remove the object under ``key``; returns its last state stamped with the deletion's
        revision (what DELETED events carry).

        Raises:
            ObjectNotFoundError: no object under ``key``.
        """
        with self._lock:
            current = self._objects.get(key)
            if current is None:
                raise ObjectNotFoundError(key)
            return self._commit_locked(key, DELETED, current.with_revision, None)

    def _commit_locked(
        self, key: Key, etype: str, build: Callable[[int], ObjT], previous: ObjT | None
    ) -> ObjT:
        revision = self._revision + 1
        obj = build(revision)  # may raise (bad input): nothing has changed yet
        self._revision = revision
        if etype == DELETED:
            del self._objects[key]
        else:
            self._objects[key] = obj
        change = Change(revision, key, etype, obj, previous)
        self._history.append(change)
        if len(self._history) >= 2 * self._history_limit:
            self._compact_locked(self._history[-self._history_limit - 1].revision)
        if self._drop_next > 0:
            self._drop_next -= 1
        else:
            for watcher in self._watchers:
                event = watcher.event_for(change)
                if event is not None:
                    watcher.push(event)
        return obj

    # ----------------------------------------------------------------------------- watches

    def watch(
        self,
        resource: str,
        namespace: str = "",
        matches: Callable[[ObjT], bool] | None = None,
        *,
        since: int | None = None,
        initial_events: bool = False,
        initial_events_end: bool = False,
        bookmarks: bool = False,
    ) -> Watcher[ObjT]:
        """Open a watch; close it with :meth:`unwatch`.

        Args:
            resource, namespace, matches: what the watch sees ("" namespace: all).
            since: replay the history after this revision first (None: start now).
            initial_events: first an ADDED event per current matching object, sorted by key.
            initial_events_end: then a BOOKMARK marked as the end of the initial events.
            bookmarks: the watch accepts progress BOOKMARKs (:meth:`send_bookmarks`).

        Raises:
            RevisionExpiredError: ``since`` is older than the compacted history.
        """
        watcher: Watcher[ObjT] = Watcher(resource, namespace, matches, bookmarks)
        with self._lock:
            watcher.ended = self._closed
            if since is not None and since < self._compacted:
                raise RevisionExpiredError(since, self._compacted)
            buffer = watcher.buffer  # not yet shared: no other thread sees it
            if initial_events:
                buffer.extend(
                    WatchEvent(ADDED, obj, obj.revision)
                    for obj in self._select_locked(resource, namespace, matches)
                )
            if initial_events_end:
                buffer.append(WatchEvent(BOOKMARK, None, self._revision, initial_events_end=True))
            if since is not None:
                for change in self._history:
                    if change.revision > since:
                        event = watcher.event_for(change)
                        if event is not None:
                            buffer.append(event)
            self._watchers.append(watcher)
            self._watchers_changed.notify_all()
        return watcher

    def unwatch(self, watcher: Watcher[ObjT]) -> None:
        """Close a watch (idempotent)."""
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)
                self._watchers_changed.notify_all()

    def wait_for_watches(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` watches are open; False on timeout."""
        with self._watchers_changed:
            return self._watchers_changed.wait_for(lambda: len(self._watchers) >= count, timeout)

    def send_bookmark(self, watcher: Watcher[ObjT]) -> None:
        """Queue a BOOKMARK at the current revision to one watch, behind the events it has."""
        with self._lock:
            watcher.push(WatchEvent(BOOKMARK, None, self._revision))

    # ------------------------------------------------------------------------- fault hooks

    def send_bookmarks(self) -> int:
        """Queue a BOOKMARK at the current revision to every watch that accepts bookmarks;
        returns how many got one."""
        with self._lock:
            targets = [w for w in self._watchers if w.bookmarks]
            for watcher in targets:
                watcher.push(WatchEvent(BOOKMARK, None, self._revision))
        return len(targets)

    def end_watches(self, reason: str, *, close: bool = False) -> int:
        """End every open watch with ``reason``; returns how many. With ``close``, every watch
        opened later is born ended with that reason too, until :meth:`reopen`."""
        with self._lock:
            watchers = list(self._watchers)
            if close:
                self._closed = reason
        for watcher in watchers:
            watcher.end(reason)
        return len(watchers)

    def reopen(self) -> None:
        """Let new watches run again after ``end_watches(close=True)``."""
        with self._lock:
            self._closed = None

    def wake_watches(self) -> None:
        """Wake every watch's consumer (to re-check a condition of its own, such as a pause)."""
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            with watcher.cond:
                watcher.cond.notify()

    def drop_next_events(self, count: int) -> None:
        """Deliver the next ``count`` changes to no open watch (lost on the wire); they stay
        in the history, so a later watch from an older revision replays them."""
        with self._lock:
            self._drop_next = max(0, count)

    def compact(self, revision: int | None = None) -> int:
        """Drop the history up to ``revision`` (default: all of it; never backwards); returns
        the compacted revision."""
        with self._lock:
            target = self._revision if revision is None else min(revision, self._revision)
            self._compact_locked(target)
            return self._compacted

    def _compact_locked(self, target: int) -> None:
        history = self._history
        while history and history[0].revision <= target:
            history.popleft()
        self._compacted = max(self._compacted, target)

    def keys(self, resource: str) -> Iterable[Key]:
        """The keys of ``resource``'s objects, sorted."""
        with self._lock:
            return sorted(k for k in self._objects if k[0] == resource)
