"""The fake Device API server: a real gRPC ``GpuService`` on a real Unix socket, with the real
server's semantics and fault injection, for tests, examples and ``nvinformers fake-server``.

What it implements (the semantics of the newest Device API server, NVIDIA's ``device-apiserver``
with etcd3 storage, checked by ``tests/conformance`` against both; see ``docs/compatibility.md``):

* Every RPC of ``GpuService``. Reads: ``GetGpu``, ``ListGpus`` (label selector, consistent
  snapshot with its revision), ``WatchGpus``. Writes (for providers and tests): ``CreateGpu``
  (status ignored: it is a subresource), ``UpdateGpu`` (spec, labels, annotations),
  ``UpdateGpuStatus`` (status only), ``DeleteGpu`` (preconditions), ``PatchGpu``
  (``application/merge-patch+json`` / ``application/json-patch+json``, main resource or
  ``status``).
* One global revision; history replay for a watch from a revision; ``OUT_OF_RANGE`` "too old
  resource version" once the history is compacted, and "too large resource version" for a
  revision the server never reached (see :mod:`nvinformers.testing.storage`).
* Watches: an ADDED burst for ``""``/``"0"``; label selectors with Kubernetes watch-cache
  transitions (an object that stops matching arrives as DELETED, one that starts as ADDED);
  periodic BOOKMARKs with ``allow_watch_bookmarks``; the streaming-list protocol
  (``send_initial_events`` + ``resource_version_match="NotOlderThan"`` → burst, then, when the
  request also allows bookmarks, a BOOKMARK annotated ``k8s.io/initial-events-end: "true"``);
  ``timeout_seconds`` ends the stream cleanly (status OK).
* Namespaces: GPUs created without one are stored under ``default`` (``stamp_default_namespace``,
  on by default), and the named operations look in the request's namespace, ``""`` meaning
  ``default``; list and watch filter by namespace when given ("" = all).
* gRPC server reflection (``grpcurl list`` / ``describe``) when ``grpcio-reflection`` is
  installed (the ``testing`` extra; see :mod:`nvinformers.testing._reflection`).
* Errors are gRPC statuses: NOT_FOUND, ALREADY_EXISTS, ABORTED (stale revision, failed
  precondition), INVALID_ARGUMENT (bad selector, bad options, unparsable list revision, bad
  patch, a changed uid or namespace), OUT_OF_RANGE.

Deliberate simplifications: ``ListGpus`` always serves the latest state (every
``resource_version`` / ``resource_version_match`` a list may carry is satisfied by it, except an
``Exact`` read of an older revision, which the fake does not reconstruct); ``GetGpu`` ignores
``opts.resource_version`` likewise; objects are keyed by name alone (one name cannot live in two
namespaces). Where the device-apiserver departs from Kubernetes conventions the fake follows
Kubernetes: it validates names and labels, and refuses a patch that renames the object or names
an unknown subresource (``docs/compatibility.md`` lists these).

Each open watch holds one thread of the server's pool (``max_workers``, default
:data:`DEFAULT_MAX_WORKERS`, 1024; threads are started only as calls need them). A stream ends as
soon as its client goes away: the RPC's termination callback wakes the thread, which waits on its
watcher's condition (no polling). Beyond ``max_workers`` concurrent RPCs the server answers
RESOURCE_EXHAUSTED ("Concurrent RPC limit exceeded!") instead of queueing calls behind watches
that never end.

Fault injection (all thread-safe, usable while clients are connected):
:meth:`FakeServer.end_watches`, :meth:`~FakeServer.drop_next_events`,
:meth:`~FakeServer.fail_next_lists`, :meth:`~FakeServer.fail_next_watches`,
:meth:`~FakeServer.fail_next_calls`, :meth:`~FakeServer.compact`,
:meth:`~FakeServer.set_ignore_resource_version`, :meth:`~FakeServer.send_raw_watch_event`,
:meth:`~FakeServer.stop` / :meth:`~FakeServer.start` / :meth:`~FakeServer.restart`; and the
hostile-server kit, :attr:`FakeServer.hostile` (:mod:`nvinformers.testing._hostile`).

Example::

    with FakeServer(flip_interval=None) as server:
        cs = new_for_config_or_die(Config(target=server.target))
        server.set_ready("gpu-3", False)
        server.end_watches(grpc.StatusCode.UNAVAILABLE)   # every informer re-watches
"""

# ruff: noqa: N802  (the servicer's method names are the RPC names of the generated base class)

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
import stat
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, NoReturn, Self

import grpc
from google.protobuf import empty_pb2, message_factory
from google.protobuf.message import Message

from nvinformers import labels, meta
from nvinformers.api.device.v1alpha1 import (
    API_VERSION,
    GPU,
    LIST_KIND,
    Condition,
    GPUList,
    gpu_pb2_grpc,
    wire_pb2,
)
from nvinformers.api.device.v1alpha1 import ListMeta as _ListMeta
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.clientset import SOCK_ENV_VAR, TARGET_ENV_VAR
from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    NotFoundError,
    NvInformersError,
    StatusError,
)
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.signals import SignalStop
from nvinformers.testing import _patch
from nvinformers.testing._faults import FailurePlan
from nvinformers.testing._hostile import Hostility
from nvinformers.testing._reflection import enable_reflection
from nvinformers.testing.storage import RawEvent, Storage, StoredGPU, event_gpu
from nvinformers.testing.tracker import Ended, Watcher

__all__ = [
    "FakeServer",
    "FakeServerError",
    "main_fake_server",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_MAX_WORKERS",
    "TARGET_ENV",
    "SOCK_ENV",
    "READY_CONDITION",
    "NOT_READY_RECOMMENDED_ACTION",
    "INITIAL_EVENTS_END_ANNOTATION",
]

