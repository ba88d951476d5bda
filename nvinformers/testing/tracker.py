"""The one revisioned object store behind every fake: client-go's ``testing.ObjectTracker`` with
the API server's revision semantics.

The fake Device API server (:mod:`.storage`), the fake clientset
(:mod:`nvinformers.clientset.fake`) and the fake Kubernetes API server (:mod:`.kube_api`) all keep
their objects in an :class:`ObjectTracker`; each keeps only its protocol: what an object is, the
write rules, how a watch option or an error reads on its wire. The tracker knows nothing of gRPC,
HTTP, protobuf or JSON (of ours it imports only the root of the error tree): it stores opaque
objects (anything with a ``revision`` and ``with_revision``, :class:`Stored`) under
``(resource, namespace, name)`` keys. It guarantees:

* **One global revision.** Every write (create, update, delete) bumps it by one and appends one
  :class:`Change`; the stored object carries the revision of its last write (the caller's
  ``build(revision)`` stamps it). DELETED carries the last state stamped with the deletion's
  revision (what etcd-backed servers send).
* **History with compaction.** At least ``history_limit`` changes are kept: once twice as many
  have accumulated, the oldest are dropped down to ``history_limit``; :meth:`~ObjectTracker.compact`
  drops more. A watch from a revision older than the history raises
  :class:`RevisionExpiredError` (``too old resource version: R (C)``).
* **Watches** see, in revision order with no gap and no repeat: an ADDED burst of the current
  state (when asked), optionally a BOOKMARK marking the end of it, the history after a revision,
  then live changes; all of it is set up under the lock, so nothing falls between a list's
  snapshot and a watch started from its revision. A watch's ``matches`` predicate filters as the
  API server's watch cache (``cacheWatcher``) does: an object that starts matching arrives as
  ADDED, one that stops matching as DELETED (its previous state at the change's revision), one
  that matches before and after as MODIFIED.
* **Optimistic concurrency.** :meth:`~ObjectTracker.update` and :meth:`~ObjectTracker.delete`
  take the revision the caller read; a write in between raises :class:`StaleRevisionError`, so
  callers compute new states outside the lock and retry (the API server's ``GuaranteedUpdate``).
* **Fault hooks**: :meth:`~ObjectTracker.drop_next_events` (changes stored, kept in the history,
  delivered to no open watch), :meth:`~ObjectTracker.end_watches` (at once, or after what is
  queued; optionally refusing new watches until :meth:`~ObjectTracker.reopen`),
  :meth:`~ObjectTracker.compact`, :meth:`~ObjectTracker.send_bookmarks`,
  :meth:`~ObjectTracker.broadcast` (an event as is to every watch, recorded nowhere).

Differences from client-go's tracker, on purpose: real revisions instead of keeping what the
caller set; a history, so a watch from a list's revision misses nothing (client-go's fake loses
the writes between an informer's LIST and WATCH); unbounded per-watch buffers (a test fake never
drops an event nor blocks a writer; client-go's fake watcher panics when its channel is full).

Thread-safety: every method is thread-safe. One lock guards the objects, the revision, the
history and the set of watches; each :class:`Watcher` has its own condition for its buffer
(lock order: tracker, then watcher). Writers never wait for readers: a slow consumer only grows
its own buffer. ``build`` callbacks and ``matches`` predicates run under the tracker's lock and
must be quick and pure; no other caller code does.
"""

from __future__ import annotations

import builtins
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Generic, Protocol, Self, TypeVar

from nvinformers.errors import NvInformersError

__all__ = [
    "ObjectTracker",
    "Stored",
    "Change",
    "WatchEvent",
    "Watcher",
    "Ended",
    "Key",
    "Matcher",
    "ObjectNotFoundError",
    "ObjectExistsError",
    "StaleRevisionError",
    "RevisionExpiredError",
    "ADDED",
    "MODIFIED",
    "DELETED",
    "BOOKMARK",
    "DEFAULT_HISTORY_LIMIT",
    "parse_revision",
    "watch_start",
]

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"

#: Changes kept for watches from a revision unless told otherwise.
DEFAULT_HISTORY_LIMIT: Final = 10_000

#: (resource, namespace, name); the namespace is "" for cluster-scoped objects.
Key = tuple[str, str, str]


