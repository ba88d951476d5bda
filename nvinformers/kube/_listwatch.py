"""The Kubernetes API as a list-watch source: ``KubeListWatch`` over an official-client function.

``KubeListWatch`` implements :class:`nvinformers.cache.ListerWatcher` with a list function of the
official ``kubernetes`` client (``CoreV1Api(api_client).list_node``,
``functools.partial(core.list_namespaced_pod, "team-a")``...), so a
:class:`~nvinformers.cache.SharedIndexInformer` caches Nodes or Pods with the full reflector
semantics (list then watch by resource version, bookmarks, 410 → relist with a delete diff,
backoff, inactivity timeout) that the official client's own informer lacks.

Every call passes ``_preload_content=False`` and gets the raw ``urllib3`` response, bypassing the
client's model deserialization: a list body is decoded by
:func:`~nvinformers.kube._objects.parse_list`, a watch is read by
:class:`~nvinformers.kube._watch.KubeWatch`. Failures are raised as :mod:`nvinformers.errors`,
translated by :mod:`nvinformers.kube._status` (the cause is chained).

Thread-safety: a ``KubeListWatch`` may be shared (it holds no per-call state besides the kind it
learned from the last list).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import urllib3
from kubernetes.client.exceptions import ApiException

from nvinformers.cache import TweakListOptionsFunc
from nvinformers.kube._objects import KubeList, parse_list
from nvinformers.kube._status import error_from_api_exception, unreachable
from nvinformers.kube._watch import KubeWatch
from nvinformers.options import ListOptions

__all__ = ["KubeListWatch", "ListFunc", "DEFAULT_REQUEST_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT"]

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

    def _kwargs(self, options: ListOptions, read_timeout: float) -> dict[str, Any]:
        """What every list and watch passes: a raw response, the timeouts, the options set."""
        kwargs: dict[str, Any] = {
            "_preload_content": False,
            "_request_timeout": (self._connect_timeout, read_timeout),
        }
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
        return kwargs

    def _call(self, kwargs: dict[str, Any]) -> Any:
        try:
            return self._func(**kwargs)
        except ApiException as exc:
            raise error_from_api_exception(
                exc, resource=self._resource, server=self._server
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(self._server, exc) from exc

    def list(self, options: ListOptions) -> KubeList:
        """List with ``options`` (after the tweak). Blocks for one round trip.

        Raises:
            StatusError: the HTTP error, mapped by :mod:`nvinformers.kube._status`.
            MalformedObjectError: the body cannot be decoded.
        """
        if self._tweak is not None:
            options = self._tweak(options)
        resp = self._call(self._kwargs(options, self._list_timeout))
        try:
            body = resp.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(self._server, exc) from exc
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
        kwargs = self._kwargs(options, read_timeout)
        kwargs["watch"] = True
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
