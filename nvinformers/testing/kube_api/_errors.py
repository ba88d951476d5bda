"""Errors of the fake Kubernetes API server: one exception carrying the ``Status`` it answers with.

The constructors below give the API server's code, reason and message wording for each case, so
that clients (the official client, kubectl, kopf) see what a real server would send.

Thread-safety: immutable values.
"""

from __future__ import annotations

from typing import Any

from nvinformers.errors import NvInformersError

__all__ = [
    "FakeKubeAPIError",
    "bad_request",
    "invalid",
    "not_found",
    "path_not_found",
    "already_exists",
    "conflict",
    "expired",
]


class FakeKubeAPIError(NvInformersError):
    """A request the fake refuses: carries the HTTP code, reason and message of its Status."""

    def __init__(
        self, code: int, reason: str, message: str, *, name: str = "", kind: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.kind = kind

    def status(self) -> dict[str, Any]:
        """The error as a Kubernetes ``Status`` object."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.name or self.kind:
            out["details"] = {"name": self.name, "kind": self.kind}
        return out


def bad_request(message: str) -> FakeKubeAPIError:
    """400 BadRequest."""
    return FakeKubeAPIError(400, "BadRequest", message)


def invalid(message: str) -> FakeKubeAPIError:
    """422 Invalid."""
    return FakeKubeAPIError(422, "Invalid", message)


def not_found(plural: str, name: str) -> FakeKubeAPIError:
    """404 NotFound for one object (``nodes "n1" not found``)."""
    return FakeKubeAPIError(404, "NotFound", f'{plural} "{name}" not found', name=name, kind=plural)


def path_not_found() -> FakeKubeAPIError:
    """404 NotFound for a path the server does not serve (the API server's exact wording)."""
    return FakeKubeAPIError(404, "NotFound", "the server could not find the requested resource")


def already_exists(plural: str, name: str) -> FakeKubeAPIError:
    """409 AlreadyExists."""
    return FakeKubeAPIError(
        409, "AlreadyExists", f'{plural} "{name}" already exists', name=name, kind=plural
    )


def conflict(plural: str, name: str) -> FakeKubeAPIError:
    """409 Conflict: a stale ``metadata.resourceVersion`` precondition."""
    return FakeKubeAPIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        name=name,
        kind=plural,
    )


def expired(revision: int, compacted: int) -> FakeKubeAPIError:
    """410 Expired: a revision older than the compacted history."""
    return FakeKubeAPIError(410, "Expired", f"too old resource version: {revision} ({compacted})")