class Stored(Protocol):
    """What the tracker needs of a stored object (immutable once built)."""

    @property
    def revision(self) -> int:
        """The revision of the object's last write."""
        ...

    def with_revision(self, revision: int) -> Self:
        """The same state stamped with another revision (a DELETED event's object)."""
        ...


ObjT = TypeVar("ObjT", bound=Stored)

#: A watch's or list's filter over stored objects (None: everything).
Matcher = Callable[[ObjT], bool]


def parse_revision(resource_version: str) -> int:
    """A resource version as a revision: the decimal digits every server of these APIs writes.

    Raises:
        ValueError: anything else (each fake words and classes the error as its server does).
    """
    if not resource_version.isascii() or not resource_version.isdigit():
        raise ValueError(f"invalid resource version {resource_version!r}: not a revision")
    return int(resource_version)


def watch_start(resource_version: str, send_initial_events: bool | None) -> tuple[int | None, bool]:
    """Where a watch with these options starts, by the API server's rules: ``(since, initial)``
    for :meth:`ObjectTracker.watch`.

    ``initial`` (an ADDED burst of the current state first) is ``send_initial_events`` when
    given, else true for ``""`` and ``"0"``; ``since`` (the history after it first) is the
    revision asked for, unless the watch starts with the burst or from ``""``/``"0"`` (from now).

    Raises:
        ValueError: the revision is needed and is not one (:func:`parse_revision`).
    """
    unset = resource_version in ("", "0")
    initial = unset if send_initial_events is None else send_initial_events
    if initial or unset:
        return None, initial
    return parse_revision(resource_version), False


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


class WatchEvent(Generic[ObjT]):
    """One event queued for a watch. BOOKMARKs carry no object, only a revision (and, at the
    end of a watch's initial events, ``initial_events_end``).

    Immutable by convention; one event may sit in many watches' buffers. Adapters may subclass it
    for events of their own (see :meth:`ObjectTracker.broadcast`).
    """

    __slots__ = ("type", "object", "revision", "initial_events_end")

    def __init__(
        self, etype: str, obj: ObjT | None, revision: int, *, initial_events_end: bool = False
    ) -> None:
        self.type = etype
        self.object = obj
        self.revision = revision
        self.initial_events_end = initial_events_end

    def __repr__(self) -> str:
        return f"WatchEvent({self.type}, {self.object!r}, {self.revision})"


class Change(Generic[ObjT]):
    """One write: its revision, key, type, the object after it and (MODIFIED) before it.

    ``event`` is the event of every watch that sees the change as it is (built once, shared).
    """

    __slots__ = ("revision", "key", "type", "object", "previous", "event", "_vanished")

    def __init__(
        self, revision: int, key: Key, etype: str, obj: ObjT, previous: ObjT | None
    ) -> None:
        self.revision = revision
        self.key = key
        self.type = etype
        self.object = obj
        self.previous = previous
        self.event: WatchEvent[ObjT] = WatchEvent(etype, obj, revision)
        self._vanished: WatchEvent[ObjT] | None = None

    def event_for(self, matches: Matcher[ObjT] | None) -> WatchEvent[ObjT] | None:
        """The event a watch filtering with ``matches`` gets for this change (None: none)."""
        if matches is None:
            return self.event
        now = matches(self.object)
        previous = self.previous
        if previous is None:  # ADDED, or DELETED (whose object is the last state)
            return self.event if now else None
        before = matches(previous)
        if now:
            return self.event if before else WatchEvent(ADDED, self.object, self.revision)
        if not before:
            return None
        # Left the selection: deleted in the last state the watch could see, at this revision.
        vanished = self._vanished
        if vanished is None:
            vanished = WatchEvent(DELETED, previous.with_revision(self.revision), self.revision)
            self._vanished = vanished
        return vanished


@dataclass(frozen=True, slots=True)
class Ended:
    """What :meth:`Watcher.get` returns once the watch is over.

    Attributes:
        reason: what the watch was ended with (opaque to the tracker: each fake puts there what
            it needs to end its stream), or None when its consumer closed it
            (:meth:`ObjectTracker.unwatch`, :meth:`Watcher.end` with no reason).
    """

    reason: object = None