_log = logging.getLogger(__name__)

#: The Device API's default socket (``unix:///var/run/nvidia-device-api/device-api.sock``).
DEFAULT_SOCKET_PATH: Final = "/var/run/nvidia-device-api/device-api.sock"
#: Environment variable naming the target (``unix:///path`` or ``unix:/path``).
TARGET_ENV: Final = TARGET_ENV_VAR
#: The newer server generation's variable, read after :data:`TARGET_ENV`.
SOCK_ENV: Final = SOCK_ENV_VAR
#: Server threads by default: each open watch holds one, so this bounds concurrent watches.
DEFAULT_MAX_WORKERS: Final = 1024
READY_CONDITION: Final = "Ready"
#: ``status.recommended_action`` of a GPU the simulation (or :meth:`FakeServer.set_ready`) marks
#: not ready.
NOT_READY_RECOMMENDED_ACTION: Final = "RESTART_DRIVER"
_READY_REASON = "DriverReady"
_READY_MESSAGE = "driver is posting ready status"
_NOT_READY_REASON = "DriverNotReady"
_NOT_READY_MESSAGE = "driver is not posting ready status"
_GPU_INDEX_LABEL = "nvidia.com/gpu.index"
_SOCKET_MODE = 0o660
_PARENT_MODE = 0o755
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_NOT_OLDER_THAN = "NotOlderThan"
_EXACT = "Exact"

_SERVICE = pb.DESCRIPTOR.services_by_name["GpuService"]

# Status code for each error the storage raises.
_STATUS_CODES: Final[tuple[tuple[type[StatusError], grpc.StatusCode], ...]] = (
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (ConflictError, grpc.StatusCode.ABORTED),
    (ExpiredError, grpc.StatusCode.OUT_OF_RANGE),
    (BadRequestError, grpc.StatusCode.INVALID_ARGUMENT),
)


class FakeServerError(NvInformersError, RuntimeError):
    """The fake server cannot start: the socket path is unusable, or something else listens."""


@dataclass(frozen=True, slots=True)
class _StreamEnd:
    """Why the server ended a watch: ``code`` None (or OK) ends it cleanly."""

    code: grpc.StatusCode | None
    message: str


# ---------------------------------------------------------------------------------------------
# Wire helpers


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_watch_response(event_type: str, object_bytes: bytes | None) -> bytes:
    """A serialized ``WatchGpusResponse`` built from the stored object's wire bytes.

    Field 1 (type, string) and field 2 (object, length-delimited): the object's bytes are copied
    as stored, with no parse/serialize round trip, and may be anything for fault injection.
    """
    parts = []
    if event_type:
        encoded = event_type.encode("utf-8")
        parts.append(b"\x0a" + _varint(len(encoded)) + encoded)
    if object_bytes is not None:
        parts.append(b"\x12" + _varint(len(object_bytes)) + object_bytes)
    return b"".join(parts)


_LIST_TYPE_META: Final = pb.TypeMeta(kind=LIST_KIND, api_version=API_VERSION).SerializeToString()


def _encode_list_response(revision: int, gpus: list[GPU]) -> bytes:
    """A serialized ``ListGpusResponse`` whose items are the stored objects' wire bytes.

    The private shadow message ``RawGpuList`` (fields 2 and 3 of ``GpuList``, items as bytes)
    joins the items in C; ``type_meta`` (field 1) is prepended by hand. Three times faster than
    parsing every item into a ``Gpu`` and serializing the list again.
    """
    raw = wire_pb2.RawGpuList(items=[gpu.to_bytes() for gpu in gpus])
    raw.list_meta.resource_version = str(revision)
    body = b"\x0a" + _varint(len(_LIST_TYPE_META)) + _LIST_TYPE_META + raw.SerializeToString()
    return b"\x0a" + _varint(len(body)) + body


def _serialize(response: Message | bytes) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def _register(servicer: gpu_pb2_grpc.GpuServiceServicer, server: grpc.Server) -> None:
    """Register every method of ``GpuService`` on ``server``.

    Built from the service descriptor like the generated ``add_GpuServiceServicer_to_server``,
    with one difference: responses may also be pre-serialized ``bytes``. The watch path encodes
    events straight from the stored wire bytes (no parse/serialize per event), and fault
    injection sends objects no message could hold.
    """
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in _SERVICE.methods:
        behaviour = getattr(servicer, method.name)
        request_class = message_factory.GetMessageClass(method.input_type)
        if method.server_streaming:
            handler = grpc.unary_stream_rpc_method_handler(
                behaviour,
                request_deserializer=request_class.FromString,
                response_serializer=_serialize,
            )
        else:
            handler = grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=request_class.FromString,
                response_serializer=_serialize,
            )
        handlers[method.name] = handler
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(_SERVICE.full_name, handlers)


def _abort(context: grpc.ServicerContext, err: StatusError) -> NoReturn:
    for cls, code in _STATUS_CODES:
        if isinstance(err, cls):
            context.abort(code, err.message)
    context.abort(grpc.StatusCode.INTERNAL, err.message)


def _gpu_message(gpu: GPU) -> pb.Gpu:
    return pb.Gpu.FromString(gpu.to_bytes())


def _parse_selector(text: str, context: grpc.ServicerContext) -> labels.Selector:
    try:
        return labels.parse(text)
    except labels.SelectorParseError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


def _list_option_errors(opts: pb.ListOptions) -> list[str]:
    """``ValidateListOptions`` of the apiserver, for a list."""
    errs = []
    if opts.HasField("send_initial_events"):
        errs.append("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")
    match = opts.resource_version_match
    if match:
        if not opts.resource_version:
            errs.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                "resourceVersion is provided"
            )
        if match not in (_NOT_OLDER_THAN, _EXACT):
            errs.append(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                f'"{_EXACT}", "{_NOT_OLDER_THAN}"'
            )
        if match == _EXACT and opts.resource_version == "0":
            errs.append(
                'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for '
                'resourceVersion "0"'
            )
    return errs


