"""The typed GPU client: ``clientset.device_v1alpha1().gpus()``.

The Python peer of the Go SDK's ``GPUInterface``. GPUs are cluster-scoped: requests never set a
namespace. Every :class:`~nvinformers.options.ListOptions` field is sent on the wire (the Go SDK of
January 2026 dropped all but the resource version); fields left at their "unset" value are not set
(proto3 ``optional`` presence), so the server applies its defaults.

Receive path: gRPC hands over each response as bytes, and the SDK decodes them itself, so that a
response that is not a valid message raises :class:`~nvinformers.errors.MalformedObjectError`
naming the method and the target (gRPC's own deserializer would log a traceback and report an
anonymous INTERNAL error). Responses are parsed with private "shadow" messages (``wire_pb2``) that
see each GPU as its raw serialized bytes, and every GPU becomes an immutable view over those bytes
(:meth:`GPU.from_bytes <nvinformers.api.device.v1alpha1._types.GPU.from_bytes>`, which validates
them). A list of 10,000 GPUs is split into items in C and costs about its wire size in memory.

Cancellation: ``get`` and ``list`` take a :class:`~nvinformers.cancel.CancelToken`; firing it
cancels the call in flight at once (the informer's reflector does so when it is stopped, so a
server that never answers cannot hold a shutdown).

The SDK is read-only, as the Go SDK is: ``create``, ``update``, ``update_status``, ``delete`` and
``patch`` exist so that code written against client-go's interface reads naturally, and raise
:class:`~nvinformers.errors.MethodNotSupportedError`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar, cast

import grpc
from google.protobuf.message import DecodeError, Message

from nvinformers.api.device.v1alpha1 import GPU, RESOURCE, GPUList, ListMeta, wire_pb2
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1._types import gpu_from_wire, gpus_from_wire
from nvinformers.cancel import CancelToken
from nvinformers.clientset._metrics import ClientMetrics
from nvinformers.clientset._status import PROTO_PACKAGE, cancelled_call_error, from_rpc_error
from nvinformers.clientset._watch import GPUWatch
from nvinformers.errors import (
    MalformedObjectError,
    MethodNotSupportedError,
    NvInformersError,
    qualify,
)
from nvinformers.meta import header_accessors
from nvinformers.options import GetOptions, ListOptions

if TYPE_CHECKING:
    from nvinformers.watch import Interface as WatchInterface

__all__ = [
    "GPUClient",
    "GPUInterface",
    "ClientsetClosedError",
    "ReadOnlyVerbs",
    "list_options_to_proto",
    "decode_response",
    "SERVICE",
    "GET_GPU",
    "LIST_GPUS",
    "WATCH_GPUS",
]

#: Full name of the gRPC service.
SERVICE = f"{PROTO_PACKAGE}.GpuService"
GET_GPU = f"/{SERVICE}/GetGpu"
LIST_GPUS = f"/{SERVICE}/ListGpus"
WATCH_GPUS = f"/{SERVICE}/WatchGpus"

#: A GPU's name, read without building a metadata view (its registered header reader).
_name_of = header_accessors(GPU).name

_M = TypeVar("_M", bound=Message)


def _malformed(message: str, *, name: str = "") -> MalformedObjectError:
    return MalformedObjectError(message, resource=qualify(RESOURCE), name=name)


def decode_response(cls: type[_M], data: bytes, *, method: str, target: str) -> _M:
    """Parse the bytes of a ``method`` response from ``target`` as ``cls``.

    Raises:
        MalformedObjectError: ``data`` is not a valid ``cls``; the message names the method, the
            target and the size, and keeps protobuf's reason.
    """
    try:
        return cls.FromString(data)
    except DecodeError as exc:
        raise _malformed(
            f"the {method} response from the Device API at {target} is not a valid "
            f"{method}Response ({len(data)} bytes): {exc}"
        ) from exc


_OTHER_GENERATION = (
    "the server may speak an older, wire-incompatible generation of the Device API (this client "
    "speaks the v1alpha1 proto of NVIDIA's device-apiserver; see docs/compatibility.md)"
)


class ClientsetClosedError(NvInformersError, RuntimeError):
    """A call was made on a clientset (or one of its typed clients) after ``close()``."""


class GPUInterface(Protocol):
    """The read verbs of a GPU client; implemented by :class:`GPUClient` and the fake clientset.

    Informers and tests can be written against this protocol.
    """

    def get(
        self,
        name: str,
        opts: GetOptions | None = None,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> GPU:
        """Fetch one GPU by name."""
        ...

    def list(
        self,
        opts: ListOptions | None = None,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> GPUList:
        """List GPUs."""
        ...

    def watch(self, opts: ListOptions | None = None) -> WatchInterface[GPU]:
        """Watch GPUs."""
        ...


def list_options_to_proto(opts: ListOptions | None, *, watch: bool = False) -> pb.ListOptions:
    """Encode ``opts``; unset fields stay unset on the wire (presence), ``watch`` is set if True.

    Raises:
        ValueError: ``opts`` is not a ListOptions, or ``timeout_seconds`` is negative.
    """
    msg = pb.ListOptions()
    if watch:
        msg.watch = True
    if opts is None:
        return msg
    if not isinstance(opts, ListOptions):
        raise ValueError(f"opts must be nvinformers.options.ListOptions, got {type(opts).__name__}")
    if opts.label_selector:
        msg.label_selector = opts.label_selector
    if opts.resource_version:
        msg.resource_version = opts.resource_version
    if opts.resource_version_match:
        msg.resource_version_match = opts.resource_version_match
    if opts.timeout_seconds is not None:
        if opts.timeout_seconds < 0:
            raise ValueError(
                f"ListOptions.timeout_seconds must be >= 0, got {opts.timeout_seconds}"
            )
        msg.timeout_seconds = opts.timeout_seconds
    if opts.allow_watch_bookmarks:
        msg.allow_watch_bookmarks = True
    if opts.send_initial_events is not None:
        msg.send_initial_events = opts.send_initial_events
    return msg


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")


class ReadOnlyVerbs:
    """The write verbs of client-go's typed client, raising ``MethodNotSupportedError``.

    The nvinformers SDK is read-only (as NVIDIA's Go SDK is); writes belong to the Device API's
    providers (health monitors), which speak the write RPCs directly.
    """

    __slots__ = ()

    def _read_only(self, verb: str) -> NoReturn:
        raise MethodNotSupportedError(
            f"the nvinformers SDK is read-only: {verb} is not supported on {qualify(RESOURCE)} "
            "(only get, list and watch are); GPUs are written by the Device API's providers",
            resource=qualify(RESOURCE),
        )

    def create(self, gpu: GPU, opts: object = None, *, timeout: float | None = None) -> NoReturn:
        """Not supported: raises :class:`MethodNotSupportedError`."""
        self._read_only("create")

    def update(self, gpu: GPU, opts: object = None, *, timeout: float | None = None) -> NoReturn:
        """Not supported: raises :class:`MethodNotSupportedError`."""
        self._read_only("update")

    def update_status(
        self, gpu: GPU, opts: object = None, *, timeout: float | None = None
    ) -> NoReturn:
        """Not supported: raises :class:`MethodNotSupportedError`."""
        self._read_only("update_status")

    def delete(self, name: str, opts: object = None, *, timeout: float | None = None) -> NoReturn:
        """Not supported: raises :class:`MethodNotSupportedError`."""
        self._read_only("delete")

    def patch(
        self,
        name: str,
        patch_type: str,
        data: bytes,
        opts: object = None,
        *subresources: str,
        timeout: float | None = None,
    ) -> NoReturn:
        """Not supported: raises :class:`MethodNotSupportedError`."""
        self._read_only("patch")


class GPUClient(ReadOnlyVerbs):
    """Typed client for ``gpus.device.nvidia.com``: get, list and watch over gRPC.

    Obtain it from ``clientset.device_v1alpha1().gpus()`` (the same object every time). The three
    gRPC multicallables are built once, here.

    Thread-safety: safe for concurrent use from any number of threads.

    Blocking: ``get`` and ``list`` block for one round trip, bounded by their ``timeout``
    (seconds; None, the default, is no deadline, as in client-go) and cut short by firing their
    ``cancel`` token; ``watch`` does not block (the stream is opened and its first failure, if
    any, is raised by the first ``next()``).

    Errors common to ``get`` and ``list``: ``ServiceUnavailableError`` when the server cannot be
    reached, the timeout expired or ``cancel`` fired (code CANCELLED); ``StatusError`` for any
    other mapped failure; ``ClientsetClosedError`` (every call) once the clientset is closed.
    """

    __slots__ = ("_closed", "_get", "_list", "_logger", "_metrics", "_target", "_watch")

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        target: str,
        logger: logging.Logger,
        metrics: ClientMetrics,
        closed: threading.Event | None = None,
    ) -> None:
        self._target = target
        self._logger = logger
        self._metrics = metrics
        # Set once, by the clientset's close(), which shares it with its typed clients.
        self._closed = threading.Event() if closed is None else closed
        # No response deserializer: responses arrive as bytes and are decoded here (see the
        # module docstring).
        self._get: grpc.UnaryUnaryMultiCallable[pb.GetGpuRequest, bytes] = channel.unary_unary(
            GET_GPU, request_serializer=pb.GetGpuRequest.SerializeToString
        )
        self._list: grpc.UnaryUnaryMultiCallable[pb.ListGpusRequest, bytes] = channel.unary_unary(
            LIST_GPUS, request_serializer=pb.ListGpusRequest.SerializeToString
        )
        self._watch: grpc.UnaryStreamMultiCallable[pb.WatchGpusRequest, bytes] = (
            channel.unary_stream(
                WATCH_GPUS, request_serializer=pb.WatchGpusRequest.SerializeToString
            )
        )

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ClientsetClosedError(
                f"the clientset for {self._target} is closed; build a new one with new_for_config()"
            )

    def get(
        self,
        name: str,
        opts: GetOptions | None = None,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> GPU:
        """Fetch the GPU ``name`` (blocking and common errors: see the class docstring).

        Args:
            name: the GPU's name (``gpu-0``); must not be empty.
            opts: ``resource_version`` "" reads the latest state.
            timeout, cancel: see the class docstring.

        Returns:
            The GPU (an immutable view; share it freely).

        Raises:
            ValueError: ``name`` is empty, or ``opts`` / ``timeout`` are invalid (before any call).
            NotFoundError: no such GPU (``gpus.device.nvidia.com "gpu-9" not found``).
            MalformedObjectError: the response is not a valid message, or carries no GPU, or an
                undecodable or nameless one.
            ServiceUnavailableError, StatusError, ClientsetClosedError: see the class docstring.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"GPU name must be a non-empty string, got {name!r}")
        if opts is not None and not isinstance(opts, GetOptions):
            raise ValueError(
                f"opts must be nvinformers.options.GetOptions, got {type(opts).__name__}"
            )
        _check_timeout(timeout)
        self._check_open()
        request = pb.GetGpuRequest(name=name)
        # Always send opts (even empty): some server builds dereference it without a nil check.
        request.opts.SetInParent()
        if opts is not None and opts.resource_version:
            request.opts.resource_version = opts.resource_version
        response = decode_response(
            wire_pb2.RawGetGpuResponse,
            self._call(self._get, request, "GetGpu", timeout, cancel, name=name),
            method="GetGpu",
            target=self._target,
        )
        if not response.HasField("gpu"):
            raise _malformed(
                f"GetGpu response for {name!r} from {self._target} carries no gpu", name=name
            )
        try:
            gpu = gpu_from_wire(response.gpu)
        except MalformedObjectError as exc:
            raise _malformed(
                f"GetGpu response for {name!r} from {self._target}: {exc}", name=name
            ) from exc
        meta = gpu.metadata
        if not meta.name:
            raise _malformed(
                f"GetGpu response for {name!r} from {self._target} carries a GPU without "
                "metadata.name",
                name=name,
            )
        if meta.name != name:
            # What a server of an older, wire-incompatible generation of the API looks like
            # through this proto (January's Gpu has its spec where ours has object_meta).
            raise _malformed(
                f"GetGpu for {name!r} from {self._target} returned a GPU named {meta.name!r}; "
                f"{_OTHER_GENERATION}",
                name=name,
            )
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug(
                "Fetched GPU: name=%s resource_version=%s",
                meta.name,
                meta.resource_version,
                extra={"gpu_name": meta.name, "resource_version": meta.resource_version},
            )
        return gpu

    def list(
        self,
        opts: ListOptions | None = None,
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> GPUList:
        """List GPUs (all, or those matching ``opts.label_selector``); see the class docstring.

        Args:
            opts: every field is sent; ``resource_version`` "" reads the latest state.
            timeout, cancel: see the class docstring.

        Returns:
            A :class:`GPUList`: ``items`` (a tuple of GPUs) and ``metadata.resource_version``, the
            revision the snapshot was taken at (watch from it to follow changes).

        Raises:
            ValueError: ``opts`` / ``timeout`` are invalid (before any call).
            BadRequestError: the server rejected the options (for example the label selector).
            MalformedObjectError: the response is not a valid message, or carries no list, or an
                undecodable or nameless item.
            ServiceUnavailableError, StatusError, ClientsetClosedError: see the class docstring.
        """
        _check_timeout(timeout)
        request = pb.ListGpusRequest()
        request.opts.CopyFrom(list_options_to_proto(opts))
        self._check_open()
        response = decode_response(
            wire_pb2.RawListGpusResponse,
            self._call(self._list, request, "ListGpus", timeout, cancel),
            method="ListGpus",
            target=self._target,
        )
        if not response.HasField("gpu_list"):
            raise _malformed(f"ListGpus response from {self._target} carries no gpu_list")
        gpu_list = response.gpu_list
        # The per-item loops run in C (map, the name's attrgetter): a list may hold 100,000 GPUs.
        try:
            items = gpus_from_wire(gpu_list.items)
        except MalformedObjectError as exc:
            raise _malformed(f"ListGpus response from {self._target}: {exc}") from exc
        if not all(map(_name_of, items)):
            index = next(i for i, item in enumerate(items) if not _name_of(item))
            raise _malformed(
                f"ListGpus response from {self._target}: item {index} has no metadata.name"
            )
        list_rv = gpu_list.list_meta.resource_version
        if not list_rv.isprintable():
            # An older, wire-incompatible generation's items land in list_meta.
            raise _malformed(
                f"ListGpus response from {self._target} carries an unreadable resource version "
                f"{list_rv[:32]!r}; {_OTHER_GENERATION}"
            )
        result = GPUList(items=items, metadata=ListMeta(resource_version=list_rv))
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug(
                "Listed GPUs: count=%d resource_version=%s",
                len(items),
                result.metadata.resource_version,
                extra={"count": len(items), "resource_version": result.metadata.resource_version},
            )
        return result

    def watch(self, opts: ListOptions | None = None) -> GPUWatch:
        """Open a watch stream of GPU changes.

        Does not block: the stream is opened and returned. Iterating it blocks for each event;
        stop it with ``stop()`` (any thread) or use it as a context manager.

        Args:
            opts: ``resource_version`` ""/"0": first an ADDED event per existing GPU, then changes;
                a revision: the changes after it. ``allow_watch_bookmarks``,
                ``send_initial_events``, ``timeout_seconds`` and ``label_selector`` are sent too.

        Returns:
            A :class:`GPUWatch` (see :mod:`nvinformers.clientset._watch` for what its iteration
            yields and raises, including ``ExpiredError`` for a too old resource version).

        Raises:
            ValueError: ``opts`` is invalid (before any call).
            ClientsetClosedError: the clientset was closed.
        """
        request = pb.WatchGpusRequest()
        request.opts.CopyFrom(list_options_to_proto(opts, watch=True))
        self._check_open()
        rv = request.opts.resource_version
        self._logger.debug(
            "Opening watch stream: resource=%s resource_version=%r",
            RESOURCE,
            rv,
            extra={"resource": RESOURCE, "resource_version": rv},
        )
        try:
            call = self._watch(request)
        except grpc.RpcError as err:  # a failure to even start the call (rare: usually lazy)
            raise from_rpc_error(
                err, target=self._target, resource=RESOURCE, watch=True, method="WatchGpus"
            ) from err
        except ValueError as exc:
            self._raise_if_closed(exc)
            raise
        return GPUWatch(
            call,
            target=self._target,
            logger=self._logger,
            metrics=self._metrics,
            method="WatchGpus",
            resource=RESOURCE,
        )

    def _call(
        self,
        multicallable: Any,
        request: Message,
        method: str,
        timeout: float | None,
        cancel: CancelToken | None,
        *,
        name: str = "",
    ) -> bytes:
        """Make a unary call; return the response bytes. Cancellable through ``cancel``.

        Without a token the call blocks in gRPC as usual; with one it is made as a future whose
        ``cancel()`` the token fires, so another thread can end the wait at once.
        """
        try:
            if cancel is None:
                data = multicallable(request, timeout=timeout)
            else:
                future = multicallable.future(request, timeout=timeout)
                remove = cancel.add_callback(future.cancel)
                try:
                    data = future.result()
                except grpc.FutureCancelledError:
                    raise cancelled_call_error(
                        target=self._target, method=method, resource=RESOURCE, name=name
                    ) from None
                finally:
                    remove()
        except grpc.RpcError as err:
            raise from_rpc_error(
                err, target=self._target, resource=RESOURCE, name=name, method=method
            ) from err
        except ValueError as exc:
            self._raise_if_closed(exc)
            raise
        return cast(bytes, data)

    def _raise_if_closed(self, exc: ValueError) -> None:
        # gRPC raises ValueError("Cannot invoke RPC on closed channel!") if close() raced the call.
        if self._closed.is_set():
            raise ClientsetClosedError(f"the clientset for {self._target} is closed") from exc

    def __repr__(self) -> str:
        return f"GPUClient(target={self._target!r})"
