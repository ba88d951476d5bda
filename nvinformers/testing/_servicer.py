"""The fake server's ``GpuService``: each RPC over the GPU storage, its requests checked as the
apiserver checks them, its errors as gRPC statuses, and the watch stream (tracker events →
pre-serialized ``WatchGpusResponse`` messages).

On the wire: responses are pre-serialized from the stored objects' wire bytes, and
:func:`register_servicer` registers the methods so that a servicer may return them; with
``grpcio-reflection`` installed (the ``testing`` extra; the ``dev`` extra includes it),
:func:`enable_reflection` makes ``grpcurl -plaintext -unix <socket> list`` and ``describe`` work
without the ``.proto`` files (the fake server works the same without it, only unreflected).

Every call passes the server's :class:`CallGate` first, on arrival: counted, refused while the
server is stopping, failed when a failure is injected ("fail the next N calls of method M with
code C": :class:`FailurePlan`); the gate also counts the open watch streams.

Thread-safety: the RPCs run on the gRPC pool's threads; the encoding functions are pure;
register and enable reflection before the server starts. Every method of the gate is
thread-safe: one condition guards its counters (and wakes the ``wait_for_*`` methods);
:attr:`CallGate.serving` is a plain flag, written under the server's lifecycle lock and read
without one (a call that reads it stale is one in flight at the stop, and ends as those do). A
:class:`FailurePlan` has its own lock; each failing call consumes one unit of its budget.
"""

# ruff: noqa: N802  (the servicer's method names are the RPC names of the generated base class)

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NoReturn, Protocol

import grpc
from google.protobuf import empty_pb2, message_factory
from google.protobuf.message import Message

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import API_VERSION, GPU, LIST_KIND, gpu_pb2_grpc, wire_pb2
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    NotFoundError,
    StatusError,
)
from nvinformers.testing import _patch as patch
from nvinformers.testing.storage import RawEvent, Storage, StoredGPU, event_gpu
from nvinformers.testing.tracker import Ended, Watcher

__all__ = [
    "SERVICE",
    "CallGate",
    "FailurePlan",
    "InjectedFailure",
    "check_method",
    "GpuServicer",
    "StreamEnd",
    "WatchSettings",
    "encode_watch_response",
    "encode_list_response",
    "register_servicer",
    "enable_reflection",
]

#: The descriptor of ``GpuService``: its methods and full name.
SERVICE: Final = pb.DESCRIPTOR.services_by_name["GpuService"]


@dataclass(frozen=True, slots=True)
class InjectedFailure:
    """The status an injected failure ends a call with."""

    code: grpc.StatusCode
    message: str


