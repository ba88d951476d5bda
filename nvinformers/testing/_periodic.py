"""The fake server's background threads: each calls one function every interval (flip a GPU,
compact the history) until the server stops, logging a failure and carrying on.

Thread-safety: :meth:`PeriodicJobs.start` and :meth:`~PeriodicJobs.stop` are called under the
server's lifecycle lock; the jobs run on their own threads (named ``nvinformers-*``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["PeriodicJobs"]

_log = logging.getLogger("nvinformers.testing.server")  # the fake server, whichever part logs


class PeriodicJobs:
    """Threads that each run a job every interval until :meth:`stop`; restartable."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, name: str, interval: float, job: Callable[[], object], failure: str) -> None:
        """Start thread ``name``: ``job()`` every ``interval`` seconds; an exception is logged
        with ``failure`` and the next interval runs as usual."""
        thread = threading.Thread(
            target=self._loop, args=(self._stop, interval, job, failure), name=name
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop every thread and wait for it (blocks for at most one job run)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._stop = threading.Event()

    @staticmethod
    def _loop(
        stop: threading.Event, interval: float, job: Callable[[], object], failure: str
    ) -> None:
        while not stop.wait(interval):
            try:
                job()
            except Exception:
                _log.exception(failure)
