"""The hostile-server kit: make the fake Device API server misbehave, to test agents against it.

Every :class:`~nvinformers.testing.FakeServer` carries one :class:`Hostility`, as
``server.hostile``. Its knobs change how the real server, on its real socket, answers from the
next call (or message) on, until turned off or :meth:`Hostility.reset`: :meth:`~Hostility.hang`
(calls of a method block until released), :meth:`~Hostility.silence` (watches stay open, nothing
is sent), :meth:`~Hostility.send_garbage` (bytes no message decodes from),
:meth:`~Hostility.set_revisions` (revisions spelled by a :class:`RevisionCodec`: not decimal
integers, or decreasing), :meth:`~Hostility.flap` (watches end with UNAVAILABLE after a few
seconds) and :meth:`~Hostility.ignore_initial_events` (streaming lists get a plain watch, as from
the device-apiserver's memory storage). Each method says exactly what it does; the table in
``docs/reliability.md`` ("Testing your own agent against a hostile server") sums them up.

Tests wait on the kit rather than sleep: :meth:`Hostility.wait_for_hung` returns once calls are
blocked in the server (or once the client cancelled them: ``wait_for_hung("ListGpus", 0)``).

Example — an agent must stay up, report itself unhealthy and stop promptly while the server
hangs its relist::

    with FakeServer(flip_interval=None) as server:
        ...  # start the agent's informers against server.target, wait for sync
        server.hostile.hang("ListGpus")
        server.end_watches(grpc.StatusCode.OUT_OF_RANGE)    # the informer relists: it hangs
        assert server.hostile.wait_for_hung("ListGpus", 1, timeout=10)
        ...  # health() turns false after outage_grace; stopping the agent cancels the list
        assert server.hostile.wait_for_hung("ListGpus", 0, timeout=10)

It works as a gRPC server interceptor, so the server's own semantics (revisions, history,
selectors, the other fault injection of :class:`~nvinformers.testing.FakeServer`) are untouched
underneath it.

Thread-safety: every method may be called from any thread, also while clients are connected.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.testing._servicer import SERVICE, check_method

__all__ = [
    "Hostility",
    "RevisionCodec",
    "GARBAGE",
    "ALPHA_REVISIONS",
    "NEGATIVE_REVISIONS",
    "EXPONENT_REVISIONS",
    "BACKWARD_REVISIONS",
]

#: What :meth:`Hostility.send_garbage` sends: a length-delimited field 1 claiming 127 bytes
#: followed by 22, so every message of the API fails to decode it ("wire format was corrupt").
GARBAGE = b"\x0a\x7fnot a protobuf message"

_SERVICE_PREFIX = f"/{SERVICE.full_name}/"


@dataclass(frozen=True, slots=True)
class RevisionCodec:
    """How a misbehaving server spells its revisions.

    Attributes:
        name: for messages and test ids.
        encode: the server's integer revision → the string clients see.
        decode: a string a client sent → the server's revision as a decimal string, or None when
            the string is not one this codec produced (it is then passed on unchanged).
    """

    name: str
    encode: Callable[[int], str]
    decode: Callable[[str], str | None]


def _strip(prefix: str, suffix: str = "") -> Callable[[str], str | None]:
    def decode(text: str) -> str | None:
        if not text.startswith(prefix) or not text.endswith(suffix):
            return None
        digits = text[len(prefix) : len(text) - len(suffix)]
        return digits if digits.isdigit() else None

    return decode


#: ``abc17``: opaque letters-and-digits (``revision 17``).
ALPHA_REVISIONS = RevisionCodec("alpha", lambda rv: f"abc{rv}", _strip("abc"))
#: ``-17``: a sign, which no decimal-integer comparison accepts.
NEGATIVE_REVISIONS = RevisionCodec("negative", lambda rv: f"-{rv}", _strip("-"))
#: ``17e0``: a number, but not an integer literal.
EXPONENT_REVISIONS = RevisionCodec("exponent", lambda rv: f"{rv}e0", _strip("", "e0"))

_BACKWARD_BASE = 10**12


def _backward_decode(text: str) -> str | None:
    if not text.isdigit() or len(text) != len(str(_BACKWARD_BASE - 1)):
        return None
    return str(_BACKWARD_BASE - int(text))


#: ``999999999983`` for revision 17: decimal integers that *decrease* as the server's history
#: grows, so every change looks older than the one before it (as from a server whose revision
#: counter went backwards, for example one restarted with its store reset).
BACKWARD_REVISIONS = RevisionCodec(
    "backward", lambda rv: str(_BACKWARD_BASE - rv), _backward_decode
)


class Hostility(grpc.ServerInterceptor):
    """The misbehaviour of one fake server (see the module docstring); ``server.hostile``.

    Built by :class:`~nvinformers.testing.FakeServer`, which installs it as the interceptor of
    its gRPC server; every knob is off at first.

    Thread-safety: all methods are thread-safe. Hung calls block gRPC server threads (each one
    holds a thread of the server's pool until it ends).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # All guarded by _cond.
        self._hanging: set[str] = set()
        self._hung: Counter[str] = Counter()  # calls blocked right now, by method
        self._release_epoch = 0  # bumped by release(): frees the calls blocked before it
        self._silent = False
        self._silenced = 0  # messages swallowed by silence()
        self._garbage: dict[str, int | None] = {}  # method → responses left (None: every one)
        self._codec: RevisionCodec | None = None
        self._flap_after: int | None = None
        self._ignore_initial_events = False

    # -- knobs ----------------------------------------------------------------------------------

    def hang(self, method: str = "ListGpus") -> None:
        """From now on, calls of ``method`` block in the server until :meth:`release`.

        A blocked call ends early when its client cancels it or its deadline passes, or when
        the server stops; a released one is then served normally.

        Raises:
            ValueError: not a method of ``GpuService``.
        """
        check_method(method)
        with self._cond:
            self._hanging.add(method)

    def release(self, method: str | None = None) -> None:
        """Stop hanging ``method`` (every method when None) and let its blocked calls proceed."""
        with self._cond:
            if method is None:
                self._hanging.clear()
            else:
                self._hanging.discard(method)
            self._release_epoch += 1
            self._cond.notify_all()

    def silence(self, silent: bool = True) -> None:
        """Keep watch streams open but send nothing on them (open ones and new ones).

        Events and bookmarks produced meanwhile are dropped for those streams, as by a server
        whose watch machinery is stuck (:meth:`silenced_messages` counts them).
        ``silence(False)`` lets later messages through.
        """
        with self._cond:
            self._silent = silent

    def send_garbage(self, method: str = "ListGpus", times: int | None = None) -> None:
        """Answer ``method`` with :data:`GARBAGE` bytes, ``times`` times (None: until reset).

        Unary methods send it as their response (gRPC status OK); ``WatchGpus`` sends it as the
        first message of each stream, then carries on normally. ``times=0`` turns it off.

        Raises:
            ValueError: not a method of ``GpuService``, or a negative ``times``.
        """
        check_method(method)
        if times is not None and times < 0:
            raise ValueError(f"times must be >= 0 or None, got {times}")
        with self._cond:
            if times == 0:
                self._garbage.pop(method, None)
            else:
                self._garbage[method] = times

    def set_revisions(self, codec: RevisionCodec | None) -> None:
        """Report every revision (objects, lists, bookmarks) through ``codec``; None: as is.

        Revisions in requests (``resource_version`` of get, list and watch options) are decoded
        back, so a client that sends what it was given is served as usual.
        """
        with self._cond:
            self._codec = codec

    def flap(self, after: int | None) -> None:
        """End every watch stream opened from now on with UNAVAILABLE ``after`` seconds after it
        opened (None: off). Whole seconds: the stream's ``timeout_seconds`` is what ends it.

        Raises:
            ValueError: ``after`` is not a positive integer.
        """
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise ValueError(f"after must be a positive int or None, got {after!r}")
        if after is not None and after < 1:
            raise ValueError(f"after must be >= 1, got {after}")
        with self._cond:
            self._flap_after = after

    def ignore_initial_events(self, ignore: bool = True) -> None:
        """Serve every watch opened from now on as if it had no ``send_initial_events`` and no
        ``resource_version_match``, as the device-apiserver's memory storage does.

        A streaming list then gets a plain watch from its revision: no initial-events-end
        bookmark ever comes (from ``""``, the plain watch's ADDED burst does).
        """
        with self._cond:
            self._ignore_initial_events = ignore

    def reset(self) -> None:
        """Turn every knob off and release every blocked call: a well-behaved server again."""
        with self._cond:
            self._silent = False
            self._garbage.clear()
            self._codec = None
            self._flap_after = None
            self._ignore_initial_events = False
        self.release()

    # -- observation ----------------------------------------------------------------------------

    def hung_calls(self, method: str = "ListGpus") -> int:
        """Calls of ``method`` blocked in the server right now."""
        with self._cond:
            return self._hung[method]

    def silenced_messages(self) -> int:
        """Watch messages swallowed by :meth:`silence` so far (every stream counted)."""
        with self._cond:
            return self._silenced

    def wait_for_silenced(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` watch messages were swallowed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._silenced >= n, timeout)

    def wait_for_hung(self, method: str, n: int, timeout: float) -> bool:
        """Wait until exactly ``n`` calls of ``method`` are blocked; False on timeout.

        ``n=0`` waits for the blocked calls to end: a client that cancels its call on stop makes
        the count drop at once.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._hung[method] == n, timeout)

    # -- the interceptor ------------------------------------------------------------------------

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        full: str = handler_call_details.method
        if handler is None or not full.startswith(_SERVICE_PREFIX):
            return handler
        method = full[len(_SERVICE_PREFIX) :]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(
        self, method: str, behaviour: Callable[[Any, Any], Any]
    ) -> Callable[[Any, Any], Any]:
        def hostile(request: Any, context: grpc.ServicerContext) -> Any:
            self._maybe_hang(method, context)
            codec = self._decode_request(request)
            response = behaviour(request, context)  # served (and counted in calls) as usual
            if self._take_garbage(method):
                return GARBAGE
            return response if codec is None else _encode_response(method, response, codec)

        return hostile

    def _stream(
        self, method: str, behaviour: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def hostile(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            self._maybe_hang(method, context)
            codec = self._decode_request(request)
            flapping = self._shorten(request)
            self._strip_initial_events(request)
            if self._take_garbage(method):
                yield GARBAGE
            for response in behaviour(request, context):
                with self._cond:
                    silent, codec = self._silent, self._codec
                    if silent:
                        self._silenced += 1
                        self._cond.notify_all()
                if silent:
                    continue
                yield response if codec is None else _encode_response(method, response, codec)
            if flapping and context.is_active():
                context.abort(grpc.StatusCode.UNAVAILABLE, "hostile fake server: watch flapped")

        return hostile

    def _maybe_hang(self, method: str, context: grpc.ServicerContext) -> None:
        with self._cond:
            if method not in self._hanging:
                return
            epoch = self._release_epoch
            ended = threading.Event()

            def on_end() -> None:
                with self._cond:
                    ended.set()
                    self._cond.notify_all()

            self._hung[method] += 1
            self._cond.notify_all()
        # add_callback outside the lock: it runs the callback at once if the RPC already ended.
        active = context.add_callback(on_end)
        with self._cond:
            try:
                if active:
                    self._cond.wait_for(
                        lambda: ended.is_set() or self._release_epoch != epoch, timeout=None
                    )
            finally:
                self._hung[method] -= 1
                self._cond.notify_all()
        if not active or ended.is_set():
            context.abort(grpc.StatusCode.CANCELLED, "hostile fake server: hung call abandoned")

    def _take_garbage(self, method: str) -> bool:
        with self._cond:
            if method not in self._garbage:
                return False
            left = self._garbage[method]
            if left is not None:
                if left <= 1:
                    del self._garbage[method]
                else:
                    self._garbage[method] = left - 1
            return True

    def _decode_request(self, request: Any) -> RevisionCodec | None:
        with self._cond:
            codec = self._codec
        if codec is None:
            return None
        opts = getattr(request, "opts", None)
        rv = getattr(opts, "resource_version", "")
        if opts is not None and rv and rv != "0":
            decoded = codec.decode(rv)
            if decoded is not None:
                opts.resource_version = decoded
        return codec

    def _strip_initial_events(self, request: Any) -> None:
        with self._cond:
            ignore = self._ignore_initial_events
        opts = getattr(request, "opts", None)
        if ignore and opts is not None:
            opts.ClearField("send_initial_events")
            opts.ClearField("resource_version_match")

    def _shorten(self, request: Any) -> bool:
        """Make a watch end after the flap interval; True when that end is a flap."""
        with self._cond:
            after = self._flap_after
        opts = getattr(request, "opts", None)
        if after is None or opts is None:
            return False
        if opts.HasField("timeout_seconds") and 0 < opts.timeout_seconds <= after:
            return False  # the client's own timeout comes first: a normal, clean end
        opts.timeout_seconds = after
        return True


# ---------------------------------------------------------------------------------------------
# Revision rewriting


def _encode_meta(meta: Any, codec: RevisionCodec) -> None:
    if meta.HasField("resource_version") and meta.resource_version.isdigit():
        meta.resource_version = codec.encode(int(meta.resource_version))


_RESPONSES: dict[str, type[Message]] = {
    "GetGpu": pb.GetGpuResponse,
    "ListGpus": pb.ListGpusResponse,
    "WatchGpus": pb.WatchGpusResponse,
}


def _encode_response(method: str, response: Message | bytes, codec: RevisionCodec) -> Any:
    """``response`` of ``method`` with every revision it carries passed through ``codec``.

    Responses are messages or pre-serialized bytes (see the server's ``_register``); bytes that
    do not decode (a malformed event injected with ``send_raw_watch_event``) pass unchanged.
    """
    if isinstance(response, bytes):
        try:
            parsed = _RESPONSES.get(method, pb.Gpu).FromString(response)
        except DecodeError:
            return response
        _rewrite(parsed, codec)
        return parsed.SerializeToString()
    _rewrite(response, codec)
    return response


def _rewrite(msg: Message, codec: RevisionCodec) -> None:
    """Rewrite the revisions of a response message in place."""
    if isinstance(msg, pb.WatchGpusResponse):
        if msg.HasField("object"):
            _encode_meta(msg.object.object_meta, codec)
    elif isinstance(msg, pb.ListGpusResponse):
        _encode_meta(msg.gpu_list.list_meta, codec)
        for item in msg.gpu_list.items:
            _encode_meta(item.object_meta, codec)
    elif isinstance(msg, pb.GetGpuResponse):
        _encode_meta(msg.gpu.object_meta, codec)
    elif isinstance(msg, pb.Gpu):
        _encode_meta(msg.object_meta, codec)
