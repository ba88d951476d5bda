"""The fake server's storage: a revisioned in-memory object store with a bounded event history
and watchers, modelled on etcd3 behind the Kubernetes watch cache.

Semantics (those of the real Device API server, see ``device-api-contract.md``):

* One global revision, an int starting at 0. Every write (create, update, delete) bumps it by one
  and appends exactly one change to the history; the written object's ``resource_version`` is
  that revision (a decimal string). A no-op update (nothing changes) writes nothing, as
  ``GuaranteedUpdate`` in the apiserver does: no new revision, no event.
* Reads (get, list) and the start of a watch (snapshot or replay, then subscription) happen
  under the one storage lock, so a watch started from a list's revision sees every later change
  exactly once: nothing falls between the snapshot and the subscription.
* History: a watch from revision ``R`` replays every change with a revision greater than ``R``.
  History is compacted: :meth:`Storage.compact` drops changes up to a revision, after which a
  watch from an older revision fails with :class:`~nvinformers.errors.ExpiredError`
  (``too old resource version: R (C)``, where C is the oldest revision one can still watch
  from). The history is also trimmed at write time once it holds twice ``history_limit``
  changes, down to the newest ``history_limit``, so it stays bounded even without periodic
  compaction; at least ``history_limit`` revisions are always retained.
* A watch from a revision ahead of the storage fails with :class:`~nvinformers.errors.ExpiredError`
  (``too large resource version``): only a server that lost its state (restarted in memory) is
  asked for one, and the client must relist (the Kubernetes watch cache refuses it too; the
  in-memory device-apiserver refuses every revision).
* DELETED carries the object's last state with the deletion's revision as its resource version
  (what etcd-backed servers send).
* Namespaces, with ``stamp_default_namespace`` (the device-apiserver's behaviour): an object
  created without a namespace is stored under ``default``, and the named operations (get,
  update, delete, patch) look in the namespace they are given, ``""`` meaning ``default``; an
  object stored elsewhere is not found. Objects are still keyed by name alone, so one name
  cannot exist in two namespaces (the device-apiserver would allow it). Without stamping
  (January's server), named operations ignore namespaces.
* Label selectors on watches follow the Kubernetes watch cache (``cacheWatcher``): an object
  that starts matching arrives as ADDED, one that stops matching as DELETED (its previous state
  with the change's revision), one that matches before and after as MODIFIED.

Watchers are buffered (unbounded by default): writers append to each watcher's buffer under the
storage lock and notify the watcher's own condition; the serving thread waits on that condition,
so a slow reader never blocks a writer or other readers.

This module knows nothing of gRPC; the server maps the errors raised here to status codes.

Thread-safety: every public method of :class:`Storage` and :class:`Watcher` is thread-safe.
No caller-supplied code runs under the storage lock except the ``mutate`` function given to
:meth:`Storage.patch`, which must be quick and must not call back into the storage.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1.types import API_VERSION, GPU, KIND
from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    NotFoundError,
    qualify,
)

__all__ = [
    "ADDED",
    "MODIFIED",
    "DELETED",
    "BOOKMARK",
    "INITIAL_EVENTS_END_ANNOTATION",
    "WatchEvent",
    "Termination",
    "Watcher",
    "Storage",
    "bookmark_object",
]

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"
INITIAL_EVENTS_END_ANNOTATION: Final = "k8s.io/initial-events-end"

RESOURCE: Final = "gpus"
_QUALIFIED: Final = qualify(RESOURCE)
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_REVISION_RE = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event as a watcher receives it.

    Attributes:
        type: ``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK``, or anything for raw events.
        object: the object (None only for raw events).
        raw: for raw events (fault injection), the exact object bytes to send (None: no object
            field at all); ignored when ``object`` is set.
    """

    type: str
    object: GPU | None
    raw: bytes | None = None

    def object_bytes(self) -> bytes | None:
        """The serialized object to put on the wire (None: send no object field)."""
        return self.object.to_bytes() if self.object is not None else self.raw


@dataclass(frozen=True, slots=True)
class Termination:
    """Returned by :meth:`Watcher.get` once the watch is over.

    Attributes:
        reason: what :meth:`Watcher.terminate` was given (opaque to the storage; the server
            stores the gRPC status to end the stream with), or None when the watcher was
            closed (its client went away).
    """

    reason: object = None


_CLOSED = Termination(None)


