"""The gate every RPC of the fake server passes on arrival: counted, refused while the server
is stopping, failed when a failure is injected; and the count of open watch streams.

Thread-safety: every method is thread-safe. One condition guards the counters (and wakes the
``wait_for_*`` methods); :attr:`CallGate.serving` is a plain flag, written under the server's
lifecycle lock and read without one (a call that reads it stale is one in flight at the stop,
and ends as those do).
"""

from __future__ import annotations

import threading
from collections import Counter

import grpc

from nvinformers.testing._faults import FailurePlan
from nvinformers.testing._wire import SERVICE

__all__ = ["CallGate"]


def _check_method(method: str) -> None:
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
        _check_method(method)
        with self._stats:
            return self._stats.wait_for(lambda: self._calls[method] >= n, timeout)

    def fail_next(self, method: str, n: int, code: grpc.StatusCode, message: str) -> None:
        """The next ``n`` calls of ``method`` fail at once with ``code``.

        Raises:
            ValueError: ``GpuService`` has no such method (or see :meth:`FailurePlan.fail_next`).
        """
        _check_method(method)
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
