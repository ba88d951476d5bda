"""A real gRPC server that accepts every GpuService call and never answers (until closed).

The connection works and the call is accepted, so only a deadline (``--request-timeout``) or a
signal can end a client's wait: the case of a wedged Device API server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

import grpc

_SERVICE = "nvidia.nvsentinel.v1alpha1.GpuService"


class SilentServer:
    """Serves ``GpuService`` on a Unix socket in a private directory; every call hangs.

    Attributes:
        target: ``unix:///…/api.sock``.
        calls: set once the first call has arrived (the client is waiting now).
    """

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="nvsilent-", dir="/tmp")
        self.target = f"unix://{os.path.join(self._dir, 'api.sock')}"
        self.calls = threading.Event()
        self._release = threading.Event()
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="test-silent-grpc")
        )

        def hang(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.calls.set()
            self._release.wait()
            context.abort(grpc.StatusCode.UNAVAILABLE, "silent server closing")

        def hang_stream(request: bytes, context: grpc.ServicerContext) -> Any:
            hang(request, context)
            yield b""  # never reached

        identity = lambda b: b  # noqa: E731  (raw bytes in and out: the server never answers)
        handlers = {
            "GetGpu": grpc.unary_unary_rpc_method_handler(hang, identity, identity),
            "ListGpus": grpc.unary_unary_rpc_method_handler(hang, identity, identity),
            "WatchGpus": grpc.unary_stream_rpc_method_handler(hang_stream, identity, identity),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE, handlers),)
        )
        self._server.add_insecure_port(self.target)

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        self._server.stop(None).wait(10)
        shutil.rmtree(self._dir, ignore_errors=True)
