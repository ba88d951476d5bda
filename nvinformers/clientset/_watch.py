"""The watch adapter: a ``WatchGpus`` server stream as a :class:`nvinformers.watch.Interface`.

:class:`GPUWatch` iterates the gRPC call directly in the caller's thread: no receive thread and no
buffer (the Go SDK's watcher has both: a goroutine feeding a 100-event channel). The informer's
reflector is the single consumer, so a thread would only add a hand-over per event; with the
channel's single-threaded stream option each ``next()`` reads straight off the transport.

Per message:

* ``ADDED`` / ``MODIFIED`` / ``DELETED`` must carry an object with a non-empty ``metadata.name``;
  otherwise ``next()`` raises :class:`~nvinformers.errors.MalformedObjectError` (the Go watcher
  dereferences the missing object and panics).
* ``BOOKMARK`` must carry an object; its name may be empty. Its ``resource_version`` and
  annotations (``k8s.io/initial-events-end``) are kept.
* An in-band ``ERROR`` (the server should end the stream with a status instead) raises an
  :class:`~nvinformers.errors.InternalError` describing whatever the event carried.
* Unknown event types are skipped: counted in :attr:`GPUWatch.skipped_events` and logged at
  WARNING once per type per watch (the Go watcher skips them too).
* Object bytes that are not a valid ``Gpu``, and a message that is not a valid
  ``WatchGpusResponse`` at all, raise ``MalformedObjectError`` (the message is decoded here, not by
  gRPC, whose deserializer would log a traceback and end the call with an anonymous INTERNAL).

End of stream: status OK (the server's ``timeout_seconds`` expired, or it closed the stream) or
CANCELLED (``stop()``, or the channel was closed) ends iteration quietly; any other status is
raised as the mapped error (OUT_OF_RANGE and RESOURCE_EXHAUSTED → ``ExpiredError``, which makes an
informer relist). After the end or an error, ``next()`` raises ``StopIteration``.

Metrics: every message is counted in ``nvinformers_client_stream_messages_received_total``; the
final status code is counted once in ``nvinformers_client_requests_total`` (a watch the client
ends, by ``stop()`` or because of a malformed event, is counted as CANCELLED, which is the status
the call ends with). The message counter takes a lock per update, which an event storm would pay
100,000 times a second, so it is updated in steps: at once for a message that follows the previous
update by 50 ms or more (so a quiet stream is counted exactly), otherwise every 64 messages; and
exactly when the stream ends. After a burst, up to 63 of its messages may be counted only at the
stream's next message or end.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.api.device.v1alpha1._types import gpu_from_wire
from nvinformers.api.device.v1alpha1.wire_pb2 import RawWatchGpusResponse
from nvinformers.clientset._metrics import ClientMetrics
from nvinformers.clientset._status import code_name, from_rpc_error
from nvinformers.errors import InternalError, MalformedObjectError, StatusError, qualify
from nvinformers.meta import header_accessors
from nvinformers.watch import BOOKMARK, Event, EventType
from nvinformers.watch import Interface as WatchInterface

__all__ = ["GPUWatch", "StreamCall"]

#: The event types a stream may carry (an in-band ERROR is handled apart).
_EVENT_TYPES: dict[str, EventType] = {t.value: t for t in EventType if t is not EventType.ERROR}
_monotonic = time.monotonic
# A GPU's name and resource version, read without building a metadata view.
_name_of = header_accessors(GPU).name
_resource_version_of = header_accessors(GPU).resource_version


#: The message counter is updated at most every this many messages during a burst...
_COUNT_BATCH = 64
#: ...and at once for a message arriving this many seconds after its last update.
_COUNT_INTERVAL = 0.05

#: Distinct unknown event types remembered (for warn-once) per watch; a server that invents types
#: without end must not grow the set without bound.
_MAX_REMEMBERED_UNKNOWN_TYPES = 32


_parse_response = RawWatchGpusResponse.FromString


class StreamCall(Protocol):
    """What :class:`GPUWatch` needs of a gRPC unary-stream call: the raw bytes of each message."""

    def __next__(self) -> bytes: ...

    def cancel(self) -> bool: ...


class GPUWatch(WatchInterface[GPU]):
    """A running ``WatchGpus`` stream; iterate it for :class:`~nvinformers.watch.Event` of GPU.

    Semantics are in the module docstring. Built by
    :meth:`nvinformers.clientset._gpus.GPUClient.watch`; not meant to be constructed directly.

    Thread-safety: iterate from one thread. :meth:`stop` may be called from any thread, any number
    of times; it cancels the call, so a ``next()`` blocked in another thread returns promptly
    (iteration ends). Use the watch as a context manager, or call ``stop()``, to free the stream.

    Blocking: ``next()`` blocks until the server sends a message or the stream ends.

    Raises (from ``next()``):
        ExpiredError: the resource version is too old (relist).
        MalformedObjectError: an event without an object or name, or undecodable bytes.
        InternalError: an in-band ERROR event, or a server failure.
        StatusError: any other mapped gRPC failure (``ServiceUnavailableError`` when the server
            cannot be reached, ``BadRequestError`` for a rejected selector, ...).
    """

    __slots__ = (
        "_call",
        "_done",
        "_counted",
        "_counted_at",
        "_finished",
        "_lock",
        "_logger",
        "_method",
        "_metrics",
        "_msg_counter",
        "_received",
        "_resource",
        "_rv",
        "_skipped",
        "_stopped",
        "_target",
        "_unknown_types",
    )

    def __init__(
        self,
        call: StreamCall,
        *,
        target: str,
        logger: logging.Logger,
        metrics: ClientMetrics,
        method: str = "WatchGpus",
        resource: str = "gpus",
    ) -> None:
        self._call = call
        self._target = target
        self._logger = logger
        self._metrics = metrics
        self._method = method
        self._resource = resource
        self._msg_counter: Any = metrics.stream_messages.labels(method=method)
        self._lock = threading.Lock()
        # _stopped: stop() was called. _done: iteration is over (end, error or stop).
        # _finished: the final code was counted (exactly once, under _lock).
        self._stopped = False
        self._done = False
        self._finished = False
        self._received = 0
        # Messages already added to the counter, and when (under _lock; see the module doc).
        self._counted = 0
        self._counted_at = -_COUNT_INTERVAL
        self._skipped = 0
        self._rv = ""
        self._unknown_types: set[str] = set()

    # -- iteration -------------------------------------------------------------------------------

    def __next__(self) -> Event[GPU]:
        if self._done:
            raise StopIteration
        call = self._call
        while True:
            try:
                data = next(call)
            except StopIteration:
                self._finish("OK")
                raise
            except grpc.RpcError as err:
                code = code_name(err)
                if code == "CANCELLED" or self._stopped:
                    self._finish(code)
                    raise StopIteration from None
                self._finish(code)
                mapped = from_rpc_error(
                    err,
                    target=self._target,
                    resource=self._resource,
                    watch=True,
                    method=self._method,
                )
                self._logger.debug(
                    "Watch stream failed: code=%s error=%s",
                    code,
                    mapped,
                    extra={"code": code, "target": self._target, "grpc_method": self._method},
                )
                raise mapped from err

            try:
                response = _parse_response(data)
            except DecodeError as exc:
                raise self._fail(
                    self._malformed(
                        f"the {self._method} message from the Device API at {self._target} is "
                        f"not a valid {self._method}Response ({len(data)} bytes): {exc}"
                    )
                ) from exc
            received = self._received = self._received + 1
            now = _monotonic()
            if (
                received - self._counted >= _COUNT_BATCH
                or now - self._counted_at >= _COUNT_INTERVAL
            ):
                self._count_messages(now)
            event_type = _EVENT_TYPES.get(response.type)
            if event_type is None:
                if response.type == "ERROR":
                    raise self._fail(self._in_band_error(response))
                self._skip(response.type)
                continue
            if not response.HasField("object"):
                raise self._fail(
                    self._malformed(f"watch event {event_type.value} without an object")
                )
            try:
                gpu = gpu_from_wire(response.object)
            except MalformedObjectError as exc:
                raise self._fail(self._malformed(f"watch event {event_type.value}: {exc}")) from exc
            if event_type is not BOOKMARK and not _name_of(gpu):
                raise self._fail(
                    self._malformed(f"watch event {event_type.value} object without metadata.name")
                )
            self._rv = _resource_version_of(gpu)
            return Event(event_type, gpu)

    def _malformed(self, message: str) -> MalformedObjectError:
        return MalformedObjectError(message, resource=qualify(self._resource))

    def _in_band_error(self, response: RawWatchGpusResponse) -> InternalError:
        if response.HasField("object"):
            try:
                carried = f"object {GPU.from_bytes(response.object)!r}"
            except MalformedObjectError:
                carried = f"an undecodable object of {len(response.object)} bytes"
        else:
            carried = "no object"
        return InternalError(
            f"the Device API at {self._target} sent an in-band ERROR watch event ({carried}); "
            "the watch is closed",
            resource=qualify(self._resource),
        )

    def _skip(self, event_type: str) -> None:
        self._skipped += 1
        known = self._unknown_types
        if event_type in known or len(known) >= _MAX_REMEMBERED_UNKNOWN_TYPES:
            return
        known.add(event_type)
        self._logger.warning(
            "Skipping watch event of unknown type %r from the server (further events of this "
            "type on this watch are skipped silently)",
            event_type[:64],
            extra={"event_type": event_type[:64], "target": self._target},
        )

    def _fail(self, err: StatusError) -> StatusError:
        """End the watch because of a client-side error; return ``err`` for the caller to raise."""
        self._done = True
        self._call.cancel()
        self._finish("CANCELLED")
        return err

    def _count_messages(self, now: float) -> None:
        """Add the messages received since the last update to the counter."""
        with self._lock:
            delta = self._received - self._counted
            self._counted += delta
            self._counted_at = now
        if delta:
            self._msg_counter.inc(delta)

    def _finish(self, code: str) -> None:
        self._done = True
        self._count_messages(_monotonic())
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._metrics.requests.labels(method=self._method, code=code).inc()
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug(
                "Watch stream closed: code=%s messages=%d resource_version=%s",
                code,
                self._received,
                self._rv,
                extra={"code": code, "target": self._target, "grpc_method": self._method},
            )

    # -- control ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the watch: cancel the call; iteration ends. Idempotent, callable from any thread.

        Non-blocking. A ``next()`` blocked in another thread returns (``StopIteration``) promptly.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._done = True
        self._call.cancel()
        self._finish("CANCELLED")

    # -- introspection ---------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """Resource version of the last event returned (bookmarks included); "" before any."""
        return self._rv

    @property
    def messages_received(self) -> int:
        """Messages received on the stream so far, skipped ones included."""
        return self._received

    @property
    def skipped_events(self) -> int:
        """Messages skipped because of an unknown event type."""
        return self._skipped

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped

    @property
    def done(self) -> bool:
        """True once iteration is over (clean end, error, or stop)."""
        return self._done

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "done" if self._done else "running"
        return (
            f"GPUWatch(target={self._target!r}, {state}, received={self._received}, "
            f"resource_version={self._rv!r})"
        )
