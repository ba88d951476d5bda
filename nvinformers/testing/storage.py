"""GPUs in the shared :class:`~nvinformers.testing.tracker.ObjectTracker`: how the GPU fakes
store them, and the fake Device API server's write rules.

Shared by both GPU fakes (the fake server and :mod:`nvinformers.clientset.fake`):
:class:`StoredGPU` (a GPU with the labels and namespace its filters read, decoded once),
:func:`gpu_matcher` (label selector and namespace), :func:`event_gpu` (the GPU a watch event
carries; BOOKMARKs get :func:`bookmark_object`), and the tracker's errors as
:mod:`nvinformers.errors` (:func:`not_found`, :func:`already_exists`, :func:`expired`).

:class:`Storage` is the fake server's store, with the semantics of the real Device API server
(see ``device-api-contract.md``); the revisions, history, compaction and watches are the
tracker's:

* Writes: a create sets uid, generation 1, creation time and kind; an update replaces spec,
  labels and annotations, an update of the status only the status; the generation moves when
  the spec changes. A ``resource_version`` in a written object is a precondition (stale:
  :class:`~nvinformers.errors.ConflictError`), a changed uid or namespace is refused. A write
  that changes nothing writes nothing, as ``GuaranteedUpdate`` in the apiserver does: no new
  revision, no event. Updates and patches read, compute outside the tracker's lock and write if
  the object is still the one read, else compute again (``GuaranteedUpdate``).
* Watches: from ``""``/``"0"`` an ADDED burst, from a revision the history after it; a
  revision older than the history, ahead of the storage (only a server that lost its state is
  asked for one: the client must relist; the Kubernetes watch cache refuses it too) or not a
  decimal number fails with :class:`~nvinformers.errors.ExpiredError`. ``send_initial_events``
  is the streaming list (the burst whatever the revision, then, with ``allow_watch_bookmarks``
  as in the apiserver's storage, a BOOKMARK at the snapshot revision annotated
  ``k8s.io/initial-events-end: "true"``); ``False`` starts from now, even from ""/"0".
* Namespaces, with ``stamp_default_namespace`` (the device-apiserver's behaviour): an object
  created without a namespace is stored under ``default``, and the named operations (get,
  update, delete, patch) look in the namespace they are given, ``""`` meaning ``default``; an
  object stored elsewhere is not found. Objects are still keyed by name alone, so one name
  cannot exist in two namespaces (the device-apiserver would allow it). Without stamping
  (January's server), named operations ignore namespaces.

This module knows nothing of gRPC; the server maps the errors raised here to status codes.

Thread-safety: every function and method is thread-safe; :class:`StoredGPU` and the events are
immutable. The ``mutate`` given to :meth:`Storage.patch` runs outside every lock, possibly more
than once (when another write lands in between).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Self

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import API_VERSION, GPU, KIND
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    NotFoundError,
    qualify,
)
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.testing.tracker import (
    Key,
    Matcher,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectTracker,
    RevisionExpiredError,
    StaleRevisionError,
    Watcher,
    WatchEvent,
    parse_revision,
    watch_start,
)

__all__ = [
    "RESOURCE",
    "StoredGPU",
    "RawEvent",
    "Storage",
    "bookmark_object",
    "event_gpu",
    "gpu_matcher",
    "key",
    "not_found",
    "already_exists",
    "expired",
]

RESOURCE: Final = "gpus"
_QUALIFIED: Final = qualify(RESOURCE)
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)


class StoredGPU:
    """A GPU as the GPU fakes store it: the object (its ``resource_version`` is ``revision``)
    and the labels and namespace their filters read, decoded once. Immutable by convention."""

    __slots__ = ("gpu", "labels", "namespace", "revision")

    def __init__(self, gpu: GPU, lbls: dict[str, str], namespace: str, revision: int) -> None:
        self.gpu = gpu
        self.labels = lbls
        self.namespace = namespace
        self.revision = revision

    @classmethod
    def stamp(cls, msg: pb.Gpu, revision: int) -> StoredGPU:
        """``msg`` stamped with ``revision`` (its ``resource_version`` is set in place)."""
        meta = msg.object_meta
        meta.resource_version = str(revision)
        return cls(GPU.from_proto(msg), dict(meta.labels), meta.namespace, revision)

    def with_revision(self, revision: int) -> Self:
        """The same state stamped with ``revision`` (a DELETED event's object)."""
        msg = self.gpu.to_proto()
        msg.object_meta.resource_version = str(revision)
        return type(self)(GPU.from_proto(msg), self.labels, self.namespace, revision)

    def __repr__(self) -> str:
        return f"StoredGPU({self.gpu.metadata.name!r}, revision={self.revision})"


class RawEvent(WatchEvent[StoredGPU]):
    """An event sent as is (fault injection): ``data`` is the exact object bytes (None: no
    object field at all). Never stored; see :meth:`ObjectTracker.broadcast
    <nvinformers.testing.tracker.ObjectTracker.broadcast>`."""

    __slots__ = ("data",)

    def __init__(self, etype: str, data: bytes | None) -> None:
        super().__init__(etype, None, 0)
        self.data = data


def key(name: str) -> Key:
    """The tracker key of GPU ``name`` (GPUs are keyed by name alone: see the module docstring)."""
    return (RESOURCE, "", name)


def bookmark_object(revision: int, *, initial_events_end: bool = False) -> GPU:
    """A BOOKMARK's object: only ``object_meta.resource_version`` (plus, for the end of a
    streaming list's initial events, the ``k8s.io/initial-events-end: "true"`` annotation)."""
    msg = pb.Gpu()
    msg.object_meta.resource_version = str(revision)
    if initial_events_end:
        msg.object_meta.annotations[INITIAL_EVENTS_END_ANNOTATION] = "true"
    return GPU.from_proto(msg)


def event_gpu(event: WatchEvent[StoredGPU]) -> GPU:
    """The GPU ``event`` carries: the stored object, or a BOOKMARK's :func:`bookmark_object`."""
    if event.object is not None:
        return event.object.gpu
    return bookmark_object(event.revision, initial_events_end=event.initial_events_end)


def gpu_matcher(selector: labels.Selector | None, namespace: str = "") -> Matcher[StoredGPU] | None:
    """The tracker filter for a label selector and a namespace ("" = all); None: everything."""
    if selector is None or selector.empty():
        if not namespace:
            return None
        return lambda r: r.namespace == namespace
    matches = selector.matches
    if not namespace:
        return lambda r: matches(r.labels)
    return lambda r: r.namespace == namespace and matches(r.labels)


def not_found(name: str) -> NotFoundError:
    """``gpus.device.nvidia.com "name" not found``."""
    return NotFoundError.for_object(RESOURCE, name)


def already_exists(name: str) -> AlreadyExistsError:
    """``gpus.device.nvidia.com "name" already exists``."""
    return AlreadyExistsError(
        f'{_QUALIFIED} "{name}" already exists', resource=_QUALIFIED, name=name
    )


def expired(exc: RevisionExpiredError) -> ExpiredError:
    """``too old resource version: R (C)``, as etcd3 storage words it."""
    return ExpiredError(str(exc), resource=_QUALIFIED)


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
    """The fake server's store (see the module docstring).

    Args:
        history_limit: revisions always retained for watch replay (≥ 1).
        uid_factory: makes a new object uid (the server seeds it for reproducibility).
        clock: the current time (creation timestamps).
        stamp_default_namespace: store objects created without a namespace under
            ``"default"``, and resolve the named operations' namespace (see the module
            docstring).

    Attributes:
        tracker: the revisioned store (revision, history, watches, fault hooks).
    """

    def __init__(
        self,
        *,
        history_limit: int = 1000,
        uid_factory: Callable[[], str],
        clock: Callable[[], datetime] = _now,
        stamp_default_namespace: bool = False,
    ) -> None:
        self.tracker: ObjectTracker[StoredGPU] = ObjectTracker(history_limit=history_limit)
        self._uid_factory = uid_factory
        self._clock = clock
        self._stamp_default_namespace = stamp_default_namespace

    # -- reads ------------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = None) -> GPU:
        """The current state of ``name``.

        Args:
            namespace: the namespace the request names (see the module docstring); None:
                any.

        Raises:
            NotFoundError: no such object.
        """
        return self._lookup(name, namespace).gpu

    def _lookup(self, name: str, namespace: str | None) -> StoredGPU:
        try:
            record = self.tracker.get(key(name))
        except ObjectNotFoundError:
            raise not_found(name) from None
        if (
            namespace is not None
            and self._stamp_default_namespace
            and record.namespace != (namespace or "default")
        ):
            raise not_found(name)
        return record

    def names(self) -> list[str]:
        """The stored names, sorted."""
        return [name for _, _, name in self.tracker.keys(RESOURCE)]

    def list_objects(
        self, selector: labels.Selector | None = None, namespace: str = ""
    ) -> tuple[int, list[GPU]]:
        """A consistent snapshot: ``(revision, objects sorted by name)``, filtered by
        ``selector`` and ``namespace`` ("" = all)."""
        records, revision = self.tracker.list(RESOURCE, "", gpu_matcher(selector, namespace))
        return revision, [r.gpu for r in records]

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
        # A metav1.Time holds whole seconds: the device-apiserver sends no fraction.
        out.creation_timestamp.FromDatetime(self._clock().replace(microsecond=0))
        if self._stamp_default_namespace and not out.namespace:
            out.namespace = "default"

        def build(revision: int) -> StoredGPU:
            out.uid = self._uid_factory()  # under the lock: only a create that happens uses one
            return StoredGPU.stamp(msg, revision)

        try:
            return self.tracker.create(key(name), build).gpu
        except ObjectExistsError:
            raise already_exists(name) from None

    def update(self, gpu: pb.Gpu) -> GPU:
        """Replace spec, labels and annotations (``Update``); status is left alone. The write
        rules (generation, precondition, namespace, no-op) are the module docstring's; a no-op
        returns the current object.

        Raises:
            BadRequestError: no name, invalid labels, or a different uid (immutable).
            NotFoundError: no such object.
            ConflictError: stale resource version.
        """
        return self._replace(gpu, status=False)

    def update_status(self, gpu: pb.Gpu) -> GPU:
        """Replace the status only (``UpdateStatus``); same preconditions as :meth:`update`."""
        return self._replace(gpu, status=True)

    def _replace(self, gpu: pb.Gpu, *, status: bool) -> GPU:
        name = gpu.object_meta.name
        if not name:
            raise BadRequestError("metadata.name: Required value: name is required")
        return self._guaranteed_update(
            name, gpu.object_meta.namespace, lambda _: gpu, status=status, keep_identity=False
        )

    def patch(
        self,
        name: str,
        mutate: Callable[[pb.Gpu], pb.Gpu],
        *,
        status: bool,
        namespace: str | None = None,
    ) -> GPU:
        """Read-modify-write ``name``.

        ``mutate`` gets a copy of the current object and returns the desired object; then the
        result is applied like :meth:`update` (``status=False``: spec, labels, annotations) or
        :meth:`update_status` (``status=True``), including the resource-version and uid
        preconditions it carries. The result must keep the object's name, uid and namespace.
        ``mutate`` runs outside the store's lock and runs again on the newer object when
        another write lands in between (``GuaranteedUpdate``): it must have no other effect.

        Args:
            namespace: where to look for ``name`` (see :meth:`get`).

        Raises:
            NotFoundError, ConflictError, BadRequestError: as for :meth:`update`, and whatever
                ``mutate`` raises.
        """
        return self._guaranteed_update(
            name, namespace, lambda r: mutate(r.gpu.to_proto()), status=status, keep_identity=True
        )

    def _guaranteed_update(
        self,
        name: str,
        namespace: str | None,
        change: Callable[[StoredGPU], pb.Gpu],
        *,
        status: bool,
        keep_identity: bool,
    ) -> GPU:
        while True:
            record = self._lookup(name, namespace)
            desired = change(record)
            if keep_identity:
                want = desired.object_meta
                for field_name, wanted, current in (
                    ("name", want.name, name),
                    ("uid", want.uid, record.gpu.metadata.uid),
                    ("namespace", want.namespace, record.namespace),
                ):
                    if wanted != current:
                        raise _immutable(field_name, wanted)
            msg = _applied(record, desired, status=status)
            if msg is None:
                return record.gpu  # no-op: no new revision, no event
            try:
                stored = self.tracker.update(
                    key(name), functools.partial(StoredGPU.stamp, msg), revision=record.revision
                )
            except StaleRevisionError:
                continue  # written in between: compute again from the newer object
            except ObjectNotFoundError:
                raise not_found(name) from None
            return stored.gpu

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
        while True:
            record = self._lookup(name, namespace)
            meta = record.gpu.metadata
            for what, wanted, actual, where in (
                ("UID", uid, meta.uid, "object meta"),
                ("ResourceVersion", resource_version, meta.resource_version, "meta"),
            ):
                if wanted and wanted != actual:
                    raise ConflictError(
                        f"Precondition failed: {what} in precondition: {wanted}, "
                        f"{what} in {where}: {actual}",
                        resource=_QUALIFIED,
                        name=name,
                    )
            try:
                return self.tracker.delete(key(name), revision=record.revision).gpu
            except StaleRevisionError:
                continue  # the preconditions are checked again on the newer object
            except ObjectNotFoundError:
                raise not_found(name) from None

    # -- history ----------------------------------------------------------------------------

    def compact_to_limit(self) -> int:
        """Periodic compaction: keep the newest ``history_limit`` revisions. Returns the
        oldest revision a watch may start from."""
        tracker = self.tracker
        return tracker.compact(tracker.revision - tracker.history_limit)

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
    ) -> Watcher[StoredGPU]:
        """Open a watch, preloaded with what it must see first (see the module docstring:
        ``ignore_resource_version`` makes every watch start with the ADDED burst); close it
        with ``tracker.unwatch``.

        Raises:
            ExpiredError: ``R`` is older than the compacted history, ahead of the storage (see
                the module docstring), or not a revision.
        """
        since: int | None = None
        initial = True
        # Some server builds burst whatever the revision; a streaming list still checks it.
        if not ignore_resource_version or send_initial_events:
            if resource_version not in ("", "0"):
                self._check_revision(resource_version)
            since, initial = watch_start(resource_version, send_initial_events)
        try:
            return self.tracker.watch(
                RESOURCE,
                matches=gpu_matcher(selector, namespace),
                since=since,
                initial_events=initial,
                initial_events_end=bool(send_initial_events) and allow_watch_bookmarks,
                bookmarks=allow_watch_bookmarks,
            )
        except RevisionExpiredError as exc:
            raise expired(exc) from None

    def _check_revision(self, resource_version: str) -> None:
        try:
            start = parse_revision(resource_version)
        except ValueError:
            raise ExpiredError(
                f'invalid resource version "{resource_version}": expected a decimal revision',
                resource=_QUALIFIED,
            ) from None
        compacted = self.tracker.compacted_revision
        if start < compacted:
            raise expired(RevisionExpiredError(start, compacted))
        # "Not older than" a revision the server never reached cannot be served either.
        current = self.tracker.revision
        if start > current:
            raise ExpiredError(
                f"too large resource version: {start}, current revision: {current} "
                "(the server does not have it: it may have restarted without its state)",
                resource=_QUALIFIED,
            )


def _applied(record: StoredGPU, desired: pb.Gpu, *, status: bool) -> pb.Gpu | None:
    """The object ``desired`` makes of ``record`` (status or the rest), None when that changes
    nothing.

    Raises:
        ConflictError: a stale ``resource_version`` in ``desired``.
        BadRequestError: a different uid, or invalid labels.
    """
    want = desired.object_meta
    current = record.gpu.to_proto()
    if want.resource_version and want.resource_version != current.object_meta.resource_version:
        raise _conflict(record.gpu.metadata.name)
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
        return None
    if msg.spec != current.spec:
        msg.object_meta.generation = current.object_meta.generation + 1
    return msg