def bookmark_object(revision: int, *, initial_events_end: bool = False) -> GPU:
    """A BOOKMARK's object: only ``object_meta.resource_version`` (plus, for the end of a
    streaming list's initial events, the ``k8s.io/initial-events-end: "true"`` annotation)."""
    msg = pb.Gpu()
    msg.object_meta.resource_version = str(revision)
    if initial_events_end:
        msg.object_meta.annotations[INITIAL_EVENTS_END_ANNOTATION] = "true"
    return GPU.from_proto(msg)


@dataclass(slots=True)
class _Record:
    """A stored object and what matching needs, decoded once at write time."""

    gpu: GPU
    labels: Mapping[str, str]
    namespace: str
    revision: int


@dataclass(slots=True)
class _Change:
    """One history entry: a write and the state before it."""

    type: str
    revision: int
    current: _Record
    previous: _Record | None
    # The event every unfiltered watcher gets; shared, built once.
    event: WatchEvent = field(init=False)
    # DELETED for "stopped matching a selector": the previous state at this revision; built on
    # first need (under the storage lock).
    _vanished: WatchEvent | None = None

    def __post_init__(self) -> None:
        self.event = WatchEvent(self.type, self.current.gpu)

    def vanished(self) -> WatchEvent:
        if self._vanished is None:
            assert self.previous is not None
            if self.type == DELETED:
                self._vanished = self.event
            else:
                msg = self.previous.gpu.to_proto()
                msg.object_meta.resource_version = str(self.revision)
                self._vanished = WatchEvent(DELETED, GPU.from_proto(msg))
        return self._vanished


class Watcher:
    """One watch's buffer of events, filled by the storage, drained by the serving thread.

    Thread-safety: :meth:`get` is meant for one consumer thread; everything else may be called
    from any thread. :meth:`close` and :meth:`terminate` wake a blocked :meth:`get` at once.
    """

    __slots__ = (
        "_after",
        "_buffer",
        "_cond",
        "_end",
        "_namespace",
        "_progress",
        "_selector",
        "_unfiltered",
    )

    def __init__(
        self, selector: labels.Selector, namespace: str, progress: int, after: int
    ) -> None:
        self._selector = selector
        self._namespace = namespace
        self._unfiltered = selector.empty() and not namespace
        self._cond = threading.Condition(threading.Lock())
        self._buffer: deque[WatchEvent] = deque()  # guarded by _cond
        self._end: Termination | None = None  # guarded by _cond
        # The revision up to which this watcher has been offered every change (delivered,
        # filtered out or dropped): the only revision a progress bookmark may carry.
        self._progress = progress  # guarded by _cond
        # Changes at or below this revision are skipped (those the watch's start covers).
        self._after = after

    # -- consumer side ------------------------------------------------------------------

    def get(self, timeout: float | None) -> WatchEvent | Termination | None:
        """The next event, a :class:`Termination` once the watch is over, or None on timeout.

        Blocks until one of those; ``timeout=None`` waits without limit. A termination wins
        over buffered events (a broken stream loses what it had not sent).
        """
        with self._cond:
            if not self._buffer and self._end is None:
                self._cond.wait_for(lambda: bool(self._buffer) or self._end is not None, timeout)
            if self._end is not None:
                return self._end
            if self._buffer:
                return self._buffer.popleft()
            return None

    def progress_bookmark(self) -> WatchEvent | None:
        """A BOOKMARK at this watcher's progress revision, or None while events are pending.

        Taken under the watcher's lock, so the bookmark never overtakes an event it covers.
        """
        with self._cond:
            if self._buffer or self._end is not None:
                return None
            return WatchEvent(BOOKMARK, bookmark_object(self._progress))

    def close(self) -> None:
        """The client went away: end the watch (``get`` returns a Termination with no reason)."""
        self.terminate(None)

    def terminate(self, reason: object) -> None:
        """End the watch with ``reason`` (the first termination wins)."""
        with self._cond:
            if self._end is None:
                self._end = _CLOSED if reason is None else Termination(reason)
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """How many events wait in the buffer."""
        with self._cond:
            return len(self._buffer)

    # -- producer side (called with the storage lock held) ---------------------------------

    def _event_for_locked(self, change: _Change) -> WatchEvent | None:
        if self._unfiltered:
            return change.event
        cur = change.current
        prev = change.previous
        ns = self._namespace
        sel = self._selector
        cur_passes = (
            change.type != DELETED and (not ns or cur.namespace == ns) and sel.matches(cur.labels)
        )
        prev_passes = (
            prev is not None and (not ns or prev.namespace == ns) and sel.matches(prev.labels)
        )
        if cur_passes:
            return change.event if prev_passes else WatchEvent(ADDED, cur.gpu)
        if prev_passes:
            return change.vanished()
        return None

    def _offer_locked(self, change: _Change, deliver: bool) -> None:
        event = (
            self._event_for_locked(change) if deliver and change.revision > self._after else None
        )
        with self._cond:
            if self._end is not None:
                return
            self._progress = change.revision
            if event is not None:
                self._buffer.append(event)
                self._cond.notify()

    def _push_locked(self, event: WatchEvent) -> bool:
        with self._cond:
            if self._end is not None:
                return False
            self._buffer.append(event)
            self._cond.notify()
            return True

    def _preload(self, events: Iterable[WatchEvent]) -> None:
        with self._cond:
            self._buffer.extend(events)


