"""The reconcile contract (controller-runtime's ``reconcile`` package), and its one table.

A reconciler is level-based: it receives only a :class:`Request` naming an object — never the
event that caused it — reads the current state (from a lister), and makes the world match.
What it returns decides what happens next. :func:`judge` is this table, as one pure function;
both controller drivers (:class:`~nvinformers.controller.Controller`, threads, and
:class:`~nvinformers.aio.AsyncController`, asyncio) apply its verdict to their queue, count it in
``controller_runtime_reconcile_total{result}`` and log it:

=====================================  ==============================================  ========
reconcile ...                          then                                            result
=====================================  ==============================================  ========
returns ``Result()``                   ``forget``: the failure history is cleared      success
returns ``Result(requeue_after=s)``    ``forget``, then ``add_after(request, s)``      requeue_after
raises an ``Exception``                ``add_rate_limited``: per-request backoff       error
                                       (5 ms doubling to 1000 s by default)
raises a :class:`TerminalError` (or    counted, logged once, ``forget``, not retried   error
one in its ``__cause__`` chain)
returns anything but a ``Result``      a ``TypeError`` naming it: retried with backoff error
raises a ``BaseException`` that is     a *panic*: counted; with ``recover_panic``      error
not an ``Exception``                   retried with backoff, else the controller stops
=====================================  ==============================================  ========

An exception always wins over a result (Go's ``(Result, error)`` pair has no Python peer; there is
nothing to ignore with a warning). A terminal error is recognised like Go's ``errors.Is``: the
exception itself, its explicit ``__cause__`` chain (``raise X from err``) and the members of
exception groups; not the implicit ``__context__``. Unlike controller-runtime, a terminal error
also forgets the request's failure history (client-go's rule: ``Forget`` when an item is done
being retried, whatever the outcome), so the next event for that object starts with a short
backoff.

Panics. In Python, raising an ``Exception`` *is* returning an error. The counterpart of a Go panic
is a ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``, a
custom subclass): meant to unwind past every ``except Exception``. With ``recover_panic=True``
(the default, as in controller-runtime) it is handled like an error; with False the request is
marked done and the controller stops itself with :class:`~nvinformers.controller.
ReconcilePanicError`, as a Go controller manager exits on an unrecovered panic.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from nvinformers.cache import split_meta_namespace_key
from nvinformers.errors import NvInformersError

__all__ = [
    "Request",
    "Result",
    "TerminalError",
    "is_terminal_error",
    "Reconciler",
    "AsyncReconciler",
    "Verdict",
    "judge",
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
        namespace, name = split_meta_namespace_key(key)
        return cls(name=name, namespace=namespace)

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


class TerminalError(NvInformersError):
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


@dataclass(frozen=True, slots=True)
class Verdict:
    """One row of the table in the module docstring: what follows a reconcile.

    Attributes:
        result: the ``result`` label: ``"success"``, ``"requeue_after"`` or ``"error"``.
        forget: clear the request's failure history (``queue.forget``).
        requeue_after: when > 0, reconcile again after this many seconds (``queue.add_after``).
        rate_limited: retry after the rate limiter's delay (``queue.add_rate_limited``).
        error: what failed (a ``TypeError`` for a return value that is not a ``Result``).
        terminal: ``error`` is terminal: not retried.
        panic: ``error`` is a ``BaseException`` that is not an ``Exception``.
        reraise: an unrecovered panic: the driver re-raises it and the controller stops.
    """

    result: str
    forget: bool = False
    requeue_after: float = 0.0
    rate_limited: bool = False
    error: BaseException | None = None
    terminal: bool = False
    panic: bool = False
    reraise: bool = False


_SUCCESS = Verdict("success", forget=True)


def judge(result: object, error: BaseException | None, *, recover_panic: bool = True) -> Verdict:
    """What follows a reconcile that returned ``result`` or raised ``error`` (the table above).

    Pure: no queue, no metric, no log; the drivers apply the verdict.

    Args:
        result: what the reconcile returned (ignored when ``error`` is set).
        error: what it raised, or None.
        recover_panic: whether a panic is handled like an error (True) or stops the controller.
    """
    if error is None:
        if isinstance(result, Result):
            if result.requeue_after > 0:
                return Verdict("requeue_after", forget=True, requeue_after=result.requeue_after)
            return _SUCCESS
        error = TypeError(
            f"returned {result!r} ({type(result).__name__}); it must return a "
            "nvinformers.controller.Result (Result() for success)"
        )
    if isinstance(error, Exception):
        if is_terminal_error(error):
            return Verdict("error", forget=True, error=error, terminal=True)
        return Verdict("error", rate_limited=True, error=error)
    if not recover_panic:
        return Verdict("error", error=error, panic=True, reraise=True)
    return Verdict("error", rate_limited=True, error=error, panic=True)
