"""A running watch of the Kubernetes API over one streamed HTTP response.

The receive path bypasses the official client's model deserialization, which is what makes its
own watch slow: :class:`KubeWatch` reads the chunked ``urllib3`` response itself and decodes each
line (one JSON event) with :func:`decode_event`.

Thread-safety: :func:`decode_event` holds no state; the events it returns are immutable.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Final, NoReturn

from nvinformers.errors import MalformedObjectError, StatusError
from nvinformers.kube._managed_fields_cut import object_bytes, split_event_line
from nvinformers.kube._objects import KubeObject, from_decoded
from nvinformers.kube._status import error_from_status, unreachable
from nvinformers.watch import Event, EventType
from nvinformers.watch import Interface as WatchInterface

__all__ = ["KubeWatch", "decode_event"]

log = logging.getLogger("nvinformers.kube")

_EVENT_TYPES: Final[Mapping[str, EventType]] = {t.value: t for t in EventType}


def _malformed(message: str, line: bytes | str) -> NoReturn:
    raise MalformedObjectError(f"malformed watch event from the server ({message}): {line!r:.200}")


def decode_event(
    line: bytes, *, strip: bool = True, kind: str = "", api_version: str = ""
) -> Event[KubeObject]:
    """Decode one watch line (``{"type": "ADDED", "object": {...}}``) into an event.

    The object keeps its slice of ``line`` as its bytes when the line has the API server's
    layout (``type`` then ``object``); other layouts are decoded generically and re-serialized.

    Args:
        line: one line of the stream (a trailing newline is allowed).
        strip, kind, api_version: as for :func:`~nvinformers.kube._objects.from_decoded`.

    Returns:
        The event; BOOKMARK objects carry only ``metadata.resource_version`` (and annotations).

    Raises:
        StatusError: an ``ERROR`` event, mapped by :mod:`nvinformers.kube._status`
            (410 → :class:`~nvinformers.errors.ExpiredError`, ...).
        MalformedObjectError: the line is not a valid event.
    """
    try:
        text = line.decode()
    except UnicodeDecodeError:
        _malformed("not UTF-8", line)
    raw: bytes | None = None  # None: from_decoded serializes the object
    type_name: Any
    split = split_event_line(text)
    if split is not None:
        type_name, obj, start, end = split
        raw = object_bytes(text, start, end, obj, strip=strip)
    else:
        try:
            event: Any = json.loads(text)
        except ValueError as exc:
            _malformed(str(exc), line)
        if not isinstance(event, dict):
            _malformed("not a JSON object", line)
        type_name = event.get("type")
        obj = event.get("object")
    etype = _EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if etype is None:
        _malformed(f"unknown event type {type_name!r}", line)
    if etype is EventType.ERROR:
        raise error_from_status(obj)
    if obj is None:
        _malformed("no object", line)
    bookmark = etype is EventType.BOOKMARK
    return Event(
        etype,
        from_decoded(obj, raw, kind=kind, api_version=api_version, strip=strip, nameless=bookmark),
    )


class KubeWatch(WatchInterface[KubeObject]):
    """A running watch over one HTTP response (implements :class:`nvinformers.watch.Interface`).

    Iteration yields :class:`~nvinformers.watch.Event` objects of
    :class:`~nvinformers.kube._objects.KubeObject` and ends quietly when the server ends the
    stream cleanly (its ``timeoutSeconds``) or after :meth:`stop`. An in-stream ``ERROR`` event
    is raised as its :class:`~nvinformers.errors.StatusError` (410 → ExpiredError); a broken
    connection as :class:`~nvinformers.errors.ServiceUnavailableError`; an undecodable line as
    :class:`~nvinformers.errors.MalformedObjectError`. The response is closed when iteration
    ends, fails or is stopped.

    Thread-safety: iterate from one thread. :meth:`stop` is idempotent and may be called from any
    thread: it shuts the socket down, so a read blocked in the kernel returns at once.
    """

    __slots__ = (
        "_resp",
        "_server",
        "_strip",
        "_kind",
        "_api_version",
        "_lock",
        "_stopped",
        "_busy",
        "_closed",
        "_events",
    )

    def __init__(
        self,
        response: Any,
        *,
        server: str = "",
        strip_managed_fields: bool = True,
        kind: str = "",
        api_version: str = "",
    ) -> None:
        """Wrap ``response``, an unread ``urllib3.HTTPResponse`` of a watch request."""
        self._resp = response
        self._server = server or "the Kubernetes API server"
        self._strip = strip_managed_fields
        self._kind = kind
        self._api_version = api_version
        self._lock = threading.Lock()
        self._stopped = False  # guarded by _lock
        self._busy = False  # guarded by _lock: a __next__ is in progress
        self._closed = False  # guarded by _lock
        self._events = self._generate()

    def __next__(self) -> Event[KubeObject]:
        lock = self._lock
        with lock:
            if self._stopped or self._closed:
                stop_now = True
            else:
                stop_now = False
                self._busy = True
        if stop_now:
            self._close()
            raise StopIteration
        try:
            return next(self._events)
        except StopIteration:
            self._close()
            raise
        except Exception as exc:
            self._close()
            if self._stopped:
                raise StopIteration from None
            if isinstance(exc, StatusError):
                raise
            raise unreachable(self._server, exc) from exc
        finally:
            with lock:
                self._busy = False
                stopped = self._stopped
            if stopped:
                self._close()

    def _generate(self) -> Iterator[Event[KubeObject]]:
        """Read chunks, split them into lines (a line may span chunks), decode each line."""
        resp = self._resp
        strip, kind, api_version = self._strip, self._kind, self._api_version
        if resp.chunked and resp.supports_chunked_reads():
            chunks = resp.stream(None)
        else:
            chunks = iter(functools.partial(resp.read1, 65536), b"")
        pending = b""
        for data in chunks:
            chunk = pending + data if pending else data
            start = 0
            nl = chunk.find(b"\n")
            while nl >= 0:
                if nl > start:
                    yield decode_event(
                        chunk[start:nl], strip=strip, kind=kind, api_version=api_version
                    )
                start = nl + 1
                nl = chunk.find(b"\n", start)
            pending = chunk[start:]
        if pending.strip():
            yield decode_event(pending, strip=strip, kind=kind, api_version=api_version)

    def stop(self) -> None:
        """End the watch: a blocked ``next()`` returns promptly and iteration ends.

        Idempotent; callable from any thread.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            busy = self._busy
        self._shutdown_socket()
        if not busy:
            self._close()

    def _shutdown_socket(self) -> None:
        # A read blocked in recv() only returns when the socket is shut down; closing it from
        # another thread is unsafe. (The official client's Watch.stop does the same.)
        resp = self._resp
        try:
            conn = getattr(resp, "connection", None)
            sock = getattr(conn, "sock", None) if conn is not None else None
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                resp.shutdown()
        except (OSError, ValueError, RuntimeError, AttributeError):
            pass  # already closed or released: nothing is blocked on it

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        resp = self._resp
        try:
            resp.close()
        except Exception:  # closing a broken connection must not mask why it broke
            log.debug("error closing a watch response", exc_info=True)
        try:
            resp.release_conn()
        except Exception:
            log.debug("error releasing a watch connection", exc_info=True)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "closed" if self._closed else "open"
        return f"KubeWatch({self._server}, {state})"