def _conflict(name: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {_QUALIFIED} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        resource=_QUALIFIED,
        name=name,
    )


def _immutable(field_name: str, value: str) -> BadRequestError:
    # The apiserver's ValidateObjectMetaUpdate (422 Invalid; INVALID_ARGUMENT on the wire).
    return BadRequestError(f'metadata.{field_name}: Invalid value: "{value}": field is immutable')


def _validate_name(name: str) -> None:
    if not name:
        raise BadRequestError("metadata.name: Required value: name is required")
    if len(name) > 253 or _DNS1123_SUBDOMAIN_RE.fullmatch(name) is None:
        raise BadRequestError(
            f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
            "consist of lower case alphanumeric characters, '-' or '.', and must start and end "
            "with an alphanumeric character"
        )


def _validate_labels(msg: pb.Gpu) -> None:
    for key, value in msg.object_meta.labels.items():
        try:
            labels.validate_label_key(key)
            labels.validate_label_value(value)
        except ValueError as exc:
            raise BadRequestError(f"metadata.labels: Invalid value: {exc}") from None


def _match_empty_presence(msg: pb.Gpu, current: pb.Gpu) -> None:
    # An empty spec or status and an absent one mean the same; align presence so that a patch
    # that changes nothing is recognised as a no-op.
    for name in ("spec", "status"):
        if getattr(msg, name).ByteSize() == 0 and getattr(current, name).ByteSize() == 0:
            if current.HasField(name):
                getattr(msg, name).SetInParent()
            else:
                msg.ClearField(name)


def _now() -> datetime:
    return datetime.now(UTC)


