"""Kubernetes API failures (Status objects, HTTP errors) as nvinformers.errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from nvinformers import errors
from nvinformers.kube import error_from_api_exception, error_from_status
from nvinformers.kube._status import unreachable


def status(code: int, reason: str, message: str = "boom", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
        **extra,
    }


class TestStatusObjects:
    @pytest.mark.parametrize(
        ("code", "reason", "cls"),
        [
            (410, "Expired", errors.ExpiredError),
            (410, "Gone", errors.ExpiredError),
            (400, "BadRequest", errors.BadRequestError),
            (415, "UnsupportedMediaType", errors.BadRequestError),
            (422, "Invalid", errors.BadRequestError),
            (401, "Unauthorized", errors.UnauthorizedError),
            (403, "Forbidden", errors.ForbiddenError),
            (404, "NotFound", errors.NotFoundError),
            (405, "MethodNotAllowed", errors.MethodNotSupportedError),
            (409, "AlreadyExists", errors.AlreadyExistsError),
            (409, "Conflict", errors.ConflictError),
            (429, "TooManyRequests", errors.ServiceUnavailableError),
            (500, "InternalError", errors.InternalError),
            (500, "ServerTimeout", errors.ServiceUnavailableError),
            (503, "ServiceUnavailable", errors.ServiceUnavailableError),
            (504, "Timeout", errors.ServiceUnavailableError),
            (418, "Teapot", errors.InternalError),
            (0, "Expired", errors.ExpiredError),
            (0, "NotFound", errors.NotFoundError),
        ],
    )
    def test_code_and_reason_choose_the_class_and_are_kept(
        self, code: int, reason: str, cls: type[errors.StatusError]
    ) -> None:
        err = error_from_status(status(code, reason, "the message"))
        assert type(err) is cls
        assert err.code == (code or cls.default_code)
        assert err.reason == reason
        assert err.message == "the message"

    def test_the_api_servers_410_is_an_expiry(self) -> None:
        err = error_from_status(
            status(410, "Expired", "too old resource version: 1 (5)"), resource="nodes"
        )
        assert errors.is_expired(err)
        assert err.resource == "nodes"
        assert "too old resource version" in str(err)

    def test_status_details_name_the_object(self) -> None:
        err = error_from_status(status(404, "NotFound", details={"name": "n9", "kind": "nodes"}))
        assert err.name == "n9"

    def test_anything_but_a_status_is_internal(self) -> None:
        assert type(error_from_status("nope")) is errors.InternalError
        err = error_from_status({"kind": "Status"})
        assert type(err) is errors.InternalError
        assert "unknown" in err.message


class TestApiExceptions:
    @pytest.mark.parametrize(
        ("code", "cls"),
        [
            (400, errors.BadRequestError),
            (401, errors.UnauthorizedError),
            (403, errors.ForbiddenError),
            (404, errors.NotFoundError),
            (409, errors.ConflictError),
            (410, errors.ExpiredError),
            (422, errors.BadRequestError),
            (429, errors.ServiceUnavailableError),
            (500, errors.InternalError),
            (503, errors.ServiceUnavailableError),
            (504, errors.ServiceUnavailableError),
        ],
    )
    def test_http_statuses_without_a_body_map_by_code(
        self, code: int, cls: type[errors.StatusError]
    ) -> None:
        err = error_from_api_exception(ApiException(status=code, reason="Why"), resource="nodes")
        assert type(err) is cls
        assert err.code == code
        assert str(code) in err.message and "Why" in err.message

    def test_a_status_body_supplies_message_and_reason(self) -> None:
        exc = ApiException(status=409, reason="Conflict")
        exc.body = json.dumps(status(409, "AlreadyExists", 'nodes "n1" already exists'))
        err = error_from_api_exception(exc, resource="nodes")
        assert type(err) is errors.AlreadyExistsError
        assert err.message == 'nodes "n1" already exists'
        assert err.resource == "nodes"

    def test_a_non_status_body_is_quoted(self) -> None:
        exc = ApiException(status=502, reason="Bad Gateway")
        exc.body = "<html>proxy error</html>"
        err = error_from_api_exception(exc)
        assert type(err) is errors.InternalError
        assert "proxy error" in err.message

    def test_status_zero_is_an_unreachable_server(self) -> None:
        err = error_from_api_exception(
            ApiException(status=0, reason="SSLError: bad handshake"), server="https://k8s:6443"
        )
        assert type(err) is errors.ServiceUnavailableError
        assert "https://k8s:6443" in err.message and "SSLError" in err.message
        assert errors.is_retriable(err)


def test_transport_failures_are_retriable_and_name_the_server() -> None:
    err = unreachable("https://k8s:6443", ConnectionResetError("connection reset by peer"))
    assert type(err) is errors.ServiceUnavailableError
    assert "https://k8s:6443" in err.message and "reset by peer" in err.message
    assert errors.is_retriable(err)
