"""Fixtures for the fake server's integration tests: a running FakeServer, a raw generated stub
on a real Unix socket, and a watch-stream reader that never blocks a test forever."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1 import gpu_pb2_grpc
from nvinformers.testing import FakeServer

WAIT = 10.0  # upper bound of any wait; reached only when a test fails


@dataclass(frozen=True)
class StreamEnd:
    code: grpc.StatusCode
    details: str


class WatchStream:
    """Reads a watch call on a named thread into a queue, so tests wait with timeouts."""

    def __init__(self, call: Iterator[pb.WatchGpusResponse]) -> None:
        self.call = call
        self._queue: queue.Queue[pb.WatchGpusResponse | StreamEnd] = queue.Queue()
        self._ended: StreamEnd | None = None
        self._thread = threading.Thread(target=self._run, name="test-watch-reader")
        self._thread.start()

    def _run(self) -> None:
        try:
            for response in self.call:
                self._queue.put(response)
        except grpc.RpcError as err:
            self._queue.put(StreamEnd(err.code(), err.details() or ""))
        else:
            self._queue.put(StreamEnd(grpc.StatusCode.OK, ""))

    def next(self, timeout: float = WAIT) -> pb.WatchGpusResponse:
        """The next event; fails the test when the stream ends or nothing comes in time."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout}s") from None
        if isinstance(item, StreamEnd):
            self._ended = item
            raise AssertionError(f"watch ended instead: {item}")
        return item

    def take(self, n: int) -> list[pb.WatchGpusResponse]:
        return [self.next() for _ in range(n)]

    def next_of_type(self, event_type: str) -> pb.WatchGpusResponse:
        """Skip events until one of ``event_type``."""
        while True:
            event = self.next()
            if event.type == event_type:
                return event

    def until(
        self, predicate: Callable[[pb.WatchGpusResponse], bool]
    ) -> list[pb.WatchGpusResponse]:
        """Events up to and including the first that satisfies ``predicate``."""
        out = []
        while True:
            out.append(self.next())
            if predicate(out[-1]):
                return out

    def end(self, timeout: float = WAIT) -> StreamEnd:
        """Wait for the end of the stream, failing on any further event."""
        if self._ended is not None:
            return self._ended
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"watch did not end within {timeout}s") from None
        if not isinstance(item, StreamEnd):
            raise AssertionError(f"expected the end of the watch, got {item.type} event")
        self._ended = item
        return item

    def close(self) -> None:
        cancel = getattr(self.call, "cancel", None)
        if cancel is not None:
            cancel()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "watch reader did not stop"


class Client:
    """A channel and the raw generated stub; ``watch`` returns a :class:`WatchStream`."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 64 << 20),
                # Channels share subchannels (and their reconnect backoff) by default; a fresh
                # client after a server restart must not inherit an old one's backoff.
                ("grpc.use_local_subchannel_pool", 1),
            ],
        )
        self.stub = gpu_pb2_grpc.GpuServiceStub(self.channel)
        self._streams: list[WatchStream] = []

    def watch(self, namespace: str | None = None, **opts: object) -> WatchStream:
        request = pb.WatchGpusRequest(opts=pb.ListOptions(**opts))  # type: ignore[arg-type]
        if namespace is not None:
            request.namespace = namespace
        stream = WatchStream(self.stub.WatchGpus(request))
        self._streams.append(stream)
        return stream

    def list(self, **opts: object) -> pb.GpuList:
        request = pb.ListGpusRequest(opts=pb.ListOptions(**opts))  # type: ignore[arg-type]
        return self.stub.ListGpus(request, timeout=WAIT).gpu_list

    def get(self, name: str) -> pb.Gpu:
        return self.stub.GetGpu(pb.GetGpuRequest(name=name), timeout=WAIT).gpu

    def close(self) -> None:
        for stream in self._streams:
            stream.close()
        self.channel.close()


def names(items: object) -> list[str]:
    return [g.object_meta.name for g in items]  # type: ignore[attr-defined]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, bookmark_interval=None, seed=7) as fake:
        yield fake


@pytest.fixture
def client(server: FakeServer) -> Iterator[Client]:
    c = Client(server.target)
    yield c
    c.close()


@pytest.fixture
def make_client() -> Iterator[Callable[[str], Client]]:
    clients: list[Client] = []

    def make(target: str) -> Client:
        c = Client(target)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