class Storage:
    """The revisioned store behind the fake server (see the module docstring).

    Args:
        history_limit: revisions always retained for watch replay (≥ 1).
        uid_factory: makes a new object uid (the server seeds it for reproducibility).
        clock: the current time (creation timestamps).
        stamp_default_namespace: store objects created without a namespace under
            ``"default"``, and resolve the named operations' namespace (see the module
            docstring).
    """

    def __init__(
        self,
        *,
        history_limit: int = 1000,
        uid_factory: Callable[[], str],
        clock: Callable[[], datetime] = _now,
        stamp_default_namespace: bool = False,
    ) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be at least 1, got {history_limit}")
        self._history_limit = history_limit
        self._uid_factory = uid_factory
        self._clock = clock
        self._stamp_default_namespace = stamp_default_namespace
        self._lock = threading.Lock()
        # Everything below is guarded by _lock.
        self._revision = 0
        self._records: dict[str, _Record] = {}
        self._sorted_names: list[str] | None = None  # cache, reset on create/delete
        # Changes with revisions compacted+1 .. revision, one per revision, in order.
        self._history: deque[_Change] = deque()
        self._compacted = 0  # the oldest revision a watch may start from
        self._watchers: set[Watcher] = set()
        self._drop_next = 0

    # -- properties -------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The current revision (that of the last write; 0 before any)."""
        with self._lock:
            return self._revision

    @property
    def compacted_revision(self) -> int:
        """The oldest revision a watch can start from (older ones are "too old")."""
        with self._lock:
            return self._compacted

    @property
    def history_limit(self) -> int:
        """Revisions always retained for replay."""
        return self._history_limit

    @property
    def watcher_count(self) -> int:
        """Subscribed watchers."""
        with self._lock:
            return len(self._watchers)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    # -- reads ------------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = None) -> GPU:
        """The current state of ``name``.

        Args:
            namespace: the namespace the request names (see the module docstring); None:
                any.

        Raises:
            NotFoundError: no such object.
        """
        with self._lock:
            return self._lookup_locked(name, namespace).gpu

    def _lookup_locked(self, name: str, namespace: str | None) -> _Record:
        record = self._records.get(name)
        if record is None or (
            namespace is not None
            and self._stamp_default_namespace
            and record.namespace != (namespace or "default")
        ):
            raise NotFoundError.for_object(RESOURCE, name)
        return record

    def names(self) -> list[str]:
        """The stored names, sorted."""
        with self._lock:
            return list(self._names_locked())

    def list_objects(
        self, selector: labels.Selector | None = None, namespace: str = ""
    ) -> tuple[int, list[GPU]]:
        """A consistent snapshot: ``(revision, objects sorted by name)``, filtered by
        ``selector`` and ``namespace`` ("" = all)."""
        with self._lock:
            revision = self._revision
            records = [self._records[n] for n in self._names_locked()]
        if selector is None or selector.empty():
            if not namespace:
                return revision, [r.gpu for r in records]
            return revision, [r.gpu for r in records if r.namespace == namespace]
        matches = selector.matches
        return revision, [
            r.gpu
            for r in records
            if (not namespace or r.namespace == namespace) and matches(r.labels)
        ]

    def _names_locked(self) -> list[str]:
        if self._sorted_names is None:
            self._sorted_names = sorted(self._records)
        return self._sorted_names

    # -- writes -----------------------------------------------------------------------------

    def create(self, gpu: pb.Gpu) -> GPU:
        """Store a new object; the server sets uid, generation 1, creation time and revision.

        The request's status is kept (providers create GPUs with their initial conditions).

        Raises:
            BadRequestError: no or invalid name, invalid labels, or a resource version set.
            AlreadyExistsError: an object of that name exists.
        """
        meta = gpu.object_meta
        name = meta.name
        _validate_name(name)
        if meta.resource_version:
            raise BadRequestError("resourceVersion should not be set on objects to be created")
        _validate_labels(gpu)
        msg = pb.Gpu()
        msg.CopyFrom(gpu)
        msg.type_meta.kind = KIND
        msg.type_meta.api_version = API_VERSION
        out = msg.object_meta
        out.ClearField("uid")
        out.generation = 1
        out.creation_timestamp.FromDatetime(self._clock())
        if self._stamp_default_namespace and not out.namespace:
            out.namespace = "default"
        with self._lock:
            if name in self._records:
                raise AlreadyExistsError(
                    f'{_QUALIFIED} "{name}" already exists', resource=_QUALIFIED, name=name
                )
            out.uid = self._uid_factory()
            return self._commit_locked(ADDED, name, msg, None)

    def update(self, gpu: pb.Gpu) -> GPU:
        """Replace spec, labels and annotations (``Update``); status is left alone.

        The generation is bumped only when the spec changes. A ``resource_version`` in ``gpu``
        acts as a precondition; the object is looked up in ``gpu``'s namespace (see the module
        docstring). Nothing changes → no write, the current object.

        Raises:
            BadRequestError: no name, invalid labels, or a different uid (immutable).
            NotFoundError: no such object.
            ConflictError: stale resource version.
        """
        return self._replace(gpu, status=False)

    def update_status(self, gpu: pb.Gpu) -> GPU:
        """Replace the status only (``UpdateStatus``); same preconditions as :meth:`update`."""
        return self._replace(gpu, status=True)

    def patch(
        self,
        name: str,
        mutate: Callable[[pb.Gpu], pb.Gpu],
        *,
        status: bool,
        namespace: str | None = None,
    ) -> GPU:
        """Read-modify-write ``name`` atomically.

        ``mutate`` gets a copy of the current object and returns the desired object; then the
        result is applied like :meth:`update` (``status=False``: spec, labels, annotations) or
        :meth:`update_status` (``status=True``), including the resource-version and uid
        preconditions it carries. ``mutate`` runs under the storage lock: keep it quick and do
        not call back into the storage. The result must keep the object's name, uid and
        namespace.

        Args:
            namespace: where to look for ``name`` (see :meth:`get`).

        Raises:
            NotFoundError, ConflictError, BadRequestError: as for :meth:`update`, and whatever
                ``mutate`` raises.
        """
        with self._lock:
            record = self._lookup_locked(name, namespace)
            desired = mutate(record.gpu.to_proto())
            want, have = desired.object_meta, record.gpu.metadata
            for field_name, wanted, current in (
                ("name", want.name, name),
                ("uid", want.uid, have.uid),
                ("namespace", want.namespace, record.namespace),
            ):
                if wanted != current:
                    raise _immutable(field_name, wanted)
            return self._apply_locked(record, desired, status=status)

    def delete(
        self,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        namespace: str | None = None,
    ) -> GPU:
        """Delete ``name``; returns its last state carrying the deletion's revision.

        Args:
            namespace: where to look for ``name`` (see :meth:`get`).
            uid: precondition: the object's uid must be this.
            resource_version: precondition: the object's resource version must be this.

        Raises:
            NotFoundError: no such object.
            ConflictError: a precondition failed.
        """
        with self._lock:
            record = self._lookup_locked(name, namespace)
            current = record.gpu
            if uid and uid != current.metadata.uid:
                raise ConflictError(
                    f"Precondition failed: UID in precondition: {uid}, "
                    f"UID in object meta: {current.metadata.uid}",
                    resource=_QUALIFIED,
                    name=name,
                )
            if resource_version and resource_version != current.metadata.resource_version:
                raise ConflictError(
                    f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                    f"ResourceVersion in meta: {current.metadata.resource_version}",
                    resource=_QUALIFIED,
                    name=name,
                )
            return self._commit_locked(DELETED, name, current.to_proto(), record)

    def _replace(self, gpu: pb.Gpu, *, status: bool) -> GPU:
        name = gpu.object_meta.name
        if not name:
            raise BadRequestError("metadata.name: Required value: name is required")
        with self._lock:
            record = self._lookup_locked(name, gpu.object_meta.namespace)
            return self._apply_locked(record, gpu, status=status)

    def _apply_locked(self, record: _Record, desired: pb.Gpu, *, status: bool) -> GPU:
        name = record.gpu.metadata.name
        want = desired.object_meta
        current = record.gpu.to_proto()
        if want.resource_version and want.resource_version != current.object_meta.resource_version:
            raise _conflict(name)
        if want.uid and want.uid != current.object_meta.uid:
            raise _immutable("uid", want.uid)
        msg = pb.Gpu()
        msg.CopyFrom(current)
        if status:
            msg.ClearField("status")
            if desired.HasField("status"):
                msg.status.CopyFrom(desired.status)
        else:
            msg.ClearField("spec")
            if desired.HasField("spec"):
                msg.spec.CopyFrom(desired.spec)
            meta = msg.object_meta
            meta.labels.clear()
            meta.labels.update(want.labels)
            meta.annotations.clear()
            meta.annotations.update(want.annotations)
            _validate_labels(msg)
        _match_empty_presence(msg, current)
        if msg == current:
            return record.gpu  # no-op: no new revision, no event
        if msg.spec != current.spec:
            msg.object_meta.generation = current.object_meta.generation + 1
        return self._commit_locked(MODIFIED, name, msg, record)

    def _commit_locked(self, kind: str, name: str, msg: pb.Gpu, previous: _Record | None) -> GPU:
        self._revision += 1
        revision = self._revision
        msg.object_meta.resource_version = str(revision)
        gpu = GPU.from_proto(msg)
        record = _Record(gpu, dict(msg.object_meta.labels), msg.object_meta.namespace, revision)
        if kind == DELETED:
            del self._records[name]
            self._sorted_names = None
        else:
            if previous is None:
                self._sorted_names = None
            self._records[name] = record
        change = _Change(kind, revision, record, previous)
        self._history.append(change)
        if len(self._history) > 2 * self._history_limit:
            self._compact_locked(self._revision - self._history_limit)
        deliver = self._drop_next == 0
        if not deliver:
            self._drop_next -= 1
        for watcher in self._watchers:
            watcher._offer_locked(change, deliver)
        return gpu

    # -- history ----------------------------------------------------------------------------

    def compact(self, keep: int | None = None) -> int:
        """Drop history: everything up to now (``keep=None``), or all but the newest ``keep``
        revisions. Returns the oldest revision a watch may start from afterwards."""
        with self._lock:
            target = self._revision if keep is None else self._revision - max(keep, 0)
            self._compact_locked(target)
            return self._compacted

    def compact_to_limit(self) -> int:
        """Periodic compaction: keep the newest ``history_limit`` revisions."""
        return self.compact(self._history_limit)

    def _compact_locked(self, target: int) -> None:
        if target <= self._compacted:
            return
        history = self._history
        while history and history[0].revision <= target:
            history.popleft()
        self._compacted = target

    # -- watch ------------------------------------------------------------------------------

    def watch(
        self,
        *,
        resource_version: str = "",
        selector: labels.Selector | None = None,
        namespace: str = "",
        send_initial_events: bool | None = None,
        allow_watch_bookmarks: bool = False,
        ignore_resource_version: bool = False,
    ) -> Watcher:
        """Subscribe a watcher, preloaded with what it must see first.

        * ``resource_version`` "" or "0" (or ``ignore_resource_version``): an ADDED event for
          every matching object, then live changes.
        * a revision ``R``: every change after ``R`` from the history, then live changes.
        * ``send_initial_events=True``: the ADDED burst of the current state whatever the
          revision, then, with ``allow_watch_bookmarks`` (as in the apiserver's storage), a
          BOOKMARK at the snapshot revision annotated ``k8s.io/initial-events-end: "true"``;
          ``False``: no burst even for ""/"0" (the watch starts from now).

        Everything happens under the storage lock: no change is missed or repeated between
        the preloaded events and the live ones.

        Raises:
            ExpiredError: ``R`` is older than the compacted history, ahead of the storage (see
                the module docstring), or not a revision.
        """
        sel = labels.everything() if selector is None else selector
        with self._lock:
            current = self._revision
            events: list[WatchEvent] = []
            after = current
            if send_initial_events and resource_version not in ("", "0"):
                # "Not older than" a revision the server never reached cannot be served.
                self._check_not_ahead_locked(self._parse_revision_locked(resource_version))
            if ignore_resource_version or send_initial_events:
                events = self._initial_events_locked(sel, namespace)
            elif resource_version in ("", "0"):
                if send_initial_events is None:
                    events = self._initial_events_locked(sel, namespace)
            else:
                start = self._parse_revision_locked(resource_version)
                self._check_not_ahead_locked(start)
                if start < current:
                    probe = Watcher(sel, namespace, start, start)
                    first = start + 1 - self._history[0].revision if self._history else 0
                    for change in itertools.islice(self._history, max(first, 0), None):
                        event = probe._event_for_locked(change)
                        if event is not None:
                            events.append(event)
            if send_initial_events and allow_watch_bookmarks:
                events.append(
                    WatchEvent(BOOKMARK, bookmark_object(current, initial_events_end=True))
                )
            watcher = Watcher(sel, namespace, current, after)
            watcher._preload(events)
            self._watchers.add(watcher)
        return watcher

    def _initial_events_locked(self, sel: labels.Selector, namespace: str) -> list[WatchEvent]:
        out = []
        matches = sel.matches
        unfiltered = sel.empty()
        for name in self._names_locked():
            record = self._records[name]
            if namespace and record.namespace != namespace:
                continue
            if unfiltered or matches(record.labels):
                out.append(WatchEvent(ADDED, record.gpu))
        return out

    def _check_not_ahead_locked(self, start: int) -> None:
        if start > self._revision:
            raise ExpiredError(
                f"too large resource version: {start}, current revision: {self._revision} "
                "(the server does not have it: it may have restarted without its state)",
                resource=_QUALIFIED,
            )

    def _parse_revision_locked(self, resource_version: str) -> int:
        if _REVISION_RE.fullmatch(resource_version) is None:
            raise ExpiredError(
                f'invalid resource version "{resource_version}": expected a decimal revision',
                resource=_QUALIFIED,
            )
        start = int(resource_version)
        if start < self._compacted:
            raise ExpiredError(
                f"too old resource version: {start} ({self._compacted})", resource=_QUALIFIED
            )
        return start

    def unwatch(self, watcher: Watcher) -> None:
        """Unsubscribe ``watcher`` and close it (idempotent)."""
        with self._lock:
            self._watchers.discard(watcher)
        watcher.close()

    def end_watches(self, reason: object) -> int:
        """Terminate every subscribed watcher with ``reason``; returns how many."""
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.terminate(reason)
        return len(watchers)

    def drop_next_events(self, count: int) -> None:
        """The next ``count`` changes are stored but not delivered to any watcher (the history
        keeps them, so a later watch from an older revision replays them)."""
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        with self._lock:
            self._drop_next = count

    def push_raw(self, event: WatchEvent) -> int:
        """Deliver ``event`` as is to every watcher (not recorded, no new revision); returns how
        many watchers got it."""
        with self._lock:
            return sum(1 for watcher in self._watchers if watcher._push_locked(event))
