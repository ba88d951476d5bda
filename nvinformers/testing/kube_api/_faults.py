"""Request-level fault injection for the fake Kubernetes API server.

:class:`RequestFaults` holds the knobs that act on HTTP requests rather than on stored state:
answer the next N requests of a verb with an error ``Status``; park new watch requests (to change
and compact the history while a client's watch is down); pause the delivery of watch events.
(Dropped events, ended watches and compaction act on the store: see
:mod:`nvinformers.testing.tracker`.)

Thread-safety: every method is thread-safe. One condition guards the failure queues, the hold
flag and the count of parked requests; :meth:`park` blocks on it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator

from nvinformers.testing.kube_api._errors import FakeKubeAPIError

__all__ = ["RequestFaults"]


class RequestFaults:
    """Injected failures, parked watch requests and paused delivery (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._failures: dict[str, deque[FakeKubeAPIError]] = {}  # guarded by _cond
        self._holding = False  # guarded by _cond
        self._held = 0  # guarded by _cond
        self._released = False  # guarded by _cond: the server is stopping, park nothing
        self._paused = False  # read without the lock by streams: a bool flips atomically

    def fail_next(self, verb: str, count: int, error: FakeKubeAPIError) -> None:
        """Answer the next ``count`` requests of ``verb`` with ``error``."""
        with self._cond:
            self._failures.setdefault(verb, deque()).extend([error] * count)

    def take_failure(self, verb: str) -> FakeKubeAPIError | None:
        """Consume the next injected failure of ``verb`` (None: none pending)."""
        with self._cond:
            queue = self._failures.get(verb)
            return queue.popleft() if queue else None

    @contextlib.contextmanager
    def hold_watch_requests(self) -> Iterator[None]:
        """Park new watch requests (:meth:`park`) until the block exits."""
        with self._cond:
            self._holding = True
        try:
            yield
        finally:
            with self._cond:
                self._holding = False
                self._cond.notify_all()

    def park(self) -> None:
        """Block a watch request while requests are held (returns at once otherwise, and when
        :meth:`release_all` is called)."""
        with self._cond:
            if not self._holding or self._released:
                return
            self._held += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._holding or self._released)
            self._held -= 1

    def wait_for_held(self, count: int, timeout: float) -> bool:
        """Block until ``count`` watch requests are parked; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._held >= count, timeout)

    def release_all(self, released: bool = True) -> None:
        """Let every parked request go and park none (the server is stopping); ``False``
        re-arms parking (the server starts again)."""
        with self._cond:
            self._released = released
            self._cond.notify_all()

    def pause(self, paused: bool) -> None:
        """Pause (queue events without sending them) or resume delivery."""
        self._paused = paused

    def paused(self) -> bool:
        return self._paused
