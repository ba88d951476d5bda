"""Translation of Kubernetes API failures into nvinformers' Kubernetes-style errors.

This is the one place where an HTTP failure of the Kubernetes API becomes a
:class:`nvinformers.errors.StatusError` (the list-watch and the watch always raise ``mapped from
exc``, so the original stays available as ``__cause__``), as :mod:`nvinformers.clientset._status`
is for gRPC:

==============================================  ===========================================
from the server                                 raised
==============================================  ===========================================
HTTP status or in-stream ``ERROR`` 410          :class:`~nvinformers.errors.ExpiredError`
400 / 415 / 422 (BadRequest, Invalid)           :class:`~nvinformers.errors.BadRequestError`
401 / 403 / 404 / 405                           Unauthorized / Forbidden / NotFound /
                                                MethodNotSupported
409 AlreadyExists / other 409                   AlreadyExists / Conflict
429, 503, 504, reason Timeout / ServerTimeout   :class:`~nvinformers.errors.ServiceUnavailableError`
                                                (the server's code and reason are kept)
500 and anything else                           :class:`~nvinformers.errors.InternalError`
connection refused, reset, read timeout,        :class:`~nvinformers.errors.ServiceUnavailableError`
status 0 (the client's TLS/transport failure)   naming the server
==============================================  ===========================================

Undecodable bodies, events and objects are :class:`~nvinformers.errors.MalformedObjectError`,
raised where they are decoded.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

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
)

__all__ = ["error_from_status", "error_from_api_exception", "unreachable"]

#: Reasons that say "try again later" whatever the code.
_UNAVAILABLE_REASONS = ("TooManyRequests", "ServiceUnavailable", "Timeout", "ServerTimeout")


def _status_error(
    code: int, reason: str, message: str, *, resource: str = "", name: str = ""
) -> StatusError:
    """The error class for an HTTP code and Kubernetes reason; the server's code and reason are
    kept on the error (``err.code``, ``err.reason``) where the class groups several of them."""
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
    elif code in (429, 503, 504) or reason in _UNAVAILABLE_REASONS:
        cls = ServiceUnavailableError
    else:
        cls = InternalError
    err = cls(message, resource=resource, name=name, code=code or None)
    if reason:
        err.reason = reason
    return err


def error_from_status(status: Any, *, resource: str = "", name: str = "") -> StatusError:
    """Translate a ``Status`` object (an in-stream ``ERROR`` event's object) into an error.

    Anything that is not a ``Status`` mapping is an :class:`InternalError` quoting it.
    """
    if not isinstance(status, dict):
        return InternalError(f"watch ERROR event without a Status object: {status!r:.200}")
    code = status.get("code")
    code = code if isinstance(code, int) else 0
    reason = status.get("reason") if isinstance(status.get("reason"), str) else ""
    message = status.get("message") if isinstance(status.get("message"), str) else ""
    details = status.get("details")
    if not name and isinstance(details, dict) and isinstance(details.get("name"), str):
        name = details["name"]
    return _status_error(
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
    return _status_error(
        code,
        "",
        f"the Kubernetes API server answered {code} {exc.reason or ''}".rstrip() + detail,
        resource=resource,
    )


def unreachable(server: str, exc: BaseException) -> ServiceUnavailableError:
    """A transport failure (``urllib3`` error, ``OSError``: refused, reset, read timeout) as a
    retriable :class:`ServiceUnavailableError` naming ``server``."""
    reason: Any = getattr(exc, "reason", None) or exc
    return ServiceUnavailableError(f"cannot reach the Kubernetes API server at {server}: {reason}")
