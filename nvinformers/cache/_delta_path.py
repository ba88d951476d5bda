"""The informer's one delta path: apply a batch of deltas to the store, notify the handlers.

Every delta goes through :meth:`DeltaPath.process` (client-go's ``processDeltas``), and one
decision, :meth:`DeltaPath._decide`: add, update, skip a repeat of the cached revision, or drop an
event older than the cache. The informer's queue calls it, on the thread that pushed into the
queue, one batch at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from nvinformers.cache._fifo import DeltaType, Replacement
from nvinformers.cache._processor import ADD, DELETE, UPDATE, HandlerRegistry, Notification
from nvinformers.cache._revisions import revision_newer
from nvinformers.cache._store import DeletedFinalStateUnknown, KeyFuncError, resource_version_of
from nvinformers.cache._thread_safe_store import ThreadSafeStore
from nvinformers.cancel import Latch
from nvinformers.meta import header_accessors

__all__ = ["DeltaPath"]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache.informer")

_ADDED, _UPDATED, _DELETED = DeltaType.ADDED, DeltaType.UPDATED, DeltaType.DELETED
_REPLACED_ALL, _BOOKMARK, _SYNC = DeltaType.REPLACED_ALL, DeltaType.BOOKMARK, DeltaType.SYNC


class DeltaPath(Generic[T]):
    """client-go's ``processDeltas``, and the one decision behind it (:meth:`_decide`).

    Owned by the informer, whose store it is the only writer of and whose handlers it hands
    each notification to, under their ``lock``.

    Thread-safety: :meth:`process` runs on the queue's drainer, one batch at a time; only it
    writes the store and the fields below, which anyone reads without a lock.
    """

    def __init__(
        self,
        name: str,
        *,
        key_func: Callable[[Any], str],
        store: ThreadSafeStore[T],
        handlers: HandlerRegistry,
    ) -> None:
        self.name = name
        self._key_func = key_func
        self._store = store
        self._handlers = handlers
        self.synced = False  # the first full list is in the store (set under handlers.lock)
        # Set once synced (or by the informer once stopped unsynced), outside every lock.
        self.sync_done = Latch()
        self.last_store_rv = ""  # the revision the store is current to (lists, bookmarks)
        # Statistics.
        self.applied = {"added": 0, "updated": 0, "deleted": 0}
        self.stale_events_dropped = 0
        self.unknown_deletes = 0
        self.key_errors = 0

    def _key(self, obj: Any) -> str | None:
        try:
            return self._key_func(obj)
        except KeyFuncError as err:
            self.key_errors += 1
            log.error("%s: dropping an object without a usable key: %s", self.name, err)
            return None

    def _decide(
        self, dtype: DeltaType, obj: Any, old: Any, initial: bool = False, listed: bool = False
    ) -> Notification | None:
        """What one delta does to the cache: the notification to deliver, or None to skip it.

        The one place these rules live (client-go's ``processDeltas`` decides add or update by
        whether the key is cached; nvinformers adds the revision rules), for watch events and
        relisted objects alike:

        ====================================  ==========================================
        the key is ...                        then
        ====================================  ==========================================
        not cached, delta is a delete         skipped (already gone: a relist removed it)
        not cached                            add (``is_in_initial_list`` = ``initial``)
        cached at the same revision           skipped (a repeat: not a change), deletes
                                              excepted
        cached at a newer revision, from a    dropped and counted (a stale event)
        watch event
        cached, delta is a delete             delete
        cached                                update
        ====================================  ==========================================

        Revisions are compared only when both are decimal integers (see
        :func:`~nvinformers.cache._revisions.revision_newer`): opaque ones are never stale. A
        relisted object is never stale either: a relist asks for a state at least as new as
        anything seen, so an older object in it means the server's revisions went backwards (a
        restart that lost its store), and the list is the truth (the reflector logs it).

        Args:
            dtype: ADDED, UPDATED or DELETED (a relisted object counts as UPDATED).
            obj: the object the delta carries.
            old: what the cache holds under the object's key (None: nothing).
            initial: an add belongs to the first full list.
            listed: the object comes from a relist.
        """
        if old is None:
            if dtype is _DELETED:
                self.unknown_deletes += 1
                return None
            self.applied["added"] += 1
            return (ADD, obj, initial)
        cls = type(obj)
        rv_of = header_accessors(cls).resource_version
        new_rv = rv_of(obj)
        old_rv = rv_of(old) if type(old) is cls else resource_version_of(old)
        if dtype is not _DELETED and old_rv == new_rv and new_rv:
            return None
        if not listed and revision_newer(old_rv, new_rv) is True:
            self.stale_events_dropped += 1
            return None
        if dtype is _DELETED:
            self.applied["deleted"] += 1
            return (DELETE, obj, None)
        self.applied["updated"] += 1
        return (UPDATE, old, obj)

    def process(self, batch: list[tuple[DeltaType, Any]]) -> None:
        """Apply a batch of deltas to the store, then queue the notifications to every handler.

        The one delta path (client-go's ``processDeltas`` over a RealFIFO batch): every add,
        update and delete is decided by :meth:`_decide`; a relist is diffed against the store by
        :meth:`_replace`, which decides each listed object the same way. Two branches only skip
        bookkeeping: a batch of one event (what an event storm delivers, one by one, inline) is
        committed at once, and a relist into an empty store (the initial sync) is loaded in bulk
        by :meth:`_load`, every object being new.

        A relist that carries ``on_applied`` (the reflector's progress check) is told, once
        applied, how many objects it added, updated or deleted.

        Runs on the thread that pushed into the queue (the reflector's, or the resync timer's),
        one batch at a time, in order (see :class:`RealFIFO`).
        """
        store: ThreadSafeStore[Any] = self._store
        if len(batch) == 1:
            dtype, obj = batch[0]
            if dtype is _UPDATED or dtype is _ADDED or dtype is _DELETED:
                key = self._key(obj)
                if key is None:
                    return
                # No store lock for this read: only this thread writes to the store (the queue
                # has a single drainer), and a dict read is atomic.
                note = self._decide(dtype, obj, store._items.get(key))
                if note is None:
                    return
                notes = (note,)
                handlers = self._handlers
                lock = handlers.lock
                lock.acquire()
                try:
                    if dtype is _DELETED:
                        store.delete(key)
                    else:
                        store.add(key, obj)
                    for listener in handlers.listeners:
                        listener.add_many(notes)
                finally:
                    lock.release()
                return
            if dtype is _REPLACED_ALL and not len(store):
                self._load(obj)
                return
        key_of = self._key
        changes: list[tuple[str, Any]] = []
        pending: dict[str, Any] = {}  # key → object or None (deleted), overlays the store
        notes_list: list[Notification] = []
        # Relists that asked to be told what they changed (the reflector's progress check).
        reports: list[tuple[Callable[[int], None], int]] = []
        became_synced = False
        resync = False
        initial = 0
        for dtype, obj in batch:
            if dtype is _UPDATED or dtype is _ADDED or dtype is _DELETED:
                okey = key_of(obj)
                if okey is None:
                    continue
                old = pending[okey] if okey in pending else store.get(okey)
                note = self._decide(dtype, obj, old)
                if note is None:
                    continue
                notes_list.append(note)
                value = None if dtype is _DELETED else obj
                pending[okey] = value
                changes.append((okey, value))
            elif dtype is _REPLACED_ALL:
                first = not self.synced and not became_synced
                before = len(notes_list)
                n_initial = self._replace(obj, pending, changes, notes_list, first)
                if first:
                    became_synced = True
                    initial += n_initial
                if obj.on_applied is not None:
                    # Every add, update and delete of the relist is one notification.
                    reports.append((obj.on_applied, len(notes_list) - before))
            elif dtype is _BOOKMARK:
                self.last_store_rv = obj
            elif dtype is _SYNC:
                resync = True
        if changes or notes_list or became_synced:
            handlers = self._handlers
            with handlers.lock:
                if changes:
                    store.apply(changes)
                if notes_list:
                    for listener in handlers.listeners:
                        listener.add_many(notes_list, initial)
                if became_synced:
                    self.synced = True
        if became_synced:
            self._signal_synced()
        for report, changed in reports:  # once applied, outside the lock
            report(changed)
        if resync:
            self._handlers.resync_due()

    def _load(self, replacement: Replacement[Any]) -> None:
        """:meth:`process` for a list into an empty store (the initial sync), in bulk.

        Every object is an add (:meth:`_decide` with nothing cached), the first one wins on a
        duplicate key, notifications go out in list order: the outcome of the general path, with
        the store filled in one :meth:`ThreadSafeStore.replace` (indexes built outside the store
        lock) and no notification built when no handler is registered.
        """
        items: dict[str, Any] = {}
        for obj in replacement.objects:
            key = self._key(obj)
            if key is not None and key not in items:
                items[key] = obj
        initial = not self.synced
        store = self._store
        handlers = self._handlers
        with handlers.lock:
            store.replace(items)
            listeners = handlers.listeners
            if listeners and items:
                notes: list[Notification] = [(ADD, obj, initial) for obj in items.values()]
                for listener in listeners:
                    listener.add_many(notes, len(notes) if initial else 0)
            self.applied["added"] += len(items)
            self.last_store_rv = replacement.resource_version
            if initial:
                self.synced = True
        if initial:
            self._signal_synced()
        if replacement.on_applied is not None:
            replacement.on_applied(len(items))  # into an empty store: every object is an add

    def _replace(
        self,
        replacement: Replacement[Any],
        pending: dict[str, Any],
        changes: list[tuple[str, Any]],
        notes: list[Notification],
        initial: bool,
    ) -> int:
        """Diff a relist against the store (plus this batch's pending changes); return how many
        initial-list adds it queued.

        Each listed object is decided by :meth:`_decide` as a listed update; a cached object the
        list lacks was deleted while nobody watched, and is delivered as a
        :class:`DeletedFinalStateUnknown` (client-go's ``Replace``).
        """
        current: dict[str, Any] = self._store.snapshot_items()
        for pkey, value in pending.items():
            if value is None:
                current.pop(pkey, None)
            else:
                current[pkey] = value
        added = 0
        seen: set[str] = set()
        key_of = self._key
        decide = self._decide
        for obj in replacement.objects:
            key = key_of(obj)
            if key is None or key in seen:
                continue
            seen.add(key)
            note = decide(_UPDATED, obj, current.get(key), initial, True)
            if note is None:
                continue
            if note[0] == ADD:
                added += 1
            notes.append(note)
            pending[key] = obj
            changes.append((key, obj))
        for gone, old in current.items():
            if gone not in seen:
                pending[gone] = None
                changes.append((gone, None))
                notes.append((DELETE, DeletedFinalStateUnknown(gone, old), None))
                self.applied["deleted"] += 1
        self.last_store_rv = replacement.resource_version
        return added if initial else 0

    def _signal_synced(self) -> None:
        """Announce the first sync; called after :attr:`synced` was set, outside the locks."""
        self.sync_done.set()
        self._handlers.check_synced()
