"""A raw-bytes gRPC server for client benchmarks: HTTP/2 written by hand, responses pre-built.

The Python gRPC server tops out at 20-30k messages/s (every message goes through the servicer
thread, a completion queue and a serializer), well below what a client can receive, so a figure
measured against it would measure the server. This server speaks just enough HTTP/2 (RFC 7540)
for a gRPC client on a Unix socket: the connection preface, SETTINGS, PING, WINDOW_UPDATE flow
control, RST_STREAM and GOAWAY; it never decodes request headers (HPACK) at all. A request is
told apart by its body: ``ListGpusRequest`` and ``WatchGpusRequest`` share one layout, and the
clients under test set ``opts.watch`` on watches only.

Responses are pre-serialized: a list call gets the configured ``ListGpusResponse`` bytes; a watch
gets the configured block of ``WatchGpusResponse`` messages (already framed), written straight from
one ``bytes`` object in DATA frames as large as the client's flow-control windows allow, so the
client is the bottleneck. The watch block is held back until the controller calls :meth:`go`
(so that a benchmark can open its watch, settle, and then time the burst alone); after the block
the stream stays open, silent, until the client cancels it.

It runs in its own process (:class:`RawServerProcess`), pinned to its own CPU when there are two,
so that serving never competes with the client for the GIL or a core.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from benchmarks import fixtures
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb

__all__ = ["RawServer", "RawServerProcess"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
_SETTINGS_INITIAL_WINDOW_SIZE, _SETTINGS_MAX_FRAME_SIZE = 0x4, 0x5
_DEFAULT_WINDOW = 65_535
#: What we let the client send us before we say WINDOW_UPDATE (requests are tiny).
_OUR_WINDOW = 1 << 30


def _frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((ftype, flags))
        + struct.pack(">I", stream)
        + payload
    )


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name: str, value: str) -> bytes:
    """An HPACK "literal header field without indexing, new name" (no Huffman, no table)."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


# ":status: 200" is entry 8 of HPACK's static table.
_RESPONSE_HEADERS = b"\x88" + _literal("content-type", "application/grpc")
_OK_TRAILERS = _literal("grpc-status", "0")


def _status_trailers(code: int, message: str) -> bytes:
    return _literal("grpc-status", str(code)) + _literal("grpc-message", message)


@dataclass
class _Stream:
    id: int
    window: int
    body: bytearray = field(default_factory=bytearray)
    #: pending output: (kind, payload) with kind "h" (headers), "d" (data), "t" (trailers)
    out: list[tuple[str, bytes]] = field(default_factory=list)
    offset: int = 0  # into out[0] when it is data
    gated: bool = False
    watch: bool = False


