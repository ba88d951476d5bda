"""Injected RPC failures for the fake server: "fail the next N calls of method M with code C".

Thread-safety: all methods are thread-safe; each failing call consumes one unit of the budget.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

__all__ = ["InjectedFailure", "FailurePlan"]


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
