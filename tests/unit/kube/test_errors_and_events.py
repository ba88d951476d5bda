"""Watch-line decoding and the translation of Kubernetes errors into nvinformers.errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from nvinformers import errors
from nvinformers.kube import decode_event, error_from_api_exception, error_from_status
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.watch import EventType

NODE = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "resourceVersion": "7"}}


def line(etype: str, obj: Any, **extra: Any) -> bytes:
    return json.dumps({"type": etype, "object": obj, **extra}, separators=(",", ":")).encode()


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


class TestDecodeEvent:
    @pytest.mark.parametrize("etype", ["ADDED", "MODIFIED", "DELETED"])
    def test_object_events_keep_the_object_s_bytes(self, etype: str) -> None:
        event = decode_event(line(etype, NODE) + b"\n")
        assert event.type is EventType(etype)
        assert event.object.metadata.name == "n1"
        assert event.object.metadata.resource_version == "7"
        assert event.object.to_bytes() == json.dumps(NODE, separators=(",", ":")).encode()

    def test_bookmarks_carry_a_revision_and_annotations_but_no_name(self) -> None:
        bookmark = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "resourceVersion": "99",
                "creationTimestamp": None,
                "annotations": {INITIAL_EVENTS_END_ANNOTATION: "true"},
            },
        }
        event = decode_event(line("BOOKMARK", bookmark))
        assert event.type is EventType.BOOKMARK
        assert event.object.metadata.resource_version == "99"
        assert event.object.metadata.name == ""
        assert event.object.metadata.annotations[INITIAL_EVENTS_END_ANNOTATION] == "true"

    def test_other_layouts_decode_generically(self) -> None:
        reordered = json.dumps({"object": NODE, "type": "ADDED"}, indent=1).encode()
        event = decode_event(reordered)
        assert event.type is EventType.ADDED
        assert event.object.to_dict() == NODE
        extra = decode_event(line("ADDED", NODE, extra={"x": 1}))
        assert extra.object.to_dict() == NODE

    def test_kind_defaults_fill_in_objects_without_one(self) -> None:
        event = decode_event(
            line("ADDED", {"metadata": {"name": "a"}}), kind="Pod", api_version="v1"
        )
        assert (event.object.kind, event.object.api_version) == ("Pod", "v1")

    def test_non_ascii_lines(self) -> None:
        obj = {"metadata": {"name": "a", "annotations": {"n": "żółw"}}}
        raw = json.dumps({"type": "ADDED", "object": obj}, ensure_ascii=False).encode()
        event = decode_event(raw)
        assert event.object.metadata.annotations["n"] == "żółw"

    @pytest.mark.parametrize(
        ("raw", "problem"),
        [
            (b"{not json", "malformed watch event"),
            (b"[1]", "not a JSON object"),
            (b'{"type":"EXPLODED","object":{"metadata":{"name":"a"}}}', "unknown event type"),
            (b'{"type":"ADDED"}', "no object"),
            (b'{"type":"ADDED","object":{"metadata":{}}}', r"metadata\.name"),
            (b'{"type":"ADDED","object":[]}', "expected a JSON object"),
            (b'{"type":"ADDED","object":{"metadata":{"name":"a"}}', "malformed watch event"),
            (b"\xff", "not UTF-8"),
        ],
    )
    def test_malformed_lines_raise_malformed_object_error(self, raw: bytes, problem: str) -> None:
        with pytest.raises(errors.MalformedObjectError, match=problem):
            decode_event(raw)


class TestErrorEvents:
    @pytest.mark.parametrize(
        ("code", "reason", "cls"),
        [
            (410, "Expired", errors.ExpiredError),
            (410, "Gone", errors.ExpiredError),
            (400, "BadRequest", errors.BadRequestError),
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
        ],
    )
    def test_in_stream_errors_raise_the_matching_status_error(
        self, code: int, reason: str, cls: type[errors.StatusError]
    ) -> None:
        with pytest.raises(cls) as caught:
            decode_event(line("ERROR", status(code, reason, "the message")))
        assert type(caught.value) is cls
        assert caught.value.code == code
        assert caught.value.reason == reason
        assert caught.value.message == "the message"

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

    def test_an_error_event_without_a_status_is_internal(self) -> None:
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
