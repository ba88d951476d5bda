"""The gate every RPC of the fake server passes on arrival: counted, refused while the server
is stopping, failed when a failure is injected ("fail the next N calls of method M with code C":
:class:`FailurePlan`); and the count of open watch streams.

Thread-safety: every method is thread-safe. One condition guards the counters (and wakes the
``wait_for_*`` methods); :attr:`CallGate.serving` is a plain flag, written under the server's
lifecycle lock and read without one (a call that reads it stale is one in flight at the stop,
and ends as those do). A :class:`FailurePlan` has its own lock; each failing call consumes one
unit of its budget.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Final

import grpc

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb

__all__ = ["SERVICE", "CallGate", "FailurePlan", "InjectedFailure", "check_method"]

#: The descriptor of ``GpuService``: its methods and full name.
SERVICE: Final = pb.DESCRIPTOR.services_by_name["GpuService"]


@dataclass(frozen=True, slots=True)
class InjectedFailure:
    """The status an injected failure ends a call with."""

    code: grpc.StatusCode
    message: str


class FailurePlan:
    """Per-method budgets of injected failures (method names as in the service: ``ListGpus``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, InjectedFailure]] = {}  # guarded by _lock

    def fail_next(self, method: str, count: int, code: grpc.StatusCode, message: str = "") -> None:
        """Make the next ``count`` calls of ``method`` fail with ``code`` (replacing any budget
        left for that method; ``count=0`` cancels it).

        Raises:
            ValueError: negative ``count``, or ``code`` is OK.
        """
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count}")
        if code is grpc.StatusCode.OK:
            raise ValueError("an injected failure needs a status code other than OK")
        text = message or f"injected fault: {method} fails with {code.name}"
        with self._lock:
            if count == 0:
                self._pending.pop(method, None)
            else:
                self._pending[method] = (count, InjectedFailure(code, text))

    def take(self, method: str) -> InjectedFailure | None:
        """Consume one failure for ``method``: the failure, or None when none is pending."""
        with self._lock:
            pending = self._pending.get(method)
            if pending is None:
                return None
            count, failure = pending
            if count <= 1:
                del self._pending[method]
            else:
                self._pending[method] = (count - 1, failure)
            return failure

    def pending(self, method: str) -> int:
        """How many failures are left for ``method``."""
        with self._lock:
            entry = self._pending.get(method)
            return 0 if entry is None else entry[0]


def check_method(method: str) -> None:
    """Raise ``ValueError`` unless ``method`` is a method of ``GpuService``."""
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
        check_method(method)
        with self._stats:
            return self._stats.wait_for(lambda: self._calls[method] >= n, timeout)

    def fail_next(self, method: str, n: int, code: grpc.StatusCode, message: str) -> None:
        """The next ``n`` calls of ``method`` fail at once with ``code``.

        Raises:
            ValueError: ``GpuService`` has no such method (or see :meth:`FailurePlan.fail_next`).
        """
        check_method(method)
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
