"""The built-in client interceptors: latency logging (always first in the chain) and metrics.

:class:`LatencyLoggingInterceptor` mirrors the Go SDK's ``NewLatencyUnaryInterceptor`` /
``NewLatencyStreamInterceptor``: it times the call and logs the method, the duration and the status
code. What the level says is whether anyone has to act:

==========================  =====================  =========================================
outcome                     level                  message: unary call / stream establishment
==========================  =====================  =========================================
success                     DEBUG                  ``RPC succeeded`` / ``Stream started``
CANCELLED (the caller's)    DEBUG                  ``RPC finished with context error`` /
                                                   ``Stream establishment canceled``
an answer about the         DEBUG, and never a     ``RPC answered with an error`` /
request: NOT_FOUND,         failure streak         ``Stream refused``
INVALID_ARGUMENT,
ALREADY_EXISTS,
FAILED_PRECONDITION,
ABORTED, OUT_OF_RANGE
a failure: UNAVAILABLE,     ERROR for the first    ``RPC failed`` /
DEADLINE_EXCEEDED,          of a streak, DEBUG     ``Stream establishment failed``
INTERNAL, UNKNOWN,          for its repeats, INFO
RESOURCE_EXHAUSTED          for the recovery
(availability); and
PERMISSION_DENIED,
UNAUTHENTICATED,
UNIMPLEMENTED, DATA_LOSS
(configuration)
==========================  =====================  =========================================

Why it departs from the Device API contract's wording ("cancelled and deadline-exceeded at debug
level, other errors at error level", which is the Go interceptor's rule):

* An answer about the request is the server working: a caught ``NotFoundError`` on ``get`` is
  ordinary control flow (client-go logs nothing for a 404), an ``OUT_OF_RANGE`` on a watch is the
  normal "relist now" signal. At ERROR, every caught ``NotFoundError`` read like an outage.
* DEADLINE_EXCEEDED is a failure here. In Go it is usually the caller's context; in this SDK the
  deadline is the call's ``timeout`` (an informer's ``list_timeout``, the CLI's
  ``--request-timeout``), so its expiry means the server did not answer: an availability problem.
* Repeats are not re-logged at ERROR. While a method keeps failing with the same code (an outage,
  with an informer retrying under backoff), the first failure is logged at ERROR, the repeats at
  DEBUG, and the first success (or answer) afterwards at INFO with the number of failures in
  between — one line per state change, not one per retry. The configuration failures
  (PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED) and DATA_LOSS, which the contract also logs
  at ERROR, follow the same streak rule, so a misconfigured informer logs one ERROR, not one
  per retry. An answer never starts a streak, so it can never be followed by a misleading
  "succeeded again".

Every record carries the structured fields ``grpc_method`` (full method name), ``duration``
(seconds, float), ``code`` (status code name, ``"OK"``), ``target``, and for errors ``error``
(the status details), in ``extra`` and in the message text.

As in Go, a unary-stream call is "established" as soon as gRPC returns its iterator: failures of
``WatchGpus`` (too old resource version, bad selector, server down) arrive while iterating and are
handled by the watch adapter, so the stream lines are almost always ``Stream started``.

Both interceptors return the continuation's result unchanged: they never touch the messages of a
stream, so the receive path pays nothing for them. A unary call made as a future (``.future()``,
which the clientset uses for cancellable calls) is logged and counted when it completes, from a
done-callback: waiting for it here would make ``future()`` block until the call is over, and a
call nobody can reach until it ends cannot be cancelled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from nvinformers.clientset._metrics import ClientMetrics, short_method
from nvinformers.clientset._status import code_name, details_of
from nvinformers.clock import REAL_CLOCK, Clock

__all__ = [
    "LatencyLoggingInterceptor",
    "MetricsInterceptor",
    "ANSWER_CODES",
]

_Req = TypeVar("_Req")

#: The caller ended the call: DEBUG.
_CONTEXT_CODES = frozenset({"CANCELLED"})
#: Answers about the request from a working server: DEBUG, and they never start a failure streak.
ANSWER_CODES = frozenset(
    {
        "NOT_FOUND",
        "INVALID_ARGUMENT",
        "ALREADY_EXISTS",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
    }
)
#: What a unary call and a stream's establishment log:
#: (success, ended by its context, answered with an error, failure), and the end of a streak
#: (by a success, by an answer).
_UNARY_MESSAGES = (
    "RPC succeeded",
    "RPC finished with context error",
    "RPC answered with an error",
    "RPC failed",
)
_UNARY_STREAK_ENDS = ("RPC succeeded", "RPC answered")
_STREAM_MESSAGES = (
    "Stream started",
    "Stream establishment canceled",
    "Stream refused",
    "Stream establishment failed",
)
_STREAM_STREAK_ENDS = ("Stream started", "Stream refused")


def _unary_code(outcome: object) -> str:
    """Status code name of a finished unary call as an interceptor sees it.

    gRPC hands an interceptor either a successful outcome (not an ``RpcError``) or the
    ``RpcError`` itself (also for failures of inner interceptors), so success needs no
    ``code()`` call, which would take the call's lock once per interceptor.
    """
    return code_name(outcome) if isinstance(outcome, grpc.RpcError) else "OK"


def _when_done(outcome: object, finish: Callable[[Any], None]) -> None:
    """Call ``finish(outcome)`` once the unary call is over: now for a blocking call's outcome,
    on completion for a future that is still running (see the module docstring)."""
    if isinstance(outcome, grpc.Future) and not outcome.done():
        outcome.add_done_callback(finish)
    else:
        finish(outcome)


def _method_of(details: grpc.ClientCallDetails) -> str:
    method: str | bytes = details.method
    return method.decode("utf-8", "replace") if isinstance(method, bytes) else method


class _TimingInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """What both built-in interceptors do with a call: time a unary call to its end (see
    :func:`_when_done`) and a stream to its establishment, then hand the outcome to
    :meth:`_unary_done` or :meth:`_stream_started`."""

    _now: Callable[[], float]

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Req], Any],
        client_call_details: grpc.ClientCallDetails,
        request: _Req,
    ) -> Any:
        start = self._now()
        outcome = continuation(client_call_details, request)
        _when_done(
            outcome,
            lambda done: self._unary_done(client_call_details, self._now() - start, done),
        )
        return outcome

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Req], Any],
        client_call_details: grpc.ClientCallDetails,
        request: _Req,
    ) -> Any:
        start = self._now()
        try:
            call = continuation(client_call_details, request)
        except grpc.RpcError as err:
            self._stream_started(client_call_details, self._now() - start, err, raised=True)
            raise
        self._stream_started(client_call_details, self._now() - start, call, raised=False)
        return call

    def _unary_done(self, details: grpc.ClientCallDetails, duration: float, outcome: Any) -> None:
        """The unary call is over: ``outcome`` is its result or its ``RpcError``."""

    def _stream_started(
        self, details: grpc.ClientCallDetails, duration: float, outcome: object, *, raised: bool
    ) -> None:
        """The stream is established (``outcome`` is the call) or failed to start (``raised``:
        ``outcome`` is the ``RpcError``)."""


class LatencyLoggingInterceptor(_TimingInterceptor):
    """Logs every RPC's method, duration and status code (see the module docstring).

    Thread-safety: stateless after construction; safe for concurrent calls.

    Args:
        logger: where to log.
        target: the channel's target, added to every record.
        clock: what durations are measured on (tests pass a
            :class:`~nvinformers.clock.FakeClock`).
    """

    def __init__(self, logger: logging.Logger, target: str, *, clock: Clock = REAL_CLOCK) -> None:
        self._logger = logger
        self._target = target
        self._now = clock.now
        self._lock = threading.Lock()
        #: method → [code, repeats] of its current failure streak; guarded by _lock
        self._failing: dict[str, list[Any]] = {}

    def _failure_level(self, details: grpc.ClientCallDetails, code: str) -> int:
        """ERROR for the first failure of a streak, DEBUG for its repeats."""
        method = _method_of(details)
        with self._lock:
            streak = self._failing.get(method)
            if streak is not None and streak[0] == code:
                streak[1] += 1
                return logging.DEBUG
            self._failing[method] = [code, 0]
        return logging.ERROR

    def _end_streak(
        self, details: grpc.ClientCallDetails, duration: float, code: str, ended: tuple[str, str]
    ) -> None:
        """The server answered (``code`` OK or an answer code): log the end of a streak.

        ``ended`` says it for a success and for an answer (``"RPC succeeded"``,
        ``"RPC answered"`` / ``"Stream started"``, ``"Stream refused"``).
        """
        if not self._failing:  # the common case: no lock, no work
            return
        method = _method_of(details)
        with self._lock:
            streak = self._failing.pop(method, None)
        if streak is not None:
            how = ended[0] if code == "OK" else f"{ended[1]} ({code})"
            self._log(
                logging.INFO,
                f"{how} again after {streak[1] + 1} failed attempt(s) ({streak[0]})",
                details=details,
                duration=duration,
                code=code,
            )

    def _unary_done(self, details: grpc.ClientCallDetails, duration: float, outcome: Any) -> None:
        code = _unary_code(outcome)
        self._report(details, duration, code, outcome, _UNARY_MESSAGES, _UNARY_STREAK_ENDS)

    def _stream_started(
        self, details: grpc.ClientCallDetails, duration: float, outcome: object, *, raised: bool
    ) -> None:
        code = "OK"
        if raised:
            code = code_name(outcome)
        else:
            # A stream call is itself a grpc.RpcError instance, so only "raised" tells a failure
            # apart. Only a call that already finished has a code; asking a running one would
            # block (multi-threaded) or raise UsageError (single-threaded).
            done = getattr(outcome, "done", None)
            if done is not None and done():
                code = code_name(outcome)
        self._report(details, duration, code, outcome, _STREAM_MESSAGES, _STREAM_STREAK_ENDS)

    def _report(
        self,
        details: grpc.ClientCallDetails,
        duration: float,
        code: str,
        outcome: object,
        messages: tuple[str, str, str, str],
        streak_ends: tuple[str, str],
    ) -> None:
        """Log one outcome: success, cancellation and answers at DEBUG, failures at the streak's
        level (ERROR for the first, DEBUG for repeats). A success or an answer ends the method's
        streak, for unary calls and streams alike."""
        succeeded, ended_by_context, answered, failed = messages
        if code == "OK" or code in ANSWER_CODES:
            self._end_streak(details, duration, code, streak_ends)
        if code == "OK":
            message = succeeded
        elif code in _CONTEXT_CODES:
            message = ended_by_context
        elif code in ANSWER_CODES:
            message = answered
        else:
            self._log(
                self._failure_level(details, code),
                failed,
                details=details,
                duration=duration,
                code=code,
                error=details_of(outcome),
            )
            return
        # isEnabledFor first: building the record costs more than the RPC's bookkeeping.
        if self._logger.isEnabledFor(logging.DEBUG):
            error = "" if code == "OK" else details_of(outcome)
            self._log(
                logging.DEBUG, message, details=details, duration=duration, code=code, error=error
            )

    def _log(
        self,
        level: int,
        message: str,
        *,
        details: grpc.ClientCallDetails,
        duration: float,
        code: str,
        error: str = "",
    ) -> None:
        method = _method_of(details)
        extra: dict[str, object] = {
            "grpc_method": method,
            "duration": duration,
            "code": code,
            "target": self._target,
        }
        fmt = "%s: method=%s code=%s duration=%.6fs target=%s"
        args: list[object] = [message, method, code, duration, self._target]
        if error:
            extra["error"] = error
            fmt += " error=%r"
            args.append(error)
        self._logger.log(level, fmt, *args, extra=extra)


class MetricsInterceptor(_TimingInterceptor):
    """Counts and times unary calls; times stream establishment (see :mod:`.metrics`).

    A stream's final code is counted by the watch adapter when the stream ends; a stream that
    fails to even start (the continuation raises) is counted here.

    Thread-safety: safe for concurrent calls.

    Args:
        metrics: the collectors to record into.
        clock: what durations are measured on (tests pass a
            :class:`~nvinformers.clock.FakeClock`).
    """

    def __init__(self, metrics: ClientMetrics, *, clock: Clock = REAL_CLOCK) -> None:
        self._metrics = metrics
        self._now = clock.now
        # Label children cached by label values: labels() costs a lock and a dict lookup per call.
        # Races only create the same child twice (prometheus returns the existing one).
        self._counters: dict[tuple[str, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    def _record(self, full_method: str, code: str | None, duration: float) -> None:
        method = short_method(full_method)
        histogram = self._histograms.get(method)
        if histogram is None:
            histogram = self._histograms[method] = self._metrics.duration.labels(method=method)
        histogram.observe(duration)
        if code is not None:
            key = (method, code)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self._metrics.requests.labels(
                    method=method, code=code
                )
            counter.inc()

    def _unary_done(self, details: grpc.ClientCallDetails, duration: float, outcome: Any) -> None:
        self._record(_method_of(details), _unary_code(outcome), duration)

    def _stream_started(
        self, details: grpc.ClientCallDetails, duration: float, outcome: object, *, raised: bool
    ) -> None:
        # A stream's final code is counted by the watch adapter; only a failed start is here.
        self._record(_method_of(details), code_name(outcome) if raised else None, duration)
