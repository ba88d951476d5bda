"""The fake Device API server (:class:`nvinformers.testing.FakeServer`) in a child process.

For figures that need the real server semantics (N1-N4): status writes that become watch events,
at a controlled rate. The server runs pinned to its own CPU, so that serving never competes with
the measured client; it is driven through a pipe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["FakeServerProcess"]


def _server_main(conn: Connection, gpus: int, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    from nvinformers.testing import FakeServer

    server = FakeServer(gpus=gpus, flip_interval=None, bookmark_interval=None, seed=1).start()
    conn.send(server.target)
    ready = {f"gpu-{i}": True for i in range(gpus)}
    try:
        while True:
            cmd, args = conn.recv()
            if cmd == "stop":
                conn.send(None)
                return
            if cmd == "flips":
                rate, duration = args
                conn.send(_flips(server, ready, rate, duration))
            elif cmd == "open_watches":
                conn.send(server.open_watches)
            elif cmd == "wait_watches":
                conn.send(server.wait_for_watches(*args))
            else:
                conn.send(None)
    finally:
        server.stop()


def _flips(server: Any, ready: dict[str, bool], rate: float, duration: float) -> list[Any]:
    """Toggle Ready on the GPUs round-robin at ``rate`` writes/s for ``duration`` seconds.

    Returns ``[(resource_version, perf_counter just before the write), ...]``.
    """
    names = sorted(ready)
    out: list[tuple[str, float]] = []
    period = 1.0 / rate
    start = time.perf_counter()
    count = int(rate * duration)
    for k in range(count):
        due = start + k * period
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        name = names[k % len(names)]
        ready[name] = not ready[name]
        before = time.perf_counter()
        gpu = server.set_ready(name, ready[name])
        out.append((gpu.metadata.resource_version, before))
    return out


class FakeServerProcess:
    """A FakeServer with ``gpus`` GPUs (no simulation, no bookmarks) in a child process."""

    def __init__(self, *, gpus: int = 8, cpu: int | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_server_main, args=(child, gpus, cpu), name="nvbench-fakeserver"
        )
        self._proc.start()
        self.target: str = self._conn.recv()

    def call(self, cmd: str, *args: Any) -> Any:
        self._conn.send((cmd, args))
        return self._conn.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.call("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