class RawServer:
    """Serves pre-built responses on a Unix socket (see the module docstring).

    Thread-safety: :meth:`configure`, :meth:`go`, :meth:`arm` and :meth:`wait_watches` may be
    called from any thread while connections are served.
    """

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._lock = threading.Condition()
        self._list_body = fixtures.frame(fixtures.list_response([], fixtures.RV_BASE))
        self._watch_block = b""
        self._gate = threading.Event()
        self._gate.set()
        self._watches = 0  # guarded by _lock
        self._lists = 0  # guarded by _lock
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(socket_path)
        self._listener.listen(16)

    # ------------------------------------------------------------------------------ control

    def configure(self, list_response: bytes, watch_messages: list[bytes]) -> None:
        """Set what the next list calls and watches receive (serialized response messages)."""
        block = b"".join(fixtures.frame(m) for m in watch_messages)
        with self._lock:
            self._list_body = fixtures.frame(list_response)
            self._watch_block = block

    def arm(self) -> None:
        """Hold back the events of watches opened from now on until :meth:`go`."""
        self._gate.clear()

    def go(self) -> None:
        """Release the held-back events."""
        self._gate.set()

    def wait_watches(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` watches have been opened in total."""
        with self._lock:
            return self._lock.wait_for(lambda: self._watches >= count, timeout)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"watches": self._watches, "lists": self._lists}

    # ------------------------------------------------------------------------------- serving

    def serve_forever(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            thread = threading.Thread(target=self._serve_conn, args=(conn,), daemon=True)
            self._threads.append(thread)
            self._socks.append(conn)
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(2.0)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    def _serve_conn(self, sock: socket.socket) -> None:
        try:
            _Connection(self, sock).run()
        except (OSError, EOFError):
            pass
        finally:
            sock.close()

    def _request(self, body: bytes) -> tuple[bool, list[tuple[str, bytes]]]:
        """(is_watch, output segments) for a complete request body."""
        if len(body) < 5:
            return False, [("h", _RESPONSE_HEADERS), ("t", _status_trailers(13, "empty request"))]
        request = pb.ListGpusRequest.FromString(bytes(body[5:]))
        with self._lock:
            if request.opts.watch:
                self._watches += 1
                self._lock.notify_all()
                return True, [("h", _RESPONSE_HEADERS), ("d", self._watch_block)]
            self._lists += 1
            return False, [("h", _RESPONSE_HEADERS), ("d", self._list_body), ("t", _OK_TRAILERS)]


class _Connection:
    """One client connection: a single thread reads frames and writes responses."""

    def __init__(self, server: RawServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.inbuf = bytearray()
        self.conn_window = _DEFAULT_WINDOW
        self.initial_window = _DEFAULT_WINDOW
        self.max_frame = 16_384
        self.streams: dict[int, _Stream] = {}
        self.closed = False

    def run(self) -> None:
        sock = self.sock
        while len(self.inbuf) < len(_PREFACE):
            self._recv()
        if bytes(self.inbuf[: len(_PREFACE)]) != _PREFACE:
            return
        del self.inbuf[: len(_PREFACE)]
        # Our settings (none changed), and a huge receive window so the client never waits.
        sock.sendall(
            _frame(_SETTINGS, 0, 0)
            + _frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", _OUR_WINDOW - _DEFAULT_WINDOW))
        )
        while not self.closed:
            self._parse_frames()
            wrote = self._write()
            if self._closing():
                return
            # Wait for input; poll briefly while a gated stream waits for go().
            gated = any(s.gated for s in self.streams.values())
            timeout = 0.005 if gated else (0.0 if wrote else 1.0)
            readable, _, _ = select.select([sock], [], [], timeout)
            if readable:
                self._recv()

    def _closing(self) -> bool:
        return self.closed

    def _recv(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError
        self.inbuf += data

    def _parse_frames(self) -> None:
        buf = self.inbuf
        out: list[bytes] = []
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags = buf[3], buf[4]
            stream_id = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(buf[9 : 9 + length])
            del buf[: 9 + length]
            self._on_frame(ftype, flags, stream_id, payload, out)
        if out:
            self.sock.sendall(b"".join(out))

    def _on_frame(
        self, ftype: int, flags: int, stream_id: int, payload: bytes, out: list[bytes]
    ) -> None:
        if ftype == _SETTINGS:
            if flags & _ACK:
                return
            for at in range(0, len(payload) - 5, 6):
                ident = int.from_bytes(payload[at : at + 2], "big")
                value = int.from_bytes(payload[at + 2 : at + 6], "big")
                if ident == _SETTINGS_INITIAL_WINDOW_SIZE:
                    delta = value - self.initial_window
                    self.initial_window = value
                    for stream in self.streams.values():
                        stream.window += delta
                elif ident == _SETTINGS_MAX_FRAME_SIZE:
                    self.max_frame = value
            out.append(_frame(_SETTINGS, _ACK, 0))
        elif ftype == _PING:
            if not flags & _ACK:
                out.append(_frame(_PING, _ACK, 0, payload))
        elif ftype == _WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream_id == 0:
                self.conn_window += increment
            elif stream_id in self.streams:
                self.streams[stream_id].window += increment
        elif ftype == _HEADERS:
            self.streams[stream_id] = _Stream(stream_id, self.initial_window)
            if flags & _END_STREAM:
                self._dispatch(self.streams[stream_id])
        elif ftype == _DATA:
            target = self.streams.get(stream_id)
            if flags & _PADDED and payload:
                payload = payload[1 : len(payload) - payload[0]]
            if target is not None:
                target.body += payload
                if flags & _END_STREAM:
                    self._dispatch(target)
            if length := len(payload):
                out.append(_frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", length)))
        elif ftype == _RST_STREAM:
            self.streams.pop(stream_id, None)
        elif ftype == _GOAWAY:
            self.closed = True

    def _dispatch(self, stream: _Stream) -> None:
        stream.watch, stream.out = self.server._request(bytes(stream.body))

    def _write(self) -> bool:
        """Send what the windows allow; True if anything was sent."""
        chunks: list[bytes] = []
        size = 0
        for stream in list(self.streams.values()):
            if stream.gated:
                if not self.server._gate.is_set():
                    continue
                stream.gated = False
            while stream.out:
                kind, payload = stream.out[0]
                if kind == "h":
                    chunks.append(_frame(_HEADERS, _END_HEADERS, stream.id, payload))
                    stream.out.pop(0)
                    if stream.watch and not self.server._gate.is_set():
                        stream.gated = True
                        break
                    continue
                if kind == "t":
                    chunks.append(_frame(_HEADERS, _END_HEADERS | _END_STREAM, stream.id, payload))
                    stream.out.pop(0)
                    self.streams.pop(stream.id, None)
                    continue
                remaining = len(payload) - stream.offset
                if remaining == 0:
                    stream.out.pop(0)
                    stream.offset = 0
                    continue
                room = min(self.conn_window, stream.window, self.max_frame, remaining)
                if room <= 0:
                    break
                start = stream.offset
                chunks.append(_frame(_DATA, 0, stream.id, payload[start : start + room]))
                stream.offset += room
                stream.window -= room
                self.conn_window -= room
                size += room
                if size >= 1 << 18:
                    break
        if chunks:
            self.sock.sendall(b"".join(chunks))
            return True
        return False


# ------------------------------------------------------------------------------ the process


def _server_main(conn: Connection, socket_path: str, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    server = RawServer(socket_path)
    thread = threading.Thread(target=server.serve_forever, name="raw-accept", daemon=True)
    thread.start()
    conn.send("ready")
    handlers: dict[str, Callable[..., Any]] = {
        "configure": lambda spec: server.configure(*_build(spec)),
        "arm": server.arm,
        "go": server.go,
        "wait_watches": server.wait_watches,
        "counts": server.counts,
    }
    try:
        while True:
            cmd, args = conn.recv()
            if cmd == "stop":
                conn.send(None)
                return
            conn.send(handlers[cmd](*args))
    finally:
        server.stop()
        thread.join()


def _build(spec: dict[str, int]) -> tuple[bytes, list[bytes]]:
    """The list response and watch messages for a spec (built in the server process)."""
    gpus, events = spec.get("gpus", 8), spec.get("events", 0)
    templates = fixtures.GpuTemplates(max(gpus, 1))
    list_rv = fixtures.RV_BASE + gpus
    items = [templates.gpu(i, fixtures.RV_BASE + i) for i in range(gpus)]
    messages = list(fixtures.modified_events(templates, events, list_rv + 1)) if events else []
    return fixtures.list_response(items, list_rv), messages


class RawServerProcess:
    """A :class:`RawServer` in a child process, driven through a pipe.

    Args:
        cpu: the CPU to pin the server to (None: no pinning).
    """

    def __init__(self, cpu: int | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix="nvbench-", dir="/tmp")
        self.socket_path = os.path.join(self._dir, "raw.sock")
        self.target = f"unix://{self.socket_path}"
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_server_main, args=(child, self.socket_path, cpu), name="nvbench-rawserver"
        )
        self._proc.start()
        if self._conn.recv() != "ready":
            raise RuntimeError("raw server failed to start")

    def call(self, cmd: str, *args: Any) -> Any:
        self._conn.send((cmd, args))
        return self._conn.recv()

    def configure(self, *, gpus: int, events: int = 0) -> None:
        """Serve ``gpus`` GPUs on list, then ``events`` MODIFIED events on each watch."""
        self.call("configure", {"gpus": gpus, "events": events})

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.call("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    def __enter__(self) -> RawServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
