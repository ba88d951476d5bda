"""The reconcile contract (controller-runtime's ``reconcile`` package).

A reconciler is level-based: it receives only a :class:`Request` naming an object — never the
event that caused it — reads the current state (from a lister), and makes the world match.
What it returns decides what happens next:

=======================================  ===============================================
reconcile ...                            then
=======================================  ===============================================
returns ``Result()``                     success: the item's failure history is forgotten
returns ``Result(requeue_after=s)``      forget, then reconcile again in ``s`` seconds
raises :class:`TerminalError`            logged and counted, forgotten, **not** retried
raises any other exception               rate-limited retry (exponential backoff per item)
=======================================  ===============================================

An exception always wins over a result (Go's ``(Result, error)`` pair has no Python peer; there
is nothing to ignore with a warning).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Request",
    "Result",
    "TerminalError",
    "is_terminal_error",
    "Reconciler",
    "AsyncReconciler",
]


@dataclass(frozen=True, slots=True, order=True)
class Request:
    """Names the object to reconcile. Hashable: it is the workqueue item."""

    name: str
    namespace: str = ""

    @property
    def key(self) -> str:
        """The cache key: ``namespace/name``, or ``name`` when cluster-scoped."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def from_key(cls, key: str) -> Request:
        """Inverse of :attr:`key`.

        Raises:
            ValueError: the key has more than one ``/``.
        """
        parts = key.split("/")
        if len(parts) == 1:
            return cls(name=parts[0])
        if len(parts) == 2:
            return cls(name=parts[1], namespace=parts[0])
        raise ValueError(f"unexpected key format: {key!r}")

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks for next: nothing (the default) or another pass later.

    Attributes:
        requeue_after: seconds after which to reconcile again (0: do not requeue).
    """

    requeue_after: float = 0.0

    def __post_init__(self) -> None:
        if self.requeue_after < 0:
            raise ValueError(f"requeue_after must be >= 0, got {self.requeue_after}")


class TerminalError(Exception):
    """Raise (or raise ``from``) to report a failure that retrying cannot fix.

    The controller logs it and counts it in ``controller_runtime_terminal_reconcile_errors_total``
    and does not requeue the request. Wrap the cause: ``raise TerminalError("bad spec") from err``.
    """


def is_terminal_error(err: BaseException) -> bool:
    """Return True if ``err`` is, or explicitly wraps, a :class:`TerminalError`.

    Follows ``__cause__`` (``raise X from err``) and the members of exception groups, like Go's
    ``errors.Is`` follows ``Unwrap``; not the implicit ``__context__``.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [err]
    while stack:
        exc = stack.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, TerminalError):
            return True
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        if exc.__cause__ is not None:
            stack.append(exc.__cause__)
    return False


class Reconciler(Protocol):
    """Makes the world match the desired state for one object."""

    def reconcile(self, request: Request) -> Result: ...


class AsyncReconciler(Protocol):
    """The asyncio form of :class:`Reconciler` (see :mod:`nvinformers.aio`)."""

    def reconcile(self, request: Request) -> Awaitable[Result]: ...
