"""Translation of gRPC status codes into nvinformers' Kubernetes-style errors.

This is the one place where a ``grpc.RpcError`` becomes a :class:`nvinformers.errors.StatusError`
(the clientset always raises ``mapped from err``, so the gRPC error stays available as
``__cause__``). The table follows the Device API contract and the Go SDK's later error mapping
(``pkg/grpc/errors``), with every code given a class:

=====================  ==============================  ======================================
gRPC code              error                           notes
=====================  ==============================  ======================================
NOT_FOUND              NotFoundError (404)             ``gpus.device.nvidia.com "gpu-9" not found``
ALREADY_EXISTS         AlreadyExistsError (409)
ABORTED                ConflictError (409)             stale resource version / precondition
INVALID_ARGUMENT       BadRequestError (400)           e.g. a label selector the server rejects
OUT_OF_RANGE           ExpiredError (410)              "too old resource version": relist
RESOURCE_EXHAUSTED     ExpiredError (410) on a watch   the Go watcher's mapping (server dropped
                                                       a slow watcher; the informer relists);
                                                       the message is the server's own ("refused
                                                       the watch: Concurrent RPC limit
                                                       exceeded!"), never "expired"
RESOURCE_EXHAUSTED     InternalError (500) otherwise   usually a response above the receive
                                                       limit; the message says so
PERMISSION_DENIED      ForbiddenError (403)
UNAUTHENTICATED        UnauthorizedError (401)
UNAVAILABLE            ServiceUnavailableError (503)   names the target; socket missing/server down
DEADLINE_EXCEEDED      ServiceUnavailableError (503)   the call's timeout expired
CANCELLED              ServiceUnavailableError (503)   a unary call cancelled under us (channel
                                                       closed); a watch never gets here: for a
                                                       watch CANCELLED is a quiet end
UNIMPLEMENTED          MethodNotSupportedError (405)   the server speaks another proto package
INTERNAL, UNKNOWN,     InternalError (500)             the gRPC code name is in the message
DATA_LOSS,
FAILED_PRECONDITION,
anything else
=====================  ==============================  ======================================

Every error carries ``grpc_code`` (the code's name, ``"NOT_FOUND"``), and ``resource`` / ``name``
when known.
"""

from __future__ import annotations

import grpc

from nvinformers.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    InternalError,
    MethodNotSupportedError,
    NotFoundError,
    ServiceUnavailableError,
    StatusError,
    UnauthorizedError,
    qualify,
)

__all__ = ["from_rpc_error", "cancelled_call_error", "code_name", "details_of", "PROTO_PACKAGE"]

#: The proto package of the service this client speaks (named in UNIMPLEMENTED messages).
PROTO_PACKAGE = "nvidia.nvsentinel.v1alpha1"


def code_name(err: object) -> str:
    """The name of the gRPC status code of ``err`` (``"UNAVAILABLE"``), ``"UNKNOWN"`` if none.

    Never raises: an ``RpcError`` raised by an interceptor may not implement ``code()``.
    """
    code_fn = getattr(err, "code", None)
    if code_fn is None:
        return "UNKNOWN"
    try:
        code = code_fn()
    except Exception:  # a foreign RpcError whose code() fails: treat as unknown
        return "UNKNOWN"
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def details_of(err: object, *, missing: str = "") -> str:
    """The status details of ``err`` (a gRPC call or ``RpcError``); ``missing`` if it has no
    ``details()``, ``""`` if they cannot be read (a stream still running, a foreign error)."""
    details_fn = getattr(err, "details", None)
    if details_fn is None:
        return missing
    try:
        details = details_fn()
    except Exception:  # same defence as code_name
        return ""
    return details if isinstance(details, str) else ""


def cancelled_call_error(
    *, target: str, method: str, resource: str = "gpus", name: str = ""
) -> ServiceUnavailableError:
    """The error of a unary call cancelled through its ``CancelToken``.

    gRPC reports it as ``grpc.FutureCancelledError``, which is not an ``RpcError``; it maps as
    CANCELLED does (503, ``grpc_code="CANCELLED"``). Callers raise it ``from None``.
    """
    return ServiceUnavailableError(
        f"the {method} call to the Device API at {target} was cancelled",
        grpc_code="CANCELLED",
        resource=qualify(resource),
        name=name,
    )


