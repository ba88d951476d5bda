"""A Unix-socket relay between a client and the server under test, which a test can cut.

It copies bytes both ways and knows nothing of gRPC. :meth:`Relay.cut` closes every relayed
connection and refuses new ones (each is accepted and closed at once) until :meth:`Relay.restore`:
for the client that is a real network failure (its streams break, its reconnects fail with
UNAVAILABLE) while the server keeps running and can be written to directly. This is how the suite
disconnects an informer from a server it cannot otherwise control.

Threads: ``nvinformers-test-relay-accept`` and two ``nvinformers-test-relay-pump`` threads per
connection, all joined by :meth:`Relay.close`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from types import TracebackType
from typing import Self

from nvinformers.clientset import parse_target

__all__ = ["Relay"]

_CHUNK = 65536


class Relay:
    """Listens on a private Unix socket and relays each connection to ``upstream``.

    Thread-safety: every method may be called from any thread.
    """

    def __init__(self, upstream: str) -> None:
        self._upstream = parse_target(upstream)
        self._dir = tempfile.mkdtemp(prefix="nvcf-relay-", dir="/tmp")
        self.path = os.path.join(self._dir, "relay.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()  # guarded by _lock
        self._threads: list[threading.Thread] = []  # guarded by _lock
        self._cut = False  # guarded by _lock
        self._closed = False  # guarded by _lock
        self.connections = 0  # guarded by _lock: connections relayed so far
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="nvinformers-test-relay-accept"
        )
        self._acceptor.start()

    @property
    def target(self) -> str:
        """The gRPC target clients dial instead of the server's."""
        return f"unix://{self.path}"

    def cut(self) -> None:
        """Close every relayed connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            conns = list(self._conns)
        for conn in conns:
            _close(conn)

    def restore(self) -> None:
        """Relay new connections again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop relaying, close everything, join the threads, remove the socket. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
        # Wake the blocked accept() with a connection of our own, then close the listener.
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            wake.connect(self.path)
        self._acceptor.join()
        self._listener.close()
        for conn in conns:
            _close(conn)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _connect_upstream(self) -> socket.socket:
        up = self._upstream
        if up.kind == "unix":
            assert up.path is not None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(up.path)
            return sock
        host, _, port = up.address.rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)))

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                closed, cut = self._closed, self._cut
            if closed or cut:
                _close(client)
                if closed:
                    return
                continue
            try:
                server = self._connect_upstream()
            except OSError:
                _close(client)  # the server is down: the client sees the connection fail
                continue
            with self._lock:
                self.connections += 1
                self._conns.update((client, server))
                for src, dst in ((client, server), (server, client)):
                    thread = threading.Thread(
                        target=self._pump, args=(src, dst), name="nvinformers-test-relay-pump"
                    )
                    self._threads.append(thread)
                    thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
