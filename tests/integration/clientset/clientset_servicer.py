"""A scriptable GpuService for the clientset's integration tests (a real gRPC server on a socket).

Each test scripts the answers: ``get`` / ``list`` are callables from request to response (or an
``Abort``), ``watch`` is a list of steps (messages, raw bytes, ``Abort``, ``Block``). Responses may
be raw bytes, so tests can send what a well-behaved server never would (undecodable objects).
Every request is recorded with its metadata.

This is deliberately not nvinformers.testing.FakeServer: the clientset tests need to script
malformed and failing responses, and must not depend on the server's own semantics.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb

SERVICE = "nvidia.nvsentinel.v1alpha1.GpuService"


@dataclass(frozen=True)
class Abort:
    """End the call with a status."""

    code: grpc.StatusCode
    details: str = ""


@dataclass(frozen=True)
class Block:
    """Block the stream until the client cancels it (or ``release`` is set)."""

    release: threading.Event | None = None


Response = Message | bytes | Abort
WatchStep = Message | bytes | Abort | Block


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    request: Message
    metadata: dict[str, str] = field(default_factory=dict)


def _serialize(response: Message | bytes) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def watch_event(event_type: str, obj: pb.Gpu | bytes | None) -> pb.WatchGpusResponse | bytes:
    """A WatchGpusResponse; ``obj`` given as bytes is embedded verbatim (may be garbage)."""
    if isinstance(obj, bytes):
        head = pb.WatchGpusResponse(type=event_type).SerializeToString()
        # field 2, wire type 2 (length-delimited): the object's bytes exactly as given.
        return head + b"\x12" + _varint(len(obj)) + obj
    msg = pb.WatchGpusResponse(type=event_type)
    if obj is not None:
        msg.object.CopyFrom(obj)
    return msg


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class ScriptedServicer:
    """The scripted service; see the module docstring."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.get: Callable[[pb.GetGpuRequest], Response] = lambda req: Abort(
            grpc.StatusCode.NOT_FOUND, f'gpu "{req.name}" not found'
        )
        self.list: Callable[[pb.ListGpusRequest], Response] = lambda req: pb.ListGpusResponse(
            gpu_list=pb.GpuList()
        )
        self.watch: Callable[[pb.WatchGpusRequest], Sequence[WatchStep] | Iterator[WatchStep]] = (
            lambda req: []
        )
        #: Set when a watch handler reaches a Block step (the stream is established and idle).
        self.watch_blocked = threading.Event()
        #: Set when a watch handler returns (the server saw the end of the stream).
        self.watch_ended = threading.Event()

    def _record(self, method: str, request: Message, context: grpc.ServicerContext) -> None:
        metadata = {key: str(value) for key, value in context.invocation_metadata()}
        with self.lock:
            self.requests.append(Recorded(method, request, metadata))

    def requests_for(self, method: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method]

    def _unary(self, method: str, script: Callable[[Any], Response]) -> Callable[..., bytes]:
        def handle(request: Message, context: grpc.ServicerContext) -> bytes:
            self._record(method, request, context)
            response = script(request)
            if isinstance(response, Abort):
                context.abort(response.code, response.details)
            assert not isinstance(response, Abort)
            return _serialize(response)

        return handle

    def _watch(
        self, request: pb.WatchGpusRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        self._record("WatchGpus", request, context)
        try:
            for step in self.watch(request):
                if isinstance(step, Abort):
                    context.abort(step.code, step.details)
                if isinstance(step, Block):
                    release = step.release or threading.Event()
                    # The callback fires when the RPC terminates (client cancel included), so the
                    # worker thread is freed at once instead of polling is_active().
                    context.add_callback(release.set)
                    self.watch_blocked.set()
                    release.wait(timeout=30)
                    if not context.is_active():
                        return
                    continue
                assert not isinstance(step, Abort | Block)
                yield _serialize(step)
        finally:
            self.watch_ended.set()

    def handler(self) -> grpc.GenericRpcHandler:
        identity = None  # responses are serialized by the handlers themselves
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "GetGpu": grpc.unary_unary_rpc_method_handler(
                self._unary("GetGpu", lambda r: self.get(r)),
                request_deserializer=pb.GetGpuRequest.FromString,
                response_serializer=identity,
            ),
            "ListGpus": grpc.unary_unary_rpc_method_handler(
                self._unary("ListGpus", lambda r: self.list(r)),
                request_deserializer=pb.ListGpusRequest.FromString,
                response_serializer=identity,
            ),
            "WatchGpus": grpc.unary_stream_rpc_method_handler(
                self._watch,
                request_deserializer=pb.WatchGpusRequest.FromString,
                response_serializer=identity,
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


class ScriptedServer:
    """A real gRPC server on a fresh Unix socket serving a :class:`ScriptedServicer`.

    Use as a context manager; ``target`` is ``unix:///tmp/.../device-api.sock``.
    """

    def __init__(self, *, max_workers: int = 8, serve_gpu_service: bool = True) -> None:
        self.servicer = ScriptedServicer()
        self._dir = tempfile.TemporaryDirectory(dir="/tmp", prefix="nvi-cs-")
        self.socket_path = str(Path(self._dir.name) / "api.sock")
        self.target = f"unix://{self.socket_path}"
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="test-grpc")
        self._server = grpc.server(
            self._executor,
            options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
        )
        if serve_gpu_service:  # without it every call answers UNIMPLEMENTED
            self._server.add_generic_rpc_handlers((self.servicer.handler(),))
        self._server.add_insecure_port(self.target)

    def __enter__(self) -> ScriptedServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.stop(grace=None).wait(timeout=10)
        self._executor.shutdown(wait=True)
        self._dir.cleanup()
