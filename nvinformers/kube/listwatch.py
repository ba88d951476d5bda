"""The Kubernetes API as a list-watch source: ``KubeListWatch`` over an official-client function.

``KubeListWatch`` implements :class:`nvinformers.cache.ListerWatcher` with a list function of the
official ``kubernetes`` client (``CoreV1Api(api_client).list_node``,
``functools.partial(core.list_namespaced_pod, "team-a")``...), so a
:class:`~nvinformers.cache.SharedIndexInformer` caches Nodes or Pods with the full reflector
semantics (list then watch by resource version, bookmarks, 410 → relist with a delete diff,
backoff, inactivity timeout) that the official client's own informer lacks.

The receive path bypasses the client's model deserialization, which is what makes the official
watch slow: every call passes ``_preload_content=False`` and gets the raw ``urllib3`` response;
a list body is decoded once and each item keeps its slice of the body as its bytes
(:func:`~nvinformers.kube.objects.parse_list`); a watch reads the chunked stream and decodes each
line (one JSON event) into a :class:`~nvinformers.kube.objects.KubeObject`, again keeping the
object's slice of the line.

Errors are translated once, here, into :mod:`nvinformers.errors` (the cause is chained):

==============================================  ===========================================
from the server                                 raised
==============================================  ===========================================
HTTP status or in-stream ``ERROR`` 410          :class:`~nvinformers.errors.ExpiredError`
400 / 422 (BadRequest, Invalid)                 :class:`~nvinformers.errors.BadRequestError`
401 / 403 / 404 / 405                           Unauthorized / Forbidden / NotFound /
                                                MethodNotSupported
409 AlreadyExists / other 409                   AlreadyExists / Conflict
429, 503, 504, reason Timeout / ServerTimeout   :class:`~nvinformers.errors.ServiceUnavailableError`
                                                (the server's code and reason are kept)
500 and anything else                           :class:`~nvinformers.errors.InternalError`
connection refused, reset, read timeout         :class:`~nvinformers.errors.ServiceUnavailableError`
                                                naming the server
undecodable body, event or object               :class:`~nvinformers.errors.MalformedObjectError`
==============================================  ===========================================

Thread-safety: a ``KubeListWatch`` may be shared (it holds no per-call state besides the kind it
learned from the last list). A :class:`KubeWatch` is iterated by one thread; ``stop()`` may be
called from any thread and ends a blocked read promptly by shutting the socket down.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, NoReturn, Self

import urllib3
from kubernetes.client.exceptions import ApiException

from nvinformers.cache.listwatch import TweakListOptionsFunc
from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    InternalError,
    MalformedObjectError,
    MethodNotSupportedError,
    NotFoundError,
    ServiceUnavailableError,
    StatusError,
    UnauthorizedError,
)
from nvinformers.kube.objects import (
    KubeList,
    KubeObject,
    _build,
    _object_bytes,
    _scan,
    parse_list,
)
from nvinformers.options import ListOptions
from nvinformers.watch import Event, EventType

__all__ = [
    "KubeListWatch",
    "KubeWatch",
    "ListFunc",
    "decode_event",
    "error_from_status",
    "error_from_api_exception",
    "status_error",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
]

log = logging.getLogger("nvinformers.kube")

#: An official-client list function: ``CoreV1Api.list_node`` and the like.
ListFunc = Callable[..., Any]

#: Seconds a list may take (read side), and a connection may take to open.
DEFAULT_REQUEST_TIMEOUT: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
#: A watch's socket read timeout is its ``timeout_seconds`` plus this slack: a server that
#: neither sends nor closes by then is gone (the reflector re-watches).
_WATCH_READ_SLACK: Final = 30.0
#: Read timeout of a watch opened without ``timeout_seconds``.
_IDLE_WATCH_READ_TIMEOUT: Final = 3600.0

_EVENT_TYPES: Final[Mapping[str, EventType]] = {t.value: t for t in EventType}
_BOOKMARK: Final = EventType.BOOKMARK
_ERROR: Final = EventType.ERROR
_TYPE_PREFIX: Final = '{"type":"'
_OBJECT_KEY: Final = '","object":'


# -------------------------------------------------------------------------------- error mapping


def status_error(
    code: int, reason: str, message: str, *, resource: str = "", name: str = ""
) -> StatusError:
    """Build the :mod:`nvinformers.errors` class for an HTTP code and Kubernetes reason.

    The server's code and reason are kept on the error (``err.code``, ``err.reason``) even where
    the class groups several of them (429 and 504 are :class:`ServiceUnavailableError`).
    """
    cls: type[StatusError]
    if code == 410 or reason in ("Expired", "Gone"):
        cls = ExpiredError
    elif code == 404 or reason == "NotFound":
        cls = NotFoundError
    elif code == 409:
        cls = AlreadyExistsError if reason == "AlreadyExists" else ConflictError
    elif code in (400, 415, 422) or reason in ("BadRequest", "Invalid"):
        cls = BadRequestError
    elif code == 401:
        cls = UnauthorizedError
    elif code == 403:
        cls = ForbiddenError
    elif code == 405:
        cls = MethodNotSupportedError
    elif code in (429, 503, 504) or reason in (
        "TooManyRequests",
        "ServiceUnavailable",
        "Timeout",
        "ServerTimeout",
    ):
        cls = ServiceUnavailableError
    else:
        cls = InternalError
    err = cls(message, resource=resource, name=name, code=code or None)
    if reason:
        err.reason = reason
    return err


def error_from_status(status: Any, *, resource: str = "", name: str = "") -> StatusError:
    """Translate a ``Status`` object (an in-stream ``ERROR`` event's object) into an error."""
    if not isinstance(status, dict):
        return InternalError(f"watch ERROR event without a Status object: {status!r:.200}")
    code = status.get("code")
    code = code if isinstance(code, int) else 0
    reason = status.get("reason") if isinstance(status.get("reason"), str) else ""
    message = status.get("message") if isinstance(status.get("message"), str) else ""
    details = status.get("details")
    if not name and isinstance(details, dict) and isinstance(details.get("name"), str):
        name = details["name"]
    return status_error(
        code,
        reason or "",
        message or f"the server reported an error: {reason or code or 'unknown'}",
        resource=resource,
        name=name,
    )


def error_from_api_exception(
    exc: ApiException, *, resource: str = "", server: str = ""
) -> StatusError:
    """Translate the official client's ``ApiException`` (an HTTP error) into an error.

    The body's ``Status`` (message, reason, code) is used when present; status 0 (the client's
    code for TLS and transport failures) is a :class:`ServiceUnavailableError` naming the server.
    """
    code = exc.status if isinstance(exc.status, int) else 0
    if code == 0:
        return ServiceUnavailableError(
            f"cannot reach the Kubernetes API server at {server or 'its address'}: {exc.reason}",
            resource=resource,
        )
    body = exc.body
    status: Any = None
    if body:
        try:
            status = json.loads(body)
        except (TypeError, ValueError):
            status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        if not isinstance(status.get("code"), int):
            status["code"] = code
        return error_from_status(status, resource=resource)
    detail = f": {body.strip()[:200]}" if isinstance(body, str) and body.strip() else ""
    return status_error(
        code,
        "",
        f"the Kubernetes API server answered {code} {exc.reason or ''}".rstrip() + detail,
        resource=resource,
    )


def _unavailable(server: str, exc: BaseException) -> ServiceUnavailableError:
    reason: Any = getattr(exc, "reason", None) or exc
    return ServiceUnavailableError(f"cannot reach the Kubernetes API server at {server}: {reason}")


# ------------------------------------------------------------------------------ event decoding


def _malformed_event(message: str, line: bytes | str) -> NoReturn:
    raise MalformedObjectError(f"malformed watch event from the server ({message}): {line!r:.200}")


def decode_event(
    line: bytes, *, strip: bool = True, kind: str = "", api_version: str = ""
) -> Event[KubeObject]:
    """Decode one watch line (``{"type": "ADDED", "object": {...}}``) into an event.

    The object keeps its slice of ``line`` as its bytes when the line has the API server's
    layout (``type`` then ``object``); other layouts are decoded generically and re-serialized.

    Args:
        line: one line of the stream (a trailing newline is allowed).
        strip: drop ``metadata.managedFields``.
        kind: the kind to assume for objects without one.
        api_version: the API version to assume for objects without one.

    Returns:
        The event; BOOKMARK objects carry only ``metadata.resource_version`` (and annotations).

    Raises:
        StatusError: an ``ERROR`` event (410 → :class:`ExpiredError`, ...).
        MalformedObjectError: the line is not a valid event.
    """
    try:
        text = line.decode()
    except UnicodeDecodeError:
        _malformed_event("not UTF-8", line)
    obj: Any = None
    raw: bytes | None = None  # None: _build serializes the object
    type_name: Any = None
    if text.startswith(_TYPE_PREFIX):
        sep = text.find(_OBJECT_KEY, 9, 48)
        if sep > 0:
            start = sep + 11
            try:
                obj, end = _scan(text, start)
            except (StopIteration, ValueError):
                obj = None
            else:
                tail = text[end:]
                if tail == "}" or tail.strip() == "}":
                    type_name = text[9:sep]
                    data = line if len(text) == len(line) else None
                    raw = _object_bytes(text, data, start, end, obj, strip)
    if type_name is None:
        try:
            event = json.loads(text)
        except ValueError as exc:
            _malformed_event(str(exc), line)
        if not isinstance(event, dict):
            _malformed_event("not a JSON object", line)
        type_name = event.get("type")
        obj = event.get("object")
    etype = _EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if etype is None:
        _malformed_event(f"unknown event type {type_name!r}", line)
    if etype is _ERROR:
        raise error_from_status(obj)
    if obj is None:
        _malformed_event("no object", line)
    return Event(
        etype, _build(raw, obj, kind, api_version, strip=strip, nameless=etype is _BOOKMARK)
    )


# ----------------------------------------------------------------------------------- the watch


class KubeWatch:
    """A running watch over one HTTP response (implements :class:`nvinformers.watch.Interface`).

    Iteration yields :class:`~nvinformers.watch.Event` objects of
    :class:`~nvinformers.kube.objects.KubeObject` and ends quietly when the server ends the
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

    def __iter__(self) -> Self:
        return self

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
            raise _unavailable(self._server, exc) from exc
        finally:
            with lock:
                self._busy = False
                stopped = self._stopped
            if stopped:
                self._close()

    def _generate(self) -> Any:
        """The hot loop: read chunks, split lines, decode events."""
        resp = self._resp
        strip, kind, api_version = self._strip, self._kind, self._api_version
        if resp.chunked and resp.supports_chunked_reads():
            chunks = resp.stream(None)
        else:
            chunks = iter(functools.partial(resp.read1, 65536), b"")
        pending = b""
        for data in chunks:
            chunk = pending + data if pending else data
            pending = b""
            size = len(chunk)
            nl = chunk.find(b"\n")
            if nl == size - 1:
                # One whole event per chunk: the common case; decode without copying.
                if nl > 0:
                    yield decode_event(chunk, strip=strip, kind=kind, api_version=api_version)
                continue
            start = 0
            while nl >= 0:
                if nl > start:
                    yield decode_event(
                        chunk[start:nl], strip=strip, kind=kind, api_version=api_version
                    )
                start = nl + 1
                nl = chunk.find(b"\n", start)
            if start < size:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "closed" if self._closed else "open"
        return f"KubeWatch({self._server}, {state})"


# ------------------------------------------------------------------------------ the list-watch


def _server_of(func: Callable[..., Any]) -> str:
    """The API server URL behind an official-client method (best effort, for messages)."""
    target: Any = func
    while isinstance(target, functools.partial):
        target = target.func
    api = getattr(target, "__self__", None)
    config = getattr(getattr(api, "api_client", None), "configuration", None)
    host = getattr(config, "host", None)
    return host if isinstance(host, str) and host else "the Kubernetes API server"


class KubeListWatch:
    """A :class:`~nvinformers.cache.ListerWatcher` of Kubernetes objects over a list function.

    Example::

        core = kubernetes.client.CoreV1Api(api_client)
        lw = KubeListWatch(core.list_node, resource="nodes")
        lw = KubeListWatch(core.list_namespaced_pod, resource="pods", namespace="team-a",
                           field_selector="spec.nodeName=node-1")

    Every list and watch sends only the options that are set: ``resourceVersion``,
    ``resourceVersionMatch``, ``labelSelector``, ``fieldSelector`` and, on watches,
    ``allowWatchBookmarks``, ``timeoutSeconds`` and ``sendInitialEvents``. Lists are not paginated
    (the reflector's first list asks for resource version "0", which the API server serves whole
    from its watch cache, as client-go's does).

    Args:
        list_func: an official-client list method (``list_node``, ``list_namespaced_pod``,
            ``list_pod_for_all_namespaces``, ``CustomObjectsApi`` methods bound with
            :func:`functools.partial`...).
        resource: the plural resource, used in error messages (``"nodes"``).
        namespace: passed as ``namespace=`` to ``list_func`` when not empty.
        field_selector: sent with every list and watch (e.g. ``spec.nodeName=node-1``).
        tweak_list_options: applied to the options of every list and watch.
        request_timeout: socket read timeout of a list, in seconds.
        connect_timeout: timeout to open a connection, in seconds.
        strip_managed_fields: drop ``metadata.managedFields`` at ingest (they are 20-30 % of a
            typical object and no controller reads them; free when absent).
        server: the server's URL for messages (default: read from ``list_func``'s client).

    Thread-safety: may be shared between threads.
    """

    __slots__ = (
        "_func",
        "_resource",
        "_namespace",
        "_field_selector",
        "_tweak",
        "_list_timeout",
        "_connect_timeout",
        "_strip",
        "_server",
        "_kind",
        "_api_version",
    )

    def __init__(
        self,
        list_func: ListFunc,
        *,
        resource: str = "",
        namespace: str = "",
        field_selector: str = "",
        tweak_list_options: TweakListOptionsFunc | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        strip_managed_fields: bool = True,
        server: str | None = None,
    ) -> None:
        if not callable(list_func):
            raise ValueError(f"list_func must be an official-client list method, got {list_func!r}")
        if request_timeout <= 0 or connect_timeout <= 0:
            raise ValueError(
                f"timeouts must be > 0, got request_timeout={request_timeout}, "
                f"connect_timeout={connect_timeout}"
            )
        self._func = list_func
        self._resource = resource
        self._namespace = namespace
        self._field_selector = field_selector
        self._tweak = tweak_list_options
        self._list_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._strip = strip_managed_fields
        self._server = server or _server_of(list_func)
        # Learned from lists: the kind and API version of the items, for watch objects that
        # lack them (built-in kinds always carry them in watch events).
        self._kind = ""
        self._api_version = ""

    @property
    def resource(self) -> str:
        return self._resource

    @property
    def server(self) -> str:
        return self._server

    def _common(self, options: ListOptions, kwargs: dict[str, Any]) -> None:
        if options.resource_version:
            kwargs["resource_version"] = options.resource_version
        if options.resource_version_match:
            kwargs["resource_version_match"] = options.resource_version_match
        if options.label_selector:
            kwargs["label_selector"] = options.label_selector
        if self._field_selector:
            kwargs["field_selector"] = self._field_selector
        if self._namespace:
            kwargs["namespace"] = self._namespace

    def _call(self, kwargs: dict[str, Any]) -> Any:
        try:
            return self._func(**kwargs)
        except ApiException as exc:
            raise error_from_api_exception(
                exc, resource=self._resource, server=self._server
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(self._server, exc) from exc

    def list(self, options: ListOptions) -> KubeList:
        """List with ``options`` (after the tweak). Blocks for one round trip.

        Raises:
            StatusError: the mapped HTTP error (see the module docstring).
            MalformedObjectError: the body cannot be decoded.
        """
        if self._tweak is not None:
            options = self._tweak(options)
        kwargs: dict[str, Any] = {
            "_preload_content": False,
            "_request_timeout": (self._connect_timeout, self._list_timeout),
        }
        self._common(options, kwargs)
        resp = self._call(kwargs)
        try:
            body = resp.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(self._server, exc) from exc
        finally:
            resp.release_conn()
        result = parse_list(body, strip=self._strip)
        if result.items:
            self._kind = result.items[0].kind
            self._api_version = result.items[0].api_version
        return result

    def watch(self, options: ListOptions) -> KubeWatch:
        """Open a watch with ``options`` (after the tweak); returns once the server answered.

        Raises:
            StatusError: the server refused the watch (HTTP status mapped), or cannot be reached
                (:class:`ServiceUnavailableError`). In-stream errors are raised while iterating.
        """
        if self._tweak is not None:
            options = self._tweak(options)
        timeout = options.timeout_seconds
        read_timeout = timeout + _WATCH_READ_SLACK if timeout else _IDLE_WATCH_READ_TIMEOUT
        kwargs: dict[str, Any] = {
            "watch": True,
            "_preload_content": False,
            "_request_timeout": (self._connect_timeout, read_timeout),
        }
        self._common(options, kwargs)
        if options.allow_watch_bookmarks:
            kwargs["allow_watch_bookmarks"] = True
        if timeout is not None:
            kwargs["timeout_seconds"] = timeout
        if options.send_initial_events is not None:
            kwargs["send_initial_events"] = options.send_initial_events
        resp = self._call(kwargs)
        return KubeWatch(
            resp,
            server=self._server,
            strip_managed_fields=self._strip,
            kind=self._kind,
            api_version=self._api_version,
        )

    def __repr__(self) -> str:
        return f"KubeListWatch(resource={self._resource!r}, server={self._server!r})"