def _watch_option_errors(opts: pb.ListOptions) -> list[str]:
    """``validateWatchOptions`` of the apiserver."""
    errs = []
    match = opts.resource_version_match
    if opts.HasField("send_initial_events") and match != _NOT_OLDER_THAN:
        errs.append(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            f"resourceVersionMatch to {_NOT_OLDER_THAN}"
        )
    if match:
        if not opts.HasField("send_initial_events"):
            errs.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                "unless sendInitialEvents is provided"
            )
        if match != _NOT_OLDER_THAN:
            errs.append(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                f'"{_NOT_OLDER_THAN}"'
            )
    return errs


# ---------------------------------------------------------------------------------------------
# The servicer


class _Servicer(gpu_pb2_grpc.GpuServiceServicer):
    """``GpuService`` over the fake server's storage. Runs on the gRPC pool's threads."""

    def __init__(self, owner: FakeServer) -> None:
        self._owner = owner
        self._storage = owner._storage

    def GetGpu(self, request: pb.GetGpuRequest, context: grpc.ServicerContext) -> pb.GetGpuResponse:
        self._owner._begin_call("GetGpu", context)
        try:
            gpu = self._storage.get(request.name, request.namespace)
        except StatusError as exc:
            _abort(context, exc)
        response = pb.GetGpuResponse()
        response.gpu.MergeFromString(gpu.to_bytes())
        return response

    # The generated base declares ListGpusResponse; this returns one pre-serialized (see
    # _register and _encode_list_response), hence the ignore.
    def ListGpus(  # type: ignore[override]
        self, request: pb.ListGpusRequest, context: grpc.ServicerContext
    ) -> bytes:
        self._owner._begin_call("ListGpus", context)
        opts = request.opts
        errs = _list_option_errors(opts)
        if errs:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(errs))
        if opts.resource_version and not opts.resource_version.isdigit():
            # etcd3 storage parses the revision even though it serves the latest state.
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'invalid resource version: resourceVersion: Invalid value: "'
                f'{opts.resource_version}": expected a decimal revision',
            )
        selector = _parse_selector(opts.label_selector, context)
        revision, gpus = self._storage.list_objects(selector, request.namespace)
        return _encode_list_response(revision, gpus)

    # The generated base declares Iterator[WatchGpusResponse]; this yields the same messages
    # pre-serialized (see _register), hence the ignore.
    def WatchGpus(  # type: ignore[override]
        self, request: pb.WatchGpusRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        owner = self._owner
        owner._begin_call("WatchGpus", context)
        opts = request.opts
        errs = _watch_option_errors(opts)
        if errs:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(errs))
        selector = _parse_selector(opts.label_selector, context)
        try:
            watcher = self._storage.watch(
                resource_version=opts.resource_version,
                selector=selector,
                namespace=request.namespace,
                send_initial_events=(
                    opts.send_initial_events if opts.HasField("send_initial_events") else None
                ),
                allow_watch_bookmarks=opts.allow_watch_bookmarks,
                ignore_resource_version=owner.ignore_resource_version,
            )
        except StatusError as exc:
            _abort(context, exc)
        owner._watch_opened()
        try:
            # The callback runs when the RPC ends for any reason (client cancel, deadline,
            # server stop) and wakes the wait below; False means it has already ended.
            if not context.add_callback(watcher.end):
                return
            if not owner._serving:
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake Device API server is stopping")
            _log.debug("Watch stream connected (starting RV: %r)", opts.resource_version)
            yield from self._stream(watcher, opts, context)
        finally:
            self._storage.tracker.unwatch(watcher)
            owner._watch_closed()
            _log.debug("Watch stream disconnected")

    def _stream(
        self, watcher: Watcher[StoredGPU], opts: pb.ListOptions, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        deadline = time.monotonic() + opts.timeout_seconds if opts.timeout_seconds > 0 else None
        interval = self._owner.bookmark_interval if opts.allow_watch_bookmarks else None
        for item in self._storage.tracker.events(
            watcher, deadline=deadline, bookmark_interval=interval
        ):
            if isinstance(item, Ended):
                end = item.reason
                if isinstance(end, _StreamEnd) and end.code not in (None, grpc.StatusCode.OK):
                    context.abort(end.code, end.message)
                return
            for event in item:
                if isinstance(event, RawEvent):
                    yield _encode_watch_response(event.type, event.data)
                else:
                    yield _encode_watch_response(event.type, event_gpu(event).to_bytes())
        # timeout_seconds: a clean end of stream (status OK)

    def CreateGpu(self, request: pb.CreateGpuRequest, context: grpc.ServicerContext) -> pb.Gpu:
        self._owner._begin_call("CreateGpu", context)
        gpu = request.gpu
        # Status is a subresource: a create ignores it (providers write it with UpdateGpuStatus).
        gpu.ClearField("status")
        try:
            return _gpu_message(self._storage.create(gpu))
        except StatusError as exc:
            _abort(context, exc)

    def UpdateGpu(self, request: pb.UpdateGpuRequest, context: grpc.ServicerContext) -> pb.Gpu:
        self._owner._begin_call("UpdateGpu", context)
        try:
            return _gpu_message(self._storage.update(request.gpu))
        except StatusError as exc:
            _abort(context, exc)

    def UpdateGpuStatus(
        self, request: pb.UpdateGpuStatusRequest, context: grpc.ServicerContext
    ) -> pb.Gpu:
        self._owner._begin_call("UpdateGpuStatus", context)
        try:
            return _gpu_message(self._storage.update_status(request.gpu))
        except StatusError as exc:
            _abort(context, exc)

    def DeleteGpu(
        self, request: pb.DeleteGpuRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._owner._begin_call("DeleteGpu", context)
        pre = request.opts.preconditions
        try:
            self._storage.delete(
                request.name,
                uid=pre.uid or None,
                resource_version=pre.resource_version or None,
                namespace=request.namespace,
            )
        except StatusError as exc:
            _abort(context, exc)
        return empty_pb2.Empty()

    def PatchGpu(self, request: pb.PatchGpuRequest, context: grpc.ServicerContext) -> pb.Gpu:
        self._owner._begin_call("PatchGpu", context)
        subresources = list(request.subresources)
        if subresources not in ([], ["status"]):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unsupported subresource {'/'.join(subresources)!r} (supported: none, 'status')",
            )
        patch_type, data = request.patch_type, request.data
        try:
            gpu = self._storage.patch(
                request.name,
                lambda current: _patch.apply_patch(current, patch_type, data),
                status=subresources == ["status"],
                namespace=request.namespace,
            )
        except StatusError as exc:
            _abort(context, exc)
        return _gpu_message(gpu)


# ---------------------------------------------------------------------------------------------
# Socket handling


def _probe_listening(path: str) -> bool:
    """True when something accepts connections on the Unix socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        raise FakeServerError(f"cannot tell whether {path} is in use: {exc}") from exc
    finally:
        probe.close()
    return True


def _make_parents(path: str) -> list[str]:
    """Create the missing directories above ``path``, each 0755 whatever the umask.

    ``os.makedirs(mode=)`` applies the umask, and to the last directory only; this creates one
    level at a time and sets each mode explicitly.

    Returns:
        The directories created, outermost first (for :func:`_remove_created`).
    """
    missing: list[str] = []
    parent = os.path.dirname(path)
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    created: list[str] = []
    try:
        for directory in reversed(missing):
            try:
                os.mkdir(directory, _PARENT_MODE)
            except FileExistsError:
                continue  # created meanwhile by someone else: not ours to chmod or remove
            created.append(directory)
            os.chmod(directory, _PARENT_MODE)
    except BaseException:
        _remove_created(created)
        raise
    return created


def _remove_created(created: list[str]) -> None:
    """Remove the directories :func:`_make_parents` created, innermost first, if empty."""
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            _log.debug("leaving %s in place (not empty or already gone)", directory)
            return  # its parents are not empty either


def _prepare_socket_path(path: str) -> list[str]:
    """Make ``path`` bindable, refusing anything that is not a stale socket.

    Creates the missing parent directories (each 0755, whatever the umask); replaces a stale
    socket (nothing listening); refuses a live socket, a symbolic link, or anything that is not
    a socket, and never deletes or follows those.

    Returns:
        The directories created (removed again by the caller on stop or failure).
    """
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise FakeServerError(
            f"socket path {path} is too long for a Unix socket ({_SUN_PATH_MAX} bytes at most)"
        )
    created = _make_parents(path)
    try:
        _check_socket_path(path)
    except BaseException:
        _remove_created(created)
        raise
    return created


def _check_socket_path(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise FakeServerError(f"refusing to serve on {path}: it is a symbolic link")
    if not stat.S_ISSOCK(st.st_mode):
        raise FakeServerError(
            f"refusing to serve on {path}: it exists and is not a socket (left untouched)"
        )
    if _probe_listening(path):
        raise FakeServerError(f"refusing to serve on {path}: another server is listening there")
    _log.info("removing stale socket %s", path)
    os.unlink(path)


def _target_to_socket_path(target: str) -> str:
    """``unix:///p`` / ``unix:/p`` / ``/p`` → ``/p`` (also relative paths: ``unix:p``, ``p``).

    Raises:
        ValueError: a TCP target (the fake server listens on Unix sockets only).
    """
    if target.startswith("unix://"):
        path = target[len("unix://") :]
    elif target.startswith("unix:"):
        path = target[len("unix:") :]
    elif target.startswith("/") or ("://" not in target and ":" not in target):
        path = target
    else:
        raise ValueError(f"the fake server listens on Unix sockets only; cannot serve {target!r}")
    if not path:
        raise ValueError(f"target {target!r} names no socket path")
    return path


# ---------------------------------------------------------------------------------------------
# The server


class FakeServer:
    """An in-process fake Device API server on a Unix socket (see the module docstring).

    The store lives as long as the object: :meth:`stop`, :meth:`start` and :meth:`restart`
    keep every object, the revision and the history, so clients see a server that went away
    and came back.

    Args:
        socket_path: where to listen, as a path or a ``unix:///path`` / ``unix:/path`` target;
            missing directories above it are created (0755) on start and removed on stop if
            still empty. Default: a fresh private directory under ``/tmp`` (created on start,
            removed on stop).
        gpus: how many GPUs to create at construction (``gpu-0`` …), Ready, each labelled
            ``nvidia.com/gpu.index=<i>``; their creation takes revisions 1..gpus.
        flip_interval: every this many seconds a background thread flips one random GPU's
            Ready condition (None or 0: off).
        bookmark_interval: seconds between progress BOOKMARKs on watches that allow them
            (None or 0: never).
        history_limit: revisions always retained for watch replay.
        compaction_interval: seconds between compactions down to ``history_limit`` (None or
            0: off; the history still stays bounded, see the storage).
        max_workers: server threads, started as calls need them; each open watch holds one,
            so this bounds the concurrent watches (and calls): beyond it the server answers
            RESOURCE_EXHAUSTED.
        seed: seeds GPU uuids, object uids and the simulation, for reproducible runs.
        stamp_default_namespace: objects created without a namespace get ``"default"``, and the
            named RPCs look in the request's namespace (``""``: ``default``), as the
            device-apiserver does. False: namespaces stay as given and named operations ignore
            them (January's fake server).
        ignore_resource_version: start every watch with an ADDED burst of every object,
            whatever revision it asks for (like some real server builds).

    Thread-safety: every method may be called from any thread, also while clients are
    connected. :meth:`start`/:meth:`stop` are serialized.
    """

    def __init__(
        self,
        *,
        socket_path: str | os.PathLike[str] | None = None,
        gpus: int = 8,
        flip_interval: float | None = 2.0,
        bookmark_interval: float | None = 60.0,
        history_limit: int = 1000,
        compaction_interval: float | None = 300.0,
        max_workers: int = DEFAULT_MAX_WORKERS,
        seed: int | None = None,
        stamp_default_namespace: bool = True,
        ignore_resource_version: bool = False,
    ) -> None:
        if gpus < 0:
            raise ValueError(f"gpus must be non-negative, got {gpus}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        for name, value in (
            ("flip_interval", flip_interval),
            ("bookmark_interval", bookmark_interval),
            ("compaction_interval", compaction_interval),
        ):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be non-negative or None, got {value}")
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        if socket_path is None:
            # Not from the seeded generator: two servers built with one seed must not collide.
            private_dir = f"/tmp/nvfake-{uuid.uuid4().hex[:12]}"
            self._socket_path = os.path.join(private_dir, "device-api.sock")
            self._private_dir: str | None = private_dir
        else:
            path = os.fspath(socket_path)
            if path.startswith("unix:"):
                path = _target_to_socket_path(path)
            self._socket_path = os.path.abspath(path)
            self._private_dir = None
        self._created_dirs: list[str] = []  # guarded by _lifecycle: made by start(), for stop()
        self._flip_interval = flip_interval or None
        self._bookmark_interval = bookmark_interval or None
        self._compaction_interval = compaction_interval or None
        self._max_workers = max_workers
        self._ignore_resource_version = ignore_resource_version
        self._storage = Storage(
            history_limit=history_limit,
            uid_factory=self._new_uid,
            stamp_default_namespace=stamp_default_namespace,
        )
        self._failures = FailurePlan()
        self._hostile = Hostility()
        self._stats = threading.Condition()
        self._calls: Counter[str] = Counter()  # guarded by _stats
        self._open_watches = 0  # guarded by _stats
        self._lifecycle = threading.Lock()
        self._grpc_server: grpc.Server | None = None  # guarded by _lifecycle
        self._executor: ThreadPoolExecutor | None = None  # guarded by _lifecycle
        self._threads: list[threading.Thread] = []  # guarded by _lifecycle
        self._stop_threads = threading.Event()
        self._socket_id: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket
        self._serving = False
        for index in range(gpus):
            self._storage.create(self._inventory_gpu(index).to_proto())

    # -- construction helpers -----------------------------------------------------------------

    def _random_uuid(self) -> str:
        with self._rng_lock:
            bits = self._rng.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    def _new_uid(self) -> str:
        return self._random_uuid()

    def _inventory_gpu(self, index: int) -> GPU:
        return GPU.new(
            f"gpu-{index}",
            uuid=f"GPU-{self._random_uuid()}",
            labels={_GPU_INDEX_LABEL: str(index)},
            conditions=[
                Condition(
                    type=READY_CONDITION,
                    status=meta.CONDITION_TRUE,
                    reason=_READY_REASON,
                    message=_READY_MESSAGE,
                    last_transition_time=datetime.now(UTC),
                )
            ],
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the socket (mode 0660) and serve; start the simulation threads.

        Returns:
            self, so ``server = FakeServer().start()`` works.

        Raises:
            FakeServerError: the path is a live socket, a symlink or not a socket, or binding
                failed.
            RuntimeError: already started.
        """
        with self._lifecycle:
            if self._grpc_server is not None:
                raise RuntimeError(f"fake server already serving on {self._socket_path}")
            if self._private_dir is not None and not os.path.isdir(self._private_dir):
                os.mkdir(self._private_dir, 0o700)
            executor = ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="nvinformers-fake-server-rpc"
            )
            server = grpc.server(
                executor,
                interceptors=[self._hostile],
                options=[
                    # Clients ping every 5 minutes, also without calls: never answer that with
                    # GOAWAY ("too many pings").
                    ("grpc.keepalive_permit_without_calls", 1),
                    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                    ("grpc.http2.max_ping_strikes", 0),
                ],
                maximum_concurrent_rpcs=self._max_workers,
            )
            try:
                self._bind(server)
                self._serving = True
                server.start()
            except BaseException:
                self._serving = False
                server.stop(None).wait()
                executor.shutdown(wait=True)
                self._remove_socket()
                raise
            self._grpc_server = server
            self._executor = executor
            self._stop_threads = threading.Event()
            self._threads = []
            if self._flip_interval:
                self._spawn("nvinformers-fake-server-flipper", self._flip_loop, self._flip_interval)
            if self._compaction_interval:
                self._spawn(
                    "nvinformers-fake-server-compactor",
                    self._compaction_loop,
                    self._compaction_interval,
                )
            _log.info("Fake Device API listening on %s", self._socket_path)
            return self

    def _bind(self, server: grpc.Server) -> None:
        self._created_dirs = _prepare_socket_path(self._socket_path)
        _register(_Servicer(self), server)
        enable_reflection(server, _SERVICE.full_name)  # grpcurl list/describe, if installed
        try:
            bound = server.add_insecure_port(f"unix:{self._socket_path}")
        except RuntimeError as exc:
            raise FakeServerError(f"cannot bind {self._socket_path}: {exc}") from exc
        if not bound:
            raise FakeServerError(f"cannot bind {self._socket_path}")
        # grpc binds with the process umask; tighten before serving anyone.
        os.chmod(self._socket_path, _SOCKET_MODE)
        st = os.lstat(self._socket_path)
        self._socket_id = (st.st_dev, st.st_ino)

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving: end every watch with UNAVAILABLE, stop the server (unary calls in
        flight get ``grace`` seconds), join the threads, remove the socket. Idempotent.

        Blocks until everything has stopped. State is kept for a later :meth:`start`.
        """
        with self._lifecycle:
            server, executor = self._grpc_server, self._executor
            if server is None or executor is None:
                return
            self._serving = False
            self._stop_threads.set()
            for thread in self._threads:
                thread.join()
            self._threads = []
            # Stop accepting calls first, then end the streams: a client that re-watches as
            # soon as its stream ends is refused (UNAVAILABLE) instead of racing the shutdown
            # into a stream that the server cancels at once.
            stopped = server.stop(grace)
            # UNAVAILABLE, not a clean end: the device-apiserver's graceful stop waits for open
            # watches until it is killed, so its clients see the connection drop.
            self._storage.tracker.end_watches(
                _StreamEnd(grpc.StatusCode.UNAVAILABLE, "fake Device API server is stopping")
            )
            stopped.wait()
            executor.shutdown(wait=True)
            self._grpc_server = None
            self._executor = None
            self._remove_socket()
            _log.info("Fake Device API stopped")

    def restart(self, grace: float | None = 1.0) -> None:
        """:meth:`stop` then :meth:`start` on the same socket; objects and revisions are kept."""
        self.stop(grace)
        self.start()

    def _remove_socket(self) -> None:
        path = self._socket_path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        # Remove only the socket this server bound, never whatever replaced it.
        if st is not None and (st.st_dev, st.st_ino) == self._socket_id:
            os.unlink(path)
        self._socket_id = None
        created, self._created_dirs = self._created_dirs, []
        _remove_created(created)
        if self._private_dir is not None:
            try:
                os.rmdir(self._private_dir)
            except OSError:
                _log.debug("leaving %s in place (not empty or already gone)", self._private_dir)

    def _spawn(
        self, name: str, target: Callable[[threading.Event, float], None], arg: float
    ) -> None:
        thread = threading.Thread(target=target, args=(self._stop_threads, arg), name=name)
        thread.start()
        self._threads.append(thread)

    def _flip_loop(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self.flip_random_gpu()
            except Exception:
                _log.exception("fake server: flipping a GPU failed")

    def _compaction_loop(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self._storage.compact_to_limit()
            except Exception:
                _log.exception("fake server: compaction failed")

    def __enter__(self) -> Self:
        if not self.is_serving:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "serving" if self.is_serving else "stopped"
        return f"FakeServer({self._socket_path!r}, {state}, revision={self.revision})"

    # -- properties ---------------------------------------------------------------------------

    @property
    def target(self) -> str:
        """The gRPC target clients dial: ``unix://<socket_path>``."""
        return f"unix://{self._socket_path}"

    @property
    def socket_path(self) -> str:
        """The absolute path of the Unix socket."""
        return self._socket_path

    @property
    def revision(self) -> int:
        """The current revision (bumped by every write)."""
        return self._storage.tracker.revision

    @property
    def is_serving(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        with self._lifecycle:
            return self._grpc_server is not None

    @property
    def bookmark_interval(self) -> float | None:
        """Seconds between progress bookmarks (None: off)."""
        return self._bookmark_interval

    @property
    def ignore_resource_version(self) -> bool:
        """True when watches ignore the requested revision (see the constructor)."""
        return self._ignore_resource_version

    @property
    def storage(self) -> Storage:
        """The underlying store (for white-box tests)."""
        return self._storage

    @property
    def hostile(self) -> Hostility:
        """The hostile-server kit of this server: hung calls, silent or flapping watches,
        garbage responses, odd revisions (see :mod:`nvinformers.testing._hostile`)."""
        return self._hostile

    # -- objects ------------------------------------------------------------------------------

    def create_gpu(self, gpu: GPU) -> GPU:
        """Create ``gpu`` (its resource version, uid, generation and creation time are replaced
        by the server's).

        Raises:
            AlreadyExistsError: a GPU of that name exists.
            BadRequestError: invalid name or labels.
        """
        msg = gpu.to_proto()
        msg.object_meta.ClearField("resource_version")
        return self._storage.create(msg)

    def update_gpu(self, gpu: GPU) -> GPU:
        """Replace spec, labels and annotations of ``gpu.metadata.name`` (status untouched);
        a resource version on ``gpu`` must be current.

        Raises:
            NotFoundError, ConflictError, BadRequestError.
        """
        return self._storage.update(gpu.to_proto())

    def update_gpu_status(
        self,
        name: str,
        *,
        conditions: Iterable[Condition] | None = None,
        recommended_action: str | None = None,
    ) -> GPU:
        """Set status conditions and/or the recommended action of ``name``.

        Conditions are set by type, like ``meta.SetStatusCondition``: a condition replaces the
        one of the same type (others are kept); without a ``last_transition_time`` it keeps
        the old one when the status is unchanged and gets "now" when it changes.
        ``recommended_action``: None leaves it, "" clears it. A call that changes nothing
        writes nothing (no new revision, no event).

        Raises:
            NotFoundError: no such GPU.
        """
        new_conditions = [c.to_proto() for c in conditions or ()]

        def mutate(msg: pb.Gpu) -> pb.Gpu:
            now = datetime.now(UTC)
            status = msg.status
            for cond in new_conditions:
                _set_condition(status, cond, now)
            if recommended_action is not None:
                if recommended_action:
                    status.recommended_action = recommended_action
                else:
                    status.ClearField("recommended_action")
            return msg

        return self._storage.patch(name, mutate, status=True)

    def set_ready(self, name: str, ready: bool) -> GPU:
        """Set the Ready condition of ``name`` (reason DriverReady / DriverNotReady); a GPU
        that is not ready gets ``recommended_action`` :data:`NOT_READY_RECOMMENDED_ACTION`,
        a ready one none. Already in that state → no write."""
        condition = Condition(
            type=READY_CONDITION,
            status=meta.CONDITION_TRUE if ready else meta.CONDITION_FALSE,
            reason=_READY_REASON if ready else _NOT_READY_REASON,
            message=_READY_MESSAGE if ready else _NOT_READY_MESSAGE,
        )
        return self.update_gpu_status(
            name,
            conditions=[condition],
            recommended_action="" if ready else NOT_READY_RECOMMENDED_ACTION,
        )

    def flip_random_gpu(self) -> GPU | None:
        """Toggle the Ready condition of one random GPU (what the simulation thread does every
        ``flip_interval``); None when there is no GPU."""
        names = self._storage.names()
        if not names:
            return None
        with self._rng_lock:
            name = self._rng.choice(names)
        try:
            gpu = self._storage.get(name)
            ready = meta.is_status_condition_true(gpu.status.conditions, READY_CONDITION)
            return self.set_ready(name, not ready)
        except NotFoundError:
            return None  # deleted meanwhile

    def delete_gpu(self, name: str) -> GPU:
        """Delete ``name``; returns its last state (carrying the deletion's revision).

        Raises:
            NotFoundError: no such GPU.
        """
        return self._storage.delete(name)

    def get_gpu(self, name: str) -> GPU:
        """The current state of ``name``.

        Raises:
            NotFoundError: no such GPU.
        """
        return self._storage.get(name)

    def list_gpus(self, label_selector: str = "") -> GPUList:
        """Every GPU (matching ``label_selector``), sorted by name, with the snapshot revision."""
        revision, gpus = self._storage.list_objects(labels.parse(label_selector))
        return GPUList(items=tuple(gpus), metadata=_ListMeta(resource_version=str(revision)))

    # -- counters -----------------------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """A snapshot of how many calls each RPC received (``calls["WatchGpus"]``), counted
        on arrival, before any injected failure."""
        with self._stats:
            return Counter(self._calls)

    @property
    def open_watches(self) -> int:
        """Watch streams being served right now."""
        with self._stats:
            return self._open_watches

    def wait_for_watches(self, n: int, timeout: float) -> bool:
        """Wait until exactly ``n`` watch streams are open; False on timeout."""
        with self._stats:
            return self._stats.wait_for(lambda: self._open_watches == n, timeout)

    def wait_for_calls(self, method: str, n: int, timeout: float) -> bool:
        """Wait until ``method`` (``"ListGpus"``…) has received at least ``n`` calls."""
        if method not in _SERVICE.methods_by_name:
            raise ValueError(
                f"unknown method {method!r}; GpuService has {sorted(_SERVICE.methods_by_name)}"
            )
        with self._stats:
            return self._stats.wait_for(lambda: self._calls[method] >= n, timeout)

    def _begin_call(self, method: str, context: grpc.ServicerContext) -> None:
        with self._stats:
            self._calls[method] += 1
            self._stats.notify_all()
        if not self._serving:
            # A call that slips in while stop() is under way: answer like a server that is
            # going away (clients then back off) rather than with a clean, empty stream.
            context.abort(grpc.StatusCode.UNAVAILABLE, "fake Device API server is stopping")
        failure = self._failures.take(method)
        if failure is not None:
            context.abort(failure.code, failure.message)

    def _watch_opened(self) -> None:
        with self._stats:
            self._open_watches += 1
            self._stats.notify_all()

    def _watch_closed(self) -> None:
        with self._stats:
            self._open_watches -= 1
            self._stats.notify_all()

    # -- fault injection ----------------------------------------------------------------------

    def end_watches(self, code: grpc.StatusCode | None = None, message: str = "") -> int:
        """End every open watch stream now: with status ``code`` and ``message``, or cleanly
        (status OK) when ``code`` is None. Events not yet sent are lost (the client re-watches
        from its last revision). Returns how many streams were ended."""
        return self._storage.tracker.end_watches(
            _StreamEnd(code, message or "watch ended by the server")
        )

    def drop_next_events(self, n: int) -> None:
        """The next ``n`` changes are stored (and kept in the history) but not delivered to the
        watches open at the time: a server dropping events for slow subscribers. A later
        progress bookmark covers them, so only a relist repairs the client."""
        self._storage.tracker.drop_next_events(n)

    def fail_next_calls(
        self,
        method: str,
        n: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str = "",
    ) -> None:
        """The next ``n`` calls of ``method`` (``"GetGpu"``…) fail at once with ``code``."""
        if method not in _SERVICE.methods_by_name:
            raise ValueError(
                f"unknown method {method!r}; GpuService has {sorted(_SERVICE.methods_by_name)}"
            )
        self._failures.fail_next(method, n, code, message)

    def fail_next_lists(
        self, n: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, message: str = ""
    ) -> None:
        """The next ``n`` ``ListGpus`` calls fail with ``code``."""
        self.fail_next_calls("ListGpus", n, code, message)

    def fail_next_watches(
        self, n: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, message: str = ""
    ) -> None:
        """The next ``n`` ``WatchGpus`` calls end at once with ``code`` (before any event)."""
        self.fail_next_calls("WatchGpus", n, code, message)

    def compact(self) -> int:
        """Compact the whole history now: a watch from any earlier revision gets OUT_OF_RANGE
        "too old resource version". Returns the current revision (the oldest one can still
        watch from)."""
        return self._storage.tracker.compact()

    def set_ignore_resource_version(self, ignore: bool) -> None:
        """From now on, watches ignore the requested revision and start with an ADDED burst of
        every object (like some real server builds); False restores the normal behaviour."""
        self._ignore_resource_version = ignore

    def send_raw_watch_event(self, type: str, object_bytes: bytes | None) -> int:
        """Send ``{type, object_bytes}`` to every open watch, in order with the other events:
        an ERROR, an unknown type, a malformed object, no object at all (None). Nothing is
        stored. Returns how many watches got it."""
        return self._storage.tracker.broadcast(RawEvent(type, object_bytes))


def _set_condition(status: pb.GpuStatus, cond: pb.Condition, now: datetime) -> None:
    for existing in status.conditions:
        if existing.type == cond.type:
            if not cond.HasField("last_transition_time"):
                if existing.status == cond.status and existing.HasField("last_transition_time"):
                    cond.last_transition_time.CopyFrom(existing.last_transition_time)
                else:
                    cond.last_transition_time.FromDatetime(now)
            existing.CopyFrom(cond)
            return
    if not cond.HasField("last_transition_time"):
        cond.last_transition_time.FromDatetime(now)
    status.conditions.append(cond)


# ---------------------------------------------------------------------------------------------
# Console entry point


def _default_socket_path() -> str:
    """The socket the environment names, read as the clientset reads it:
    ``$NVIDIA_DEVICE_API_TARGET``, then ``$NVIDIA_DEVICE_API_SOCK``, then the default socket.

    Raises:
        ValueError: a malformed target (the message names the variable), or a TCP one.
    """
    from nvinformers.clientset import Config

    target = Config().parsed_target()
    if target.path is None:
        raise ValueError(
            "the fake server listens on Unix sockets only; the environment names "
            f"{target.original!r}"
        )
    return target.path


def _positive_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nvinformers fake-server",
        description="Serve a fake NVIDIA Device API (GpuService) on a Unix socket until Ctrl-C "
        "or SIGTERM (exit 130 / 143). Every open watch holds one server thread; --max-workers "
        "bounds them (and every other call in flight): beyond it, calls are refused with "
        "RESOURCE_EXHAUSTED.",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help=f"socket path or unix:///path target (default: from ${TARGET_ENV}, then "
        f"${SOCK_ENV}, else {DEFAULT_SOCKET_PATH}); missing directories are created 0755 and "
        "removed again on exit",
    )
    parser.add_argument("--gpus", type=int, default=8, metavar="N", help="GPUs to create (8)")
    parser.add_argument(
        "--max-workers",
        type=_at_least_one,
        default=DEFAULT_MAX_WORKERS,
        metavar="N",
        help="server threads, i.e. the most watches (and calls) served at once; threads start "
        f"only as calls need them ({DEFAULT_MAX_WORKERS})",
    )
    parser.add_argument(
        "--flip-interval",
        type=_positive_or_zero,
        default=2.0,
        metavar="SECONDS",
        help="flip one random GPU's Ready condition this often; 0 = off (2.0)",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=_positive_or_zero,
        default=60.0,
        metavar="SECONDS",
        help="progress bookmarks on watches that allow them; 0 = off (60)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed uuids and the simulation")
    parser.add_argument(
        "--stamp-default-namespace",
        action=argparse.BooleanOptionalAction,
        default=True,
        help='store GPUs created without a namespace under "default", as the device-apiserver '
        "does (default: on)",
    )
    parser.add_argument(
        "--ignore-resource-version",
        action="store_true",
        help="start every watch with an ADDED burst, like some server builds",
    )
    return parser


def main_fake_server(argv: list[str] | None = None, *, stop: SignalStop | None = None) -> int:
    """Run the fake server until SIGINT or SIGTERM (``nvinformers fake-server``).

    Prints ``Fake Device API listening on <path>`` once serving (stdout, flushed), and
    ``Stopping server...`` on the way out; stops cleanly, removes the socket and the directories
    it created. A signal at any moment, also while the server starts, stops it the same way.

    Blocks until stopped.

    Args:
        argv: the command line (default ``sys.argv[1:]``).
        stop: the caller's signal handling (the ``nvinformers`` command's); None: a
            :class:`~nvinformers.signals.SignalStop` installed for the call (main thread only).

    Returns:
        130 after SIGINT, 143 after SIGTERM, 0 when ``stop.event`` was set otherwise, 1 when
        the server cannot start (the reason on stderr), 2 on a usage error.
    """
    if stop is None:
        with SignalStop() as own:
            return main_fake_server(argv, stop=own)
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        try:
            path = args.socket or _default_socket_path()
        except ValueError as exc:
            parser.error(str(exc))
        if args.gpus < 0:
            parser.error(f"--gpus must be non-negative, got {args.gpus}")
        if path.startswith("unix:"):
            try:
                path = _target_to_socket_path(path)
            except ValueError as exc:
                parser.error(f"--socket: {exc}")
    except SystemExit as exc:  # --help or a usage error, already printed
        return exc.code if isinstance(exc.code, int) else 2
    server = FakeServer(
        socket_path=path,
        gpus=args.gpus,
        flip_interval=args.flip_interval,
        bookmark_interval=args.bookmark_interval,
        seed=args.seed,
        stamp_default_namespace=args.stamp_default_namespace,
        ignore_resource_version=args.ignore_resource_version,
        max_workers=args.max_workers,
    )
    try:
        try:
            server.start()
        except (FakeServerError, OSError) as exc:
            if not stop.stopped:
                print(f"nvinformers fake-server: {exc}", file=sys.stderr, flush=True)
                return 1
        else:
            if not stop.stopped:
                print(f"Fake Device API listening on {server.socket_path}", flush=True)
                print(f"target: {server.target}", flush=True)
                stop.event.wait()
                print("Stopping server...", flush=True)
    finally:
        server.stop()
    return stop.exit_code if stop.exit_code is not None else 0