def from_rpc_error(
    err: grpc.RpcError,
    *,
    target: str,
    resource: str = "gpus",
    name: str = "",
    watch: bool = False,
    method: str = "",
) -> StatusError:
    """Map a failed RPC to a Kubernetes-style error (see the module docstring for the table).

    Callers raise the result ``from err``.

    Args:
        err: the gRPC error (raised by a call, or by iterating a stream).
        target: the target the channel dials, named in connectivity errors.
        resource: the plural resource (``"gpus"``), qualified with the API group in messages.
        name: the object name for single-object calls (``get``), "" otherwise.
        watch: True for failures of a watch stream (RESOURCE_EXHAUSTED then means 410 Expired).
        method: the RPC's short name (``"WatchGpus"``), named in UNIMPLEMENTED messages.

    Returns:
        The mapped error; never raises.
    """
    code = code_name(err)
    details = details_of(err, missing=str(err))
    qualified = qualify(resource)
    suffix = f": {details}" if details else ""

    def make(cls: type[StatusError], message: str) -> StatusError:
        return cls(message, grpc_code=code, resource=qualified, name=name)

    what = f'{qualified} "{name}"' if name else qualified

    if code == "NOT_FOUND":
        if name:
            return NotFoundError.for_object(resource, name, grpc_code=code)
        return make(NotFoundError, f"{qualified} not found{suffix}")
    if code == "ALREADY_EXISTS":
        return make(AlreadyExistsError, f"{what} already exists{suffix}")
    if code == "ABORTED":
        return make(ConflictError, f"Operation cannot be fulfilled on {what}{suffix}")
    if code == "INVALID_ARGUMENT":
        return make(BadRequestError, f"bad request for {what}{suffix}")
    if code == "OUT_OF_RANGE":
        return make(
            ExpiredError,
            f"resource version of the {qualified} watch expired "
            f"({code}){suffix or ': too old resource version'}",
        )
    if code == "RESOURCE_EXHAUSTED" and watch:
        # Expired for the informer (it relists, as the Go watcher does), but the words are the
        # server's: a full server pool must not read like a too-old revision.
        return make(
            ExpiredError,
            f"the Device API at {target} refused or dropped the {qualified} watch "
            f"({code}){suffix or ': the server is out of resources'}",
        )
    if code == "PERMISSION_DENIED":
        return make(ForbiddenError, f"access to {what} is forbidden{suffix}")
    if code == "UNAUTHENTICATED":
        return make(UnauthorizedError, f"unauthorized access to {what}{suffix}")
    if code == "UNAVAILABLE":
        return make(
            ServiceUnavailableError,
            f"the Device API at {target} is unavailable (the socket may be missing or the server "
            f"down){suffix}",
        )
    if code == "DEADLINE_EXCEEDED":
        return make(
            ServiceUnavailableError,
            f"the request to the Device API at {target} timed out (DEADLINE_EXCEEDED){suffix}",
        )
    if code == "CANCELLED":
        return make(
            ServiceUnavailableError,
            f"the request to the Device API at {target} was cancelled (CANCELLED){suffix}",
        )
    if code == "UNIMPLEMENTED":
        rpc = f"/{PROTO_PACKAGE}.GpuService/{method}" if method else f"the {qualified} method"
        return make(
            MethodNotSupportedError,
            f"the Device API at {target} does not implement {rpc} (UNIMPLEMENTED){suffix}; "
            f"the server may speak another version of the API (a proto package other than "
            f"{PROTO_PACKAGE})",
        )
    if code == "RESOURCE_EXHAUSTED":
        return make(
            InternalError,
            f"the Device API at {target} refused or returned too much for {what} "
            f"(RESOURCE_EXHAUSTED){suffix}; if the response exceeded the receive limit, raise "
            "Config.max_receive_message_length",
        )
    return make(InternalError, f"the Device API failed on {what} ({code}){suffix}")