class FailurePlan:
    """Per-method budgets of injected failures (method names as in the service: ``ListGpus``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, InjectedFailure]] = {}  # guarded by _lock

    def fail_next(self, method: str, count: int, code: grpc.StatusCode, message: str = "") -> None:
        """Make the next ``count`` calls of ``method`` fail with ``code`` (replacing any budget
        left for that method; ``count=0`` cancels it).

        Raises:
            ValueError: negative ``count``, or ``code`` is OK.
        """
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        if code is grpc.StatusCode.OK:
            raise ValueError("an injected failure needs a status code other than OK")
        text = message or f"injected fault: {method} fails with {code.name}"
        with self._lock:
            if count == 0:
                self._pending.pop(method, None)
            else:
                self._pending[method] = (count, InjectedFailure(code, text))

    def take(self, method: str) -> InjectedFailure | None:
        """Consume one failure for ``method``: the failure, or None when none is pending."""
        with self._lock:
            pending = self._pending.get(method)
            if pending is None:
                return None
            count, failure = pending
            if count <= 1:
                del self._pending[method]
            else:
                self._pending[method] = (count - 1, failure)
            return failure

    def pending(self, method: str) -> int:
        """How many failures are left for ``method``."""
        with self._lock:
            entry = self._pending.get(method)
            return 0 if entry is None else entry[0]


def check_method(method: str) -> None:
    """Raise ``ValueError`` unless ``method`` is a method of ``GpuService``."""
    if method not in SERVICE.methods_by_name:
        raise ValueError(
            f"unknown method {method!r}; GpuService has {sorted(SERVICE.methods_by_name)}"
        )


class CallGate:
    """Counts, admits or fails the calls of one fake server (see the module docstring)."""

    def __init__(self) -> None:
        #: True while the server serves: calls that arrive otherwise get UNAVAILABLE.
        self.serving = False
        self._failures = FailurePlan()
        self._stats = threading.Condition()
        self._calls: Counter[str] = Counter()  # guarded by _stats
        self._open_watches = 0  # guarded by _stats

    @property
    def calls(self) -> Counter[str]:
        """A snapshot of how many calls each RPC received."""
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
        """Wait until ``method`` has received at least ``n`` calls; False on timeout.

        Raises:
            ValueError: ``GpuService`` has no such method.
        """
        check_method(method)
        with self._stats:
            return self._stats.wait_for(lambda: self._calls[method] >= n, timeout)

    def fail_next(self, method: str, n: int, code: grpc.StatusCode, message: str) -> None:
        """The next ``n`` calls of ``method`` fail at once with ``code``.

        Raises:
            ValueError: ``GpuService`` has no such method (or see :meth:`FailurePlan.fail_next`).
        """
        check_method(method)
        self._failures.fail_next(method, n, code, message)

    def begin(self, method: str, context: grpc.ServicerContext) -> None:
        """Count a call of ``method`` on arrival; abort it (raising, as ``context.abort`` does)
        when the server is stopping or a failure is injected for it."""
        with self._stats:
            self._calls[method] += 1
            self._stats.notify_all()
        if not self.serving:
            # A call that slips in while stop() is under way: answer like a server that is
            # going away (clients then back off) rather than with a clean, empty stream.
            context.abort(grpc.StatusCode.UNAVAILABLE, "fake Device API server is stopping")
        failure = self._failures.take(method)
        if failure is not None:
            context.abort(failure.code, failure.message)

    def watch_opened(self) -> None:
        """A watch stream starts being served."""
        with self._stats:
            self._open_watches += 1
            self._stats.notify_all()

    def watch_closed(self) -> None:
        """A watch stream has ended."""
        with self._stats:
            self._open_watches -= 1
            self._stats.notify_all()


_log = logging.getLogger("nvinformers.testing.server")  # the fake server, whichever part logs

# Status code for each error the storage raises.
_STATUS_CODES: Final[tuple[tuple[type[StatusError], grpc.StatusCode], ...]] = (
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (ConflictError, grpc.StatusCode.ABORTED),
    (ExpiredError, grpc.StatusCode.OUT_OF_RANGE),
    (BadRequestError, grpc.StatusCode.INVALID_ARGUMENT),
)
_NOT_OLDER_THAN: Final = "NotOlderThan"
_EXACT: Final = "Exact"


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """Why the server ended a watch: ``code`` None (or OK) ends it cleanly."""

    code: grpc.StatusCode | None
    message: str


class WatchSettings(Protocol):
    """What a watch reads from its server when it starts (the server may change it later)."""

    @property
    def bookmark_interval(self) -> float | None: ...

    @property
    def ignore_resource_version(self) -> bool: ...


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


class GpuServicer(gpu_pb2_grpc.GpuServiceServicer):
    """``GpuService`` over the fake server's storage. Runs on the gRPC pool's threads.

    Args:
        storage: the server's GPUs.
        gate: counts, admits or fails every call on arrival.
        settings: the server's watch settings, read at the start of every watch.
    """

    def __init__(self, storage: Storage, gate: CallGate, settings: WatchSettings) -> None:
        self._storage = storage
        self._gate = gate
        self._settings = settings

    def GetGpu(self, request: pb.GetGpuRequest, context: grpc.ServicerContext) -> pb.GetGpuResponse:
        self._gate.begin("GetGpu", context)
        try:
            gpu = self._storage.get(request.name, request.namespace)
        except StatusError as exc:
            _abort(context, exc)
        response = pb.GetGpuResponse()
        response.gpu.MergeFromString(gpu.to_bytes())
        return response

    # The generated base declares ListGpusResponse; this returns one pre-serialized (see
    # register_servicer and encode_list_response), hence the ignore.
    def ListGpus(  # type: ignore[override]
        self, request: pb.ListGpusRequest, context: grpc.ServicerContext
    ) -> bytes:
        self._gate.begin("ListGpus", context)
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
        return encode_list_response(revision, gpus)

    # The generated base declares Iterator[WatchGpusResponse]; this yields the same messages
    # pre-serialized (see register_servicer), hence the ignore.
    def WatchGpus(  # type: ignore[override]
        self, request: pb.WatchGpusRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        self._gate.begin("WatchGpus", context)
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
                ignore_resource_version=self._settings.ignore_resource_version,
            )
        except StatusError as exc:
            _abort(context, exc)
        self._gate.watch_opened()
        try:
            # The callback runs when the RPC ends for any reason (client cancel, deadline,
            # server stop) and wakes the wait below; False means it has already ended.
            if not context.add_callback(watcher.end):
                return
            if not self._gate.serving:
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake Device API server is stopping")
            _log.debug("Watch stream connected (starting RV: %r)", opts.resource_version)
            yield from self._stream(watcher, opts, context)
        finally:
            self._storage.tracker.unwatch(watcher)
            self._gate.watch_closed()
            _log.debug("Watch stream disconnected")

    def _stream(
        self, watcher: Watcher[StoredGPU], opts: pb.ListOptions, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        deadline = time.monotonic() + opts.timeout_seconds if opts.timeout_seconds > 0 else None
        interval = self._settings.bookmark_interval if opts.allow_watch_bookmarks else None
        for item in self._storage.tracker.events(
            watcher, deadline=deadline, bookmark_interval=interval
        ):
            if isinstance(item, Ended):
                end = item.reason
                if isinstance(end, StreamEnd) and end.code not in (None, grpc.StatusCode.OK):
                    context.abort(end.code, end.message)
                return
            for event in item:
                if isinstance(event, RawEvent):
                    yield encode_watch_response(event.type, event.data)
                else:
                    yield encode_watch_response(event.type, event_gpu(event).to_bytes())
        # timeout_seconds: a clean end of stream (status OK)

    def _write(
        self, method: str, context: grpc.ServicerContext, write: Callable[[], GPU]
    ) -> pb.Gpu:
        self._gate.begin(method, context)
        try:
            return _gpu_message(write())
        except StatusError as exc:
            _abort(context, exc)

    def CreateGpu(self, request: pb.CreateGpuRequest, context: grpc.ServicerContext) -> pb.Gpu:
        # Status is a subresource: a create ignores it (providers write it with UpdateGpuStatus).
        request.gpu.ClearField("status")
        return self._write("CreateGpu", context, lambda: self._storage.create(request.gpu))

    def UpdateGpu(self, request: pb.UpdateGpuRequest, context: grpc.ServicerContext) -> pb.Gpu:
        return self._write("UpdateGpu", context, lambda: self._storage.update(request.gpu))

    def UpdateGpuStatus(
        self, request: pb.UpdateGpuStatusRequest, context: grpc.ServicerContext
    ) -> pb.Gpu:
        return self._write(
            "UpdateGpuStatus", context, lambda: self._storage.update_status(request.gpu)
        )

    def DeleteGpu(
        self, request: pb.DeleteGpuRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._gate.begin("DeleteGpu", context)
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
        subresources = list(request.subresources)

        def write() -> GPU:
            if subresources not in ([], ["status"]):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"unsupported subresource {'/'.join(subresources)!r} "
                    "(supported: none, 'status')",
                )
            return self._storage.patch(
                request.name,
                lambda current: patch.apply_patch(current, request.patch_type, request.data),
                status=subresources == ["status"],
                namespace=request.namespace,
            )

        return self._write("PatchGpu", context, write)


# -- on the wire ---------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_watch_response(event_type: str, object_bytes: bytes | None) -> bytes:
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


def encode_list_response(revision: int, gpus: list[GPU]) -> bytes:
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


def register_servicer(servicer: gpu_pb2_grpc.GpuServiceServicer, server: grpc.Server) -> None:
    """Register every method of ``GpuService`` on ``server``.

    Built from the service descriptor like the generated ``add_GpuServiceServicer_to_server``,
    with one difference: responses may also be pre-serialized ``bytes``. The watch path encodes
    events straight from the stored wire bytes (no parse/serialize per event), and fault
    injection sends objects no message could hold.
    """
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in SERVICE.methods:
        behaviour = getattr(servicer, method.name)
        request_class = message_factory.GetMessageClass(method.input_type)
        make_handler = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make_handler(
            behaviour, request_deserializer=request_class.FromString, response_serializer=_serialize
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


# Reflection logs as the package, as it always has.
_reflection_log = logging.getLogger("nvinformers.testing")


def enable_reflection(server: grpc.Server) -> bool:
    """Serve ``grpc.reflection.v1alpha.ServerReflection`` for ``GpuService`` on ``server``.

    Returns:
        True when reflection is served, False when ``grpcio-reflection`` is not installed.
    """
    try:
        from grpc_reflection.v1alpha import reflection
    except ImportError:
        _reflection_log.debug(
            "grpcio-reflection is not installed: the fake server serves no reflection"
        )
        return False
    reflection.enable_server_reflection((SERVICE.full_name, reflection.SERVICE_NAME), server)
    return True