class Watcher(Generic[ObjT]):
    """One open watch: its filter and a buffer of events, filled in revision order by the tracker
    and drained by one consumer.

    Thread-safety: :meth:`get` is for one consumer thread; everything else may be called from
    any thread. :meth:`end` wakes a blocked :meth:`get` at once.
    """

    __slots__ = ("resource", "namespace", "matches", "bookmarks", "_cond", "_buffer", "_end")

    def __init__(
        self, resource: str, namespace: str, matches: Matcher[ObjT] | None, bookmarks: bool
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.matches = matches
        self.bookmarks = bookmarks
        self._cond = threading.Condition(threading.Lock())
        self._buffer: deque[WatchEvent[ObjT]] = deque()  # guarded by _cond
        # (why, whether queued events are still delivered); None while open. Guarded by _cond.
        self._end: tuple[Ended, bool] | None = None

    # -- consumer side ------------------------------------------------------------------------

    def get(
        self, timeout: float | None, *, limit: int = 1, held: Callable[[], bool] | None = None
    ) -> builtins.list[WatchEvent[ObjT]] | Ended | None:
        """The next events (at most ``limit``, at least one), :class:`Ended` once the watch is
        over, or None when ``timeout`` passes first.

        An end without ``drain`` wins over queued events (a broken stream loses what it had not
        sent); an end with ``drain`` delivers them first. While ``held()`` is true, events stay
        queued (a paused delivery; :meth:`wake` makes a blocked call look again).

        Blocks until one of those; ``timeout=None`` waits without limit.
        """
        with self._cond:
            buffer = self._buffer
            self._cond.wait_for(  # returns at once when the predicate already holds
                lambda: self._end is not None or (bool(buffer) and (held is None or not held())),
                timeout,
            )
            end = self._end
            if end is not None and not (end[1] and buffer):
                return end[0]
            if not buffer or (end is None and held is not None and held()):
                return None
            if limit == 1:
                return [buffer.popleft()]
            return [buffer.popleft() for _ in range(min(limit, len(buffer)))]

    def end(self, reason: object = None, *, drain: bool = False) -> None:
        """End the watch with ``reason``: its consumer gets :class:`Ended` at once, or, with
        ``drain``, after the events already queued. The first end wins."""
        with self._cond:
            if self._end is None:
                self._end = (Ended(reason), drain)
            self._cond.notify_all()

    def wake(self) -> None:
        """Make a blocked :meth:`get` check again (for a ``held`` condition that changed)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def ended(self) -> Ended | None:
        """How the watch ended, or None while it is open."""
        with self._cond:
            return None if self._end is None else self._end[0]

    # -- producer side (the tracker's, under its lock) ------------------------------------------

    def _push(self, event: WatchEvent[ObjT]) -> bool:
        """Queue ``event`` behind the others; False (and nothing queued) once it has ended."""
        with self._cond:
            if self._end is not None:
                return False
            self._buffer.append(event)
            self._cond.notify()
            return True

    def _preload(self, events: Iterable[WatchEvent[ObjT]]) -> None:
        with self._cond:
            self._buffer.extend(events)


class ObjectTracker(Generic[ObjT]):
    """Objects by key, one global revision, a bounded history and filtered watches (see the
    module docstring).

    Args:
        history_limit: changes always kept for watches from a revision (at least 1).

    Raises:
        ValueError: ``history_limit`` is below 1.
    """

    def __init__(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be at least 1, got {history_limit}")
        self._history_limit = history_limit
        self._lock = threading.Lock()
        self._watchers_changed = threading.Condition(self._lock)
        # Everything below is guarded by _lock.
        # resource -> (namespace, name) -> object; and each resource's keys, sorted (a cache,
        # dropped when a create or delete changes the set).
        self._objects: dict[str, dict[tuple[str, str], ObjT]] = {}
        self._sorted: dict[str, builtins.list[tuple[str, str]]] = {}
        self._revision = 0
        # The changes with revisions _compacted+1 .. _revision, one per revision, in order.
        self._history: deque[Change[ObjT]] = deque()
        self._compacted = 0
        # resource -> open watches (a dict as an ordered set).
        self._watchers: dict[str, dict[Watcher[ObjT], None]] = {}
        self._drop_next = 0
        self._closed: Ended | None = None  # set: every new watch is born ended with it

    # ---------------------------------------------------------------------------------- reads

    @property
    def revision(self) -> int:
        """The current global revision (that of the last write; 0 before any)."""
        with self._lock:
            return self._revision

    @property
    def compacted_revision(self) -> int:
        """Watches from a revision older than this raise :class:`RevisionExpiredError`."""
        with self._lock:
            return self._compacted

    @property
    def history_limit(self) -> int:
        """Changes always kept for watches from a revision."""
        return self._history_limit

    @property
    def watcher_count(self) -> int:
        """Open watches."""
        with self._lock:
            return sum(len(w) for w in self._watchers.values())

    def get(self, key: Key) -> ObjT:
        """The stored object.

        Raises:
            ObjectNotFoundError: nothing under ``key``.
        """
        with self._lock:
            obj = self._objects.get(key[0], {}).get(key[1:])
        if obj is None:
            raise ObjectNotFoundError(key)
        return obj

    def list(
        self, resource: str, namespace: str = "", matches: Matcher[ObjT] | None = None
    ) -> tuple[builtins.list[ObjT], int]:
        """The objects of ``resource`` (in ``namespace``; "" for all) that match, sorted by
        namespace and name, and the revision they were read at (one consistent snapshot).

        ``matches`` runs outside the lock, on the snapshot.
        """
        with self._lock:
            revision = self._revision
            objects = self._objects.get(resource)
            if not objects:
                return [], revision
            keys = self._sorted_locked(resource, objects)
            if namespace:
                snapshot = [objects[k] for k in keys if k[0] == namespace]
            else:
                snapshot = [objects[k] for k in keys]
        if matches is not None:
            snapshot = [obj for obj in snapshot if matches(obj)]
        return snapshot, revision

    def keys(self, resource: str) -> builtins.list[Key]:
        """The keys of ``resource``'s objects, sorted."""
        with self._lock:
            objects = self._objects.get(resource)
            if not objects:
                return []
            return [(resource, ns, name) for ns, name in self._sorted_locked(resource, objects)]

    def _sorted_locked(
        self, resource: str, objects: dict[tuple[str, str], ObjT]
    ) -> builtins.list[tuple[str, str]]:
        keys = self._sorted.get(resource)
        if keys is None:
            keys = self._sorted[resource] = sorted(objects)
        return keys

    # --------------------------------------------------------------------------------- writes

    def create(self, key: Key, build: Callable[[int], ObjT]) -> ObjT:
        """Store ``build(revision)`` under ``key`` at the next revision; watches see ADDED.

        Raises:
            ObjectExistsError: an object is stored under ``key``.
            Whatever ``build`` raises (then nothing has changed).
        """
        with self._lock:
            if key[1:] in self._objects.get(key[0], ()):
                raise ObjectExistsError(key)
            return self._commit_locked(key, ADDED, build, None)

    def update(
        self, key: Key, build: Callable[[int], ObjT], *, revision: int | None = None
    ) -> ObjT:
        """Replace the object under ``key`` with ``build(revision)`` at the next revision;
        watches see MODIFIED (or, filtered, ADDED or DELETED).

        Args:
            revision: the revision of the object the caller read: the write happens only if
                the object is still that one (None: whatever it is now).

        Raises:
            ObjectNotFoundError: nothing under ``key``.
            StaleRevisionError: the object was written since ``revision``.
            Whatever ``build`` raises (then nothing has changed).
        """
        with self._lock:
            current = self._current_locked(key, revision)
            return self._commit_locked(key, MODIFIED, build, current)

    def delete(self, key: Key, *, revision: int | None = None) -> ObjT:
        """Remove the object under ``key`` at the next revision; returns its last state stamped
        with the deletion's revision (what DELETED events carry).

        Args:
            revision: as for :meth:`update`: delete only the object the caller read.

        Raises:
            ObjectNotFoundError: nothing under ``key``.
            StaleRevisionError: the object was written since ``revision``.
        """
        with self._lock:
            current = self._current_locked(key, revision)
            return self._commit_locked(key, DELETED, current.with_revision, None)

    def _current_locked(self, key: Key, revision: int | None) -> ObjT:
        current = self._objects.get(key[0], {}).get(key[1:])
        if current is None:
            raise ObjectNotFoundError(key)
        if revision is not None and current.revision != revision:
            raise StaleRevisionError(key)
        return current

    def _commit_locked(
        self, key: Key, etype: str, build: Callable[[int], ObjT], previous: ObjT | None
    ) -> ObjT:
        revision = self._revision + 1
        obj = build(revision)  # may raise (bad input): nothing has changed yet
        self._revision = revision
        resource = key[0]
        if etype == DELETED:
            del self._objects[resource][key[1:]]
            self._sorted.pop(resource, None)
        else:
            objects = self._objects.setdefault(resource, {})
            if previous is None:
                self._sorted.pop(resource, None)
            objects[key[1:]] = obj
        change = Change(revision, key, etype, obj, previous)
        history = self._history
        history.append(change)
        if len(history) >= 2 * self._history_limit:
            self._compact_locked(revision - self._history_limit)
        if self._drop_next > 0:
            self._drop_next -= 1
            return obj
        namespace = key[1]
        for watcher in self._watchers.get(resource, ()):
            if watcher.namespace and watcher.namespace != namespace:
                continue
            event = change.event_for(watcher.matches)
            if event is not None:
                watcher._push(event)
        return obj

    # -------------------------------------------------------------------------------- watches

    def watch(
        self,
        resource: str,
        namespace: str = "",
        matches: Matcher[ObjT] | None = None,
        *,
        since: int | None = None,
        initial_events: bool = False,
        initial_events_end: bool = False,
        bookmarks: bool = False,
    ) -> Watcher[ObjT]:
        """Open a watch, preloaded with what it must see first; close it with :meth:`unwatch`.

        Args:
            resource, namespace, matches: what the watch sees ("" namespace: every one).
            since: first the history after this revision (None: nothing from the past).
            initial_events: first an ADDED event per current matching object, sorted by key.
            initial_events_end: then a BOOKMARK at the current revision marked as the end of
                the initial events.
            bookmarks: the watch accepts progress BOOKMARKs (:meth:`send_bookmarks`).

        Returns:
            The watch; already ended (and not open) after ``end_watches(close=True)``.

        Raises:
            RevisionExpiredError: ``since`` is older than the compacted history.
        """
        watcher: Watcher[ObjT] = Watcher(resource, namespace, matches, bookmarks)
        with self._lock:
            if since is not None and since < self._compacted:
                raise RevisionExpiredError(since, self._compacted)
            if self._closed is not None:
                watcher.end(self._closed.reason)
                return watcher
            events: builtins.list[WatchEvent[ObjT]] = []
            if initial_events:
                objects = self._objects.get(resource, {})
                for key in self._sorted_locked(resource, objects):
                    obj = objects[key]
                    if (not namespace or key[0] == namespace) and (matches is None or matches(obj)):
                        events.append(WatchEvent(ADDED, obj, obj.revision))
            if initial_events_end:
                events.append(WatchEvent(BOOKMARK, None, self._revision, initial_events_end=True))
            if since is not None and since < self._revision:
                # One change per revision: the one after ``since`` is at a known offset.
                first = since + 1 - self._history[0].revision if self._history else 0
                for change in itertools.islice(self._history, max(first, 0), None):
                    if change.key[0] != resource or (namespace and change.key[1] != namespace):
                        continue
                    event = change.event_for(matches)
                    if event is not None:
                        events.append(event)
            watcher._preload(events)
            self._watchers.setdefault(resource, {})[watcher] = None
            self._watchers_changed.notify_all()
        return watcher

    def unwatch(self, watcher: Watcher[ObjT]) -> None:
        """Close a watch: no more events, its consumer gets :class:`Ended` (idempotent)."""
        with self._lock:
            watchers = self._watchers.get(watcher.resource)
            if watchers is not None and watcher in watchers:
                del watchers[watcher]
                self._watchers_changed.notify_all()
        watcher.end()

    def wait_for_watches(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` watches are open; False on timeout."""
        with self._watchers_changed:
            return self._watchers_changed.wait_for(
                lambda: sum(len(w) for w in self._watchers.values()) >= count, timeout
            )

    def events(
        self,
        watcher: Watcher[ObjT],
        *,
        deadline: float | None = None,
        bookmark_interval: float | None = None,
        limit: int = 1,
        held: Callable[[], bool] | None = None,
    ) -> Iterator[builtins.list[WatchEvent[ObjT]] | Ended]:
        """What a watch's consumer sends, in batches of at most ``limit`` events, until the watch
        ends (the last item is its :class:`Ended`) or ``deadline`` passes (the iterator stops:
        ``timeoutSeconds``, a clean end, whatever is still queued).

        Every ``bookmark_interval`` seconds a BOOKMARK at the current revision is queued behind
        the events (:meth:`send_bookmark`). ``held`` pauses delivery (see :meth:`Watcher.get`).

        Blocking: each step waits on the watch's condition (no polling) until events, the end,
        the deadline or the next bookmark. Consume from one thread; :meth:`unwatch` or
        :meth:`Watcher.end` from any thread ends it.

        Args:
            deadline: when the stream ends, on the :func:`time.monotonic` clock (None: never).
        """
        next_bookmark = time.monotonic() + bookmark_interval if bookmark_interval else None
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if next_bookmark is not None and bookmark_interval and now >= next_bookmark:
                next_bookmark = now + bookmark_interval
                self.send_bookmark(watcher)
            waits = [t - now for t in (deadline, next_bookmark) if t is not None]
            item = watcher.get(min(waits) if waits else None, limit=limit, held=held)
            if item is not None:
                yield item
                if isinstance(item, Ended):
                    return

    def send_bookmark(self, watcher: Watcher[ObjT]) -> None:
        """Queue a BOOKMARK at the current revision to one watch, behind the events it has.

        Under the lock every change up to the current revision has been offered to the watch
        (delivered, filtered out or dropped), so the bookmark never claims a change it has not
        yet delivered.
        """
        with self._lock:
            watcher._push(WatchEvent(BOOKMARK, None, self._revision))

    # ---------------------------------------------------------------------------- fault hooks

    def send_bookmarks(self) -> int:
        """Queue a BOOKMARK at the current revision to every watch that accepts bookmarks.

        Returns:
            How many watches got one.
        """
        with self._lock:
            bookmark: WatchEvent[ObjT] = WatchEvent(BOOKMARK, None, self._revision)
            return sum(1 for w in self._all_locked() if w.bookmarks and w._push(bookmark))

    def broadcast(self, event: WatchEvent[ObjT]) -> int:
        """Queue ``event`` as is to every open watch, in order with the others; nothing is
        stored and the revision does not move (an injected ERROR or malformed event).

        Returns:
            How many watches got it.
        """
        with self._lock:
            return sum(1 for w in self._all_locked() if w._push(event))

    def end_watches(
        self, reason: object = None, *, drain: bool = False, close: bool = False
    ) -> int:
        """End every open watch with ``reason`` and forget them (see :meth:`Watcher.end`).

        Args:
            drain: their consumers get the events already queued first.
            close: every watch opened later is born ended with ``reason`` too, until
                :meth:`reopen`.

        Returns:
            How many watches were ended.
        """
        with self._lock:
            watchers = self._all_locked()
            self._watchers.clear()
            self._watchers_changed.notify_all()
            if close:
                self._closed = Ended(reason)
        for watcher in watchers:
            watcher.end(reason, drain=drain)
        return len(watchers)

    def reopen(self) -> None:
        """Let new watches run again after ``end_watches(close=True)``."""
        with self._lock:
            self._closed = None

    def wake_watches(self) -> None:
        """Wake every watch's consumer (to look again at a ``held`` condition)."""
        with self._lock:
            watchers = self._all_locked()
        for watcher in watchers:
            watcher.wake()

    def drop_next_events(self, count: int) -> None:
        """Deliver the next ``count`` changes to no open watch (lost on the wire); they stay in
        the history, so a later watch from an older revision replays them, and a later progress
        BOOKMARK covers them.

        Raises:
            ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        with self._lock:
            self._drop_next = count

    def compact(self, revision: int | None = None) -> int:
        """Drop the history up to ``revision`` (default: all of it; never backwards, never past
        the current revision).

        Returns:
            The compacted revision: watches from an older one now raise
            :class:`RevisionExpiredError`.
        """
        with self._lock:
            self._compact_locked(
                self._revision if revision is None else min(revision, self._revision)
            )
            return self._compacted

    def _compact_locked(self, target: int) -> None:
        if target <= self._compacted:
            return
        history = self._history
        while history and history[0].revision <= target:
            history.popleft()
        self._compacted = target

    def _all_locked(self) -> builtins.list[Watcher[ObjT]]:
        return [w for watchers in self._watchers.values() for w in watchers]
