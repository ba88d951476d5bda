"""The errors nvinformers raises: one hierarchy, every class under :class:`NvInformersError`.

Every failure that comes back from an API server is translated once per protocol, at the
boundary, into a :class:`StatusError` (the original error chained as ``__cause__``), including
failures raised while iterating a watch stream: gRPC in :mod:`nvinformers.clientset._status`,
HTTP (the Kubernetes API) in :mod:`nvinformers.kube._status`. Callers test for kinds of failure
with the ``is_*`` helpers, which mirror ``k8s.io/apimachinery/pkg/api/errors``::

    NvInformersError
     ├── StatusError                      code  reason               gRPC status
     │    ├── BadRequestError             400   BadRequest           INVALID_ARGUMENT
     │    ├── UnauthorizedError           401   Unauthorized         UNAUTHENTICATED
     │    ├── ForbiddenError              403   Forbidden            PERMISSION_DENIED
     │    ├── NotFoundError               404   NotFound             NOT_FOUND
     │    ├── MethodNotSupportedError     405   MethodNotAllowed     UNIMPLEMENTED (and write verbs)
     │    ├── AlreadyExistsError          409   AlreadyExists        ALREADY_EXISTS
     │    ├── ConflictError               409   Conflict             ABORTED
     │    ├── ExpiredError                410   Expired              OUT_OF_RANGE (on a watch,
     │    │                                                           also RESOURCE_EXHAUSTED)
     │    ├── InternalError               500   InternalError        INTERNAL, UNKNOWN, DATA_LOSS...
     │    │    └── MalformedObjectError   500   InternalError        (undecodable object)
     │    └── ServiceUnavailableError     503   ServiceUnavailable   UNAVAILABLE, DEADLINE_EXCEEDED
     ├── CacheSyncTimeoutError   (also TimeoutError)  nvinformers.controller: caches not synced
     ├── ClientsetClosedError    (also RuntimeError)  nvinformers.clientset: a call after close()
     ├── InformerStoppedError    (also RuntimeError)  nvinformers.cache: a stopped informer
     ├── ReconcilePanicError     (also RuntimeError)  nvinformers.controller: unrecovered panic
     ├── TerminalError                                nvinformers.controller: raised by
     │                                                reconcilers (not retried)
     ├── KeyFuncError            (also ValueError)    nvinformers.cache: an object without a key
     ├── IndexConflictError      (also ValueError)    nvinformers.cache: an index name is taken
     ├── SelectorParseError      (also ValueError)    nvinformers.labels: a bad label selector
     ├── FakeServerError         (also RuntimeError)  nvinformers.testing: cannot serve
     └── FakeKubeAPIError, tracker errors             nvinformers.testing (inside the fakes)

Programming errors — a bad option, target, selector or argument type, raised before any call —
are plain ``ValueError`` and ``TypeError``, named in each docstring's ``Raises``. Internal
signals that never leave the library (the reflector's ``VeryShortWatchError`` and
``ReplayedWatchError``, the controller's ``SkipEventError``) derive from
:class:`NvInformersError` too. :class:`nvinformers.signals.Interrupted` is a ``BaseException``
on purpose, like ``KeyboardInterrupt``.

A watch that is cancelled (``stop()``) or ends cleanly is not an error: iteration simply ends.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "NvInformersError",
    "StatusError",
    "BadRequestError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "MethodNotSupportedError",
    "AlreadyExistsError",
    "ConflictError",
    "ExpiredError",
    "InternalError",
    "MalformedObjectError",
    "ServiceUnavailableError",
    "GROUP",
    "is_bad_request",
    "is_unauthorized",
    "is_forbidden",
    "is_not_found",
    "is_method_not_supported",
    "is_already_exists",
    "is_conflict",
    "is_expired",
    "is_resource_expired",
    "is_gone",
    "is_internal_error",
    "is_malformed_object",
    "is_service_unavailable",
    "is_retriable",
    "reason_for_error",
    "code_for_error",
]

#: The API group of the Device API; qualifies resources in messages (``gpus.device.nvidia.com``).
GROUP = "device.nvidia.com"


class NvInformersError(Exception):
    """Base class of every error nvinformers raises on purpose."""


class StatusError(NvInformersError):
    """An API failure with a Kubernetes-style HTTP code and reason.

    Attributes:
        code: the HTTP-style status code (404, 409, 410, ...).
        reason: the Kubernetes ``StatusReason`` (``"NotFound"``, ``"Expired"``, ...).
        message: the human-readable message (also ``str(err)``).
        grpc_code: the name of the gRPC status code that caused it (``"NOT_FOUND"``), or None when
            the error was raised locally (for example a write verb on the read-only client).
        resource: the qualified resource (``"gpus.device.nvidia.com"``) when known.
        name: the object name when known.
    """

    default_code: ClassVar[int] = 500
    default_reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        grpc_code: str | None = None,
        resource: str = "",
        name: str = "",
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code
        self.reason = self.default_reason
        self.grpc_code = grpc_code
        self.resource = resource
        self.name = name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code}, reason={self.reason!r}, "
            f"message={self.message!r}, grpc_code={self.grpc_code!r})"
        )


class BadRequestError(StatusError):
    """400: the request was invalid (for example a label selector the server cannot parse)."""

    default_code = 400
    default_reason = "BadRequest"


class UnauthorizedError(StatusError):
    """401: the caller is not authenticated."""

    default_code = 401
    default_reason = "Unauthorized"


class ForbiddenError(StatusError):
    """403: the caller may not perform the request."""

    default_code = 403
    default_reason = "Forbidden"


class NotFoundError(StatusError):
    """404: the object does not exist: ``gpus.device.nvidia.com "gpu-9" not found``."""

    default_code = 404
    default_reason = "NotFound"

    @classmethod
    def for_object(
        cls, resource: str, name: str, *, group: str = GROUP, grpc_code: str | None = None
    ) -> NotFoundError:
        """Build the canonical not-found error for ``name`` of ``resource`` (``"gpus"``).

        ``group`` qualifies an unqualified resource: the Device API's by default
        (``gpus.device.nvidia.com "gpu-9" not found``); ``""`` for Kubernetes core resources
        (``nodes "node-9" not found``).
        """
        qualified = qualify(resource, group)
        return cls(
            f'{qualified} "{name}" not found', grpc_code=grpc_code, resource=qualified, name=name
        )


class MethodNotSupportedError(StatusError):
    """405: the verb is not supported (write verbs on the read-only SDK, or UNIMPLEMENTED)."""

    default_code = 405
    default_reason = "MethodNotAllowed"


class AlreadyExistsError(StatusError):
    """409: an object of that name already exists."""

    default_code = 409
    default_reason = "AlreadyExists"


class ConflictError(StatusError):
    """409: a stale resource version or a failed precondition."""

    default_code = 409
    default_reason = "Conflict"


class ExpiredError(StatusError):
    """410: the requested resource version is older than the server's history.

    An informer answers it by listing again (client-go: ``IsResourceExpired`` / ``IsGone``).
    """

    default_code = 410
    default_reason = "Expired"


class InternalError(StatusError):
    """500: the server failed, or answered with a status nvinformers has no better class for."""

    default_code = 500
    default_reason = "InternalError"


class MalformedObjectError(InternalError):
    """The server sent an object or event that cannot be decoded or lacks a required field.

    Raised by the clientset (for example a watch event without an object, an object without a
    name, or bytes that are not a valid ``Gpu``). An informer logs and counts it and recovers by
    watching or listing again; it never crashes a thread or drops cached state.
    """


class ServiceUnavailableError(StatusError):
    """503: the Device API cannot be reached (missing socket, server down) or timed out.

    Retriable. The message names the target that could not be reached.
    """

    default_code = 503
    default_reason = "ServiceUnavailable"


def qualify(resource: str, group: str = GROUP) -> str:
    """Return ``resource`` qualified with ``group`` (``gpus`` → ``gpus.device.nvidia.com``).

    Already qualified resources (with a dot) and an empty ``group`` (the Kubernetes core group)
    leave it unchanged.
    """
    if not resource or not group or "." in resource:
        return resource
    return f"{resource}.{group}"


def is_bad_request(err: BaseException | None) -> bool:
    """True if ``err`` is a 400 BadRequest error."""
    return isinstance(err, BadRequestError)


def is_unauthorized(err: BaseException | None) -> bool:
    """True if ``err`` is a 401 Unauthorized error."""
    return isinstance(err, UnauthorizedError)


def is_forbidden(err: BaseException | None) -> bool:
    """True if ``err`` is a 403 Forbidden error."""
    return isinstance(err, ForbiddenError)


def is_not_found(err: BaseException | None) -> bool:
    """True if ``err`` is a 404 NotFound error (from the clientset or from a lister)."""
    return isinstance(err, NotFoundError)


def is_method_not_supported(err: BaseException | None) -> bool:
    """True if ``err`` is a 405 MethodNotAllowed error."""
    return isinstance(err, MethodNotSupportedError)


def is_already_exists(err: BaseException | None) -> bool:
    """True if ``err`` is a 409 AlreadyExists error."""
    return isinstance(err, AlreadyExistsError)


def is_conflict(err: BaseException | None) -> bool:
    """True if ``err`` is a 409 Conflict error."""
    return isinstance(err, ConflictError)


def is_expired(err: BaseException | None) -> bool:
    """True if ``err`` is a 410 Expired error ("too old resource version")."""
    return isinstance(err, ExpiredError)


#: client-go spells it both ways; both are offered.
is_resource_expired = is_expired
is_gone = is_expired


def is_internal_error(err: BaseException | None) -> bool:
    """True if ``err`` is a 500 InternalError (including :class:`MalformedObjectError`)."""
    return isinstance(err, InternalError)


def is_malformed_object(err: BaseException | None) -> bool:
    """True if the server sent an object or event that could not be decoded."""
    return isinstance(err, MalformedObjectError)


def is_service_unavailable(err: BaseException | None) -> bool:
    """True if ``err`` is a 503 ServiceUnavailable error (unreachable server or timeout)."""
    return isinstance(err, ServiceUnavailableError)


def is_retriable(err: BaseException | None) -> bool:
    """True for failures that may succeed if retried unchanged (503 and 500)."""
    return isinstance(err, ServiceUnavailableError | InternalError)


def reason_for_error(err: BaseException | None) -> str:
    """The Kubernetes reason of ``err`` (``"NotFound"``...), or ``"Unknown"`` for other errors."""
    return err.reason if isinstance(err, StatusError) else "Unknown"


def code_for_error(err: BaseException | None) -> int:
    """The HTTP-style code of ``err``, or 0 for errors that are not :class:`StatusError`."""
    return err.code if isinstance(err, StatusError) else 0
