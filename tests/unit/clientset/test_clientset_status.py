"""from_rpc_error: every row of the contract's gRPC status → Kubernetes-style error table."""

from __future__ import annotations

import grpc
import pytest

from nvinformers import errors
from nvinformers.clientset._status import code_name, from_rpc_error

TARGET = "unix:///tmp/nvi/api.sock"


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str | None = "server says no") -> None:
        super().__init__()
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details


@pytest.mark.parametrize(
    ("code", "cls", "http", "reason"),
    [
        (grpc.StatusCode.NOT_FOUND, errors.NotFoundError, 404, "NotFound"),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExistsError, 409, "AlreadyExists"),
        (grpc.StatusCode.ABORTED, errors.ConflictError, 409, "Conflict"),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.BadRequestError, 400, "BadRequest"),
        (grpc.StatusCode.OUT_OF_RANGE, errors.ExpiredError, 410, "Expired"),
        (grpc.StatusCode.PERMISSION_DENIED, errors.ForbiddenError, 403, "Forbidden"),
        (grpc.StatusCode.UNAUTHENTICATED, errors.UnauthorizedError, 401, "Unauthorized"),
        (grpc.StatusCode.UNAVAILABLE, errors.ServiceUnavailableError, 503, "ServiceUnavailable"),
        (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            errors.ServiceUnavailableError,
            503,
            "ServiceUnavailable",
        ),
        (grpc.StatusCode.CANCELLED, errors.ServiceUnavailableError, 503, "ServiceUnavailable"),
        (grpc.StatusCode.INTERNAL, errors.InternalError, 500, "InternalError"),
        (grpc.StatusCode.UNKNOWN, errors.InternalError, 500, "InternalError"),
        (grpc.StatusCode.DATA_LOSS, errors.InternalError, 500, "InternalError"),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.InternalError, 500, "InternalError"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.InternalError, 500, "InternalError"),
        (grpc.StatusCode.UNIMPLEMENTED, errors.MethodNotSupportedError, 405, "MethodNotAllowed"),
    ],
)
def test_unary_mapping(
    code: grpc.StatusCode, cls: type[errors.StatusError], http: int, reason: str
) -> None:
    err = from_rpc_error(FakeRpcError(code), target=TARGET, method="ListGpus")
    assert type(err) is cls
    assert (err.code, err.reason, err.grpc_code) == (http, reason, code.name)
    assert err.resource == "gpus.device.nvidia.com"
    assert "server says no" in err.message
    assert str(err) == err.message


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.OUT_OF_RANGE, errors.ExpiredError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ExpiredError),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.BadRequestError),
        (grpc.StatusCode.NOT_FOUND, errors.NotFoundError),
        (grpc.StatusCode.PERMISSION_DENIED, errors.ForbiddenError),
        (grpc.StatusCode.UNAVAILABLE, errors.ServiceUnavailableError),
        (grpc.StatusCode.INTERNAL, errors.InternalError),
    ],
)
def test_watch_mapping(code: grpc.StatusCode, cls: type[errors.StatusError]) -> None:
    err = from_rpc_error(FakeRpcError(code), target=TARGET, watch=True, method="WatchGpus")
    assert type(err) is cls
    assert err.grpc_code == code.name


def test_expired_is_what_makes_an_informer_relist() -> None:
    err = from_rpc_error(
        FakeRpcError(grpc.StatusCode.OUT_OF_RANGE, "too old resource version: 5 (100)"),
        target=TARGET,
        watch=True,
    )
    assert errors.is_expired(err) and errors.is_gone(err) and errors.is_resource_expired(err)
    assert "too old resource version: 5 (100)" in str(err)
    bare = from_rpc_error(FakeRpcError(grpc.StatusCode.OUT_OF_RANGE, None), target=TARGET)
    assert "too old resource version" in str(bare)


def test_a_watch_refused_by_a_full_server_keeps_the_servers_words() -> None:
    err = from_rpc_error(
        FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!"),
        target=TARGET,
        watch=True,
    )
    assert errors.is_expired(err)  # the informer still relists, as the Go watcher does
    assert "Concurrent RPC limit exceeded!" in str(err)
    assert TARGET in str(err)
    assert "expired" not in str(err) and "resource version" not in str(err)


def test_not_found_with_a_name_has_the_kubernetes_message() -> None:
    err = from_rpc_error(
        FakeRpcError(grpc.StatusCode.NOT_FOUND, 'gpu "gpu-9" not found'),
        target=TARGET,
        name="gpu-9",
    )
    assert isinstance(err, errors.NotFoundError)
    assert str(err) == 'gpus.device.nvidia.com "gpu-9" not found'
    assert (err.name, err.grpc_code) == ("gpu-9", "NOT_FOUND")
    assert errors.is_not_found(err)


def test_unavailable_names_the_target_and_the_likely_cause() -> None:
    err = from_rpc_error(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
        target=TARGET,
    )
    assert TARGET in str(err)
    assert "socket may be missing or the server down" in str(err)
    assert "failed to connect to all addresses" in str(err)
    assert errors.is_service_unavailable(err) and errors.is_retriable(err)


def test_deadline_exceeded_says_it_timed_out() -> None:
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED), target=TARGET)
    assert "timed out (DEADLINE_EXCEEDED)" in str(err) and TARGET in str(err)


def test_unimplemented_names_the_method_and_hints_at_the_proto_package() -> None:
    err = from_rpc_error(
        FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "unknown service"),
        target=TARGET,
        method="WatchGpus",
    )
    assert "/nvidia.nvsentinel.v1alpha1.GpuService/WatchGpus" in str(err)
    assert "another version of the API" in str(err)
    assert "nvidia.nvsentinel.v1alpha1" in str(err)


def test_internal_family_carries_the_code_name_in_the_message() -> None:
    for code in ("INTERNAL", "UNKNOWN", "DATA_LOSS", "FAILED_PRECONDITION"):
        err = from_rpc_error(FakeRpcError(grpc.StatusCode[code]), target=TARGET)
        assert f"({code})" in str(err)


def test_resource_exhausted_on_unary_hints_at_the_receive_limit() -> None:
    err = from_rpc_error(
        FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max"),
        target=TARGET,
    )
    assert "max_receive_message_length" in str(err)


def test_an_rpc_error_without_a_code_maps_to_internal_unknown() -> None:
    class Bare(grpc.RpcError):
        pass

    class Broken(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            raise RuntimeError("boom")

        def details(self) -> str:
            raise RuntimeError("boom")

    for raw in (Bare("opaque"), Broken()):
        err = from_rpc_error(raw, target=TARGET)
        assert isinstance(err, errors.InternalError)
        assert err.grpc_code == "UNKNOWN"
    assert code_name(object()) == "UNKNOWN"


def test_empty_details_leave_no_dangling_colon() -> None:
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.ALREADY_EXISTS, ""), target=TARGET, name="g")
    assert str(err) == 'gpus.device.nvidia.com "g" already exists'
