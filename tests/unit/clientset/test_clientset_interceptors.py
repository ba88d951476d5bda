"""The latency-logging and metrics interceptors: levels, fields, order in the chain."""

from __future__ import annotations

import logging
import queue
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers.clientset import Config
from nvinformers.clientset._clientset import (
    channel_options,
    new_channel,
    single_threaded_stream_option,
)
from nvinformers.clientset._interceptors import LatencyLoggingInterceptor, MetricsInterceptor
from nvinformers.clientset._metrics import client_metrics
from nvinformers.clock import FakeClock

from .test_clientset_status import FakeRpcError

METHOD = "/nvidia.nvsentinel.v1alpha1.GpuService/GetGpu"
STREAM = "/nvidia.nvsentinel.v1alpha1.GpuService/WatchGpus"
LOGGER = "test.clientset.interceptors"


class Details(grpc.ClientCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.timeout = None
        self.metadata = None
        self.credentials = None
        self.wait_for_ready = None
        self.compression = None


class Success:
    """What gRPC hands an interceptor for a successful unary call (not an RpcError)."""


class RunningStream:
    def done(self) -> bool:
        return False


class FailedStreamError(FakeRpcError):
    def done(self) -> bool:
        return True


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def unary(
    interceptor: Any, outcome: object, *, clock: FakeClock | None = None, took: float = 0.0
) -> object:
    """One unary call through ``interceptor``; it takes ``took`` seconds of ``clock``."""

    def continuation(details: grpc.ClientCallDetails, request: object) -> object:
        if clock is not None:
            clock.step(took)
        return outcome

    return interceptor.intercept_unary_unary(continuation, Details(METHOD), object())


@pytest.fixture
def latency() -> LatencyLoggingInterceptor:
    return LatencyLoggingInterceptor(logging.getLogger(LOGGER), "unix:///tmp/t.sock")


def test_unary_success_logs_debug_with_structured_fields_and_the_calls_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    clock = FakeClock(start=50.0)
    latency = LatencyLoggingInterceptor(
        logging.getLogger(LOGGER), "unix:///tmp/t.sock", clock=clock
    )
    outcome = Success()
    assert unary(latency, outcome, clock=clock, took=0.25) is outcome  # returned unchanged
    (record,) = records(caplog)
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith("RPC succeeded: method=" + METHOD + " code=OK")
    assert "target=unix:///tmp/t.sock" in record.getMessage()
    assert record.__dict__["grpc_method"] == METHOD
    assert record.__dict__["code"] == "OK"
    assert record.__dict__["target"] == "unix:///tmp/t.sock"
    assert record.__dict__["duration"] == 0.25  # the time the continuation took
    assert "duration=0.250000s" in record.getMessage()


def test_unary_cancellation_logs_at_debug(
    latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    err = FakeRpcError(grpc.StatusCode.CANCELLED, "ctx")
    assert unary(latency, err) is err
    (record,) = records(caplog)
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith("RPC finished with context error")
    assert record.__dict__["code"] == "CANCELLED"
    assert record.__dict__["error"] == "ctx"


ANSWERS = [
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
]
FAILURES = [
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
]


@pytest.mark.parametrize("code", ANSWERS)
def test_answers_about_the_request_log_at_debug_and_start_no_streak(
    code: grpc.StatusCode, latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    err = FakeRpcError(code, "no such thing")
    assert unary(latency, err) is err
    unary(latency, Success())  # no "succeeded again after 1 failed attempt(s)"
    answered, succeeded = records(caplog)
    assert answered.levelno == logging.DEBUG
    assert answered.getMessage().startswith(f"RPC answered with an error: method={METHOD}")
    assert answered.__dict__["code"] == code.name
    assert "error='no such thing'" in answered.getMessage()
    assert succeeded.levelno == logging.DEBUG
    assert succeeded.getMessage().startswith("RPC succeeded:")


@pytest.mark.parametrize("code", FAILURES)
def test_failures_log_at_error(
    code: grpc.StatusCode, latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)  # errors are logged even when debug is off
    err = FakeRpcError(code, "boom")
    assert unary(latency, err) is err
    (record,) = records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(f"RPC failed: method={METHOD} code={code.name}")
    assert "error='boom'" in record.getMessage()
    assert record.__dict__["code"] == code.name


def test_a_failure_streak_is_logged_once_per_state_change(
    latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    for _ in range(5):  # an outage: an informer retrying under backoff
        unary(latency, FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down"))
    unary(latency, FakeRpcError(grpc.StatusCode.INTERNAL, "other"))  # a new state: logged
    unary(latency, Success())
    unary(latency, Success())
    levels = [(r.levelno, r.getMessage().split(":")[0]) for r in records(caplog)]
    assert levels == [
        (logging.ERROR, "RPC failed"),
        (logging.ERROR, "RPC failed"),
        (logging.INFO, "RPC succeeded again after 1 failed attempt(s) (INTERNAL)"),
    ]


def test_an_answer_ends_a_streak_and_does_not_start_one(
    latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    unary(latency, FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down"))
    unary(latency, FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down"))
    unary(latency, FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone"))  # the server is back
    unary(latency, FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone"))
    unary(latency, Success())
    levels = [(r.levelno, r.getMessage().split(":")[0]) for r in records(caplog)]
    assert levels == [
        (logging.ERROR, "RPC failed"),
        (logging.INFO, "RPC answered (NOT_FOUND) again after 2 failed attempt(s) (UNAVAILABLE)"),
    ]


def test_nothing_is_logged_for_success_when_debug_is_off(
    latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    unary(latency, Success())
    unary(latency, FakeRpcError(grpc.StatusCode.CANCELLED))
    assert records(caplog) == []


def test_stream_start_times_establishment_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    clock = FakeClock()
    latency = LatencyLoggingInterceptor(
        logging.getLogger(LOGGER), "unix:///tmp/t.sock", clock=clock
    )
    call = RunningStream()

    def establish(details: grpc.ClientCallDetails, request: object) -> RunningStream:
        clock.step(0.5)
        return call

    result = latency.intercept_unary_stream(establish, Details(STREAM), object())
    clock.step(60.0)  # the stream stays open: not part of the logged duration
    assert result is call
    (record,) = records(caplog)
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith(f"Stream started: method={STREAM} code=OK")
    assert record.__dict__["duration"] == 0.5


def test_stream_already_failed_at_establishment_logs_error(
    latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    call = FailedStreamError(grpc.StatusCode.UNAVAILABLE, "down")
    assert latency.intercept_unary_stream(lambda d, r: call, Details(STREAM), object()) is call
    (record,) = records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("Stream establishment failed")


def test_a_stream_that_starts_ends_its_streak_so_the_next_outage_logs_error(
    latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    def stream(outcome: object) -> None:
        latency.intercept_unary_stream(lambda d, r: outcome, Details(STREAM), object())

    stream(FailedStreamError(grpc.StatusCode.UNAVAILABLE, "down"))
    stream(FailedStreamError(grpc.StatusCode.UNAVAILABLE, "down"))
    stream(RunningStream())  # the server is back: the watch starts
    stream(FailedStreamError(grpc.StatusCode.UNAVAILABLE, "down"))  # a new outage
    levels = [(r.levelno, r.getMessage().split(":")[0]) for r in records(caplog)]
    assert levels == [
        (logging.ERROR, "Stream establishment failed"),
        (logging.INFO, "Stream started again after 2 failed attempt(s) (UNAVAILABLE)"),
        (logging.ERROR, "Stream establishment failed"),
    ]


def test_stream_establishment_raising_is_logged_and_reraised(
    latency: LatencyLoggingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    err = FakeRpcError(grpc.StatusCode.CANCELLED, "stop")

    def continuation(details: grpc.ClientCallDetails, request: object) -> object:
        raise err

    with pytest.raises(FakeRpcError):
        latency.intercept_unary_stream(continuation, Details(STREAM), object())
    (record,) = records(caplog)
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith("Stream establishment canceled")


def test_metrics_interceptor_counts_and_times_unary_calls() -> None:
    registry = CollectorRegistry()
    clock = FakeClock()
    interceptor = MetricsInterceptor(client_metrics(registry), clock=clock)
    unary(interceptor, Success(), clock=clock, took=0.25)
    unary(interceptor, Success(), clock=clock, took=0.5)
    unary(interceptor, FakeRpcError(grpc.StatusCode.NOT_FOUND), clock=clock, took=2.0)
    sample = registry.get_sample_value
    assert sample("nvinformers_client_requests_total", {"method": "GetGpu", "code": "OK"}) == 2
    assert (
        sample("nvinformers_client_requests_total", {"method": "GetGpu", "code": "NOT_FOUND"}) == 1
    )
    assert sample("nvinformers_client_request_duration_seconds_count", {"method": "GetGpu"}) == 3
    assert sample("nvinformers_client_request_duration_seconds_sum", {"method": "GetGpu"}) == 2.75


def test_metrics_interceptor_times_streams_but_leaves_the_count_to_the_watch() -> None:
    registry = CollectorRegistry()
    interceptor = MetricsInterceptor(client_metrics(registry))
    interceptor.intercept_unary_stream(lambda d, r: RunningStream(), Details(STREAM), object())
    sample = registry.get_sample_value
    assert sample("nvinformers_client_request_duration_seconds_count", {"method": "WatchGpus"}) == 1
    assert (
        sample("nvinformers_client_requests_total", {"method": "WatchGpus", "code": "OK"}) is None
    )

    def failing(details: grpc.ClientCallDetails, request: object) -> object:
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)

    with pytest.raises(FakeRpcError):
        interceptor.intercept_unary_stream(failing, Details(STREAM), object())
    assert (
        sample("nvinformers_client_requests_total", {"method": "WatchGpus", "code": "UNAVAILABLE"})
        == 1
    )


# -- the chain, on a real channel to a socket that does not exist (fails fast, UNAVAILABLE) -------


class Recorder(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """A user interceptor that logs after its continuation returns and snapshots the metrics."""

    def __init__(self, name: str, registry: CollectorRegistry, seen: list[str]) -> None:
        self.name = name
        self.registry = registry
        self.seen = seen

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        self.seen.append(f"{self.name}:before")
        outcome = continuation(details, request)
        count = self.registry.get_sample_value(
            "nvinformers_client_requests_total", {"method": "GetGpu", "code": "UNAVAILABLE"}
        )
        self.seen.append(f"{self.name}:after:count={count}")
        logging.getLogger(LOGGER).error("user interceptor %s done", self.name)
        return outcome

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        self.seen.append(f"{self.name}:stream")
        return continuation(details, request)


@pytest.fixture
def missing_socket() -> str:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-ic-")
    return f"unix://{Path(directory) / 'absent.sock'}"


def test_latency_interceptor_is_outermost_then_metrics_then_user_interceptors_in_order(
    missing_socket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    registry = CollectorRegistry()
    seen: list[str] = []
    first, second = Recorder("first", registry, seen), Recorder("second", registry, seen)
    config = Config(
        target=missing_socket,
        logger=logging.getLogger(LOGGER),
        metrics_registry=registry,
        unary_interceptors=(first, second),
        stream_interceptors=(first,),  # given twice: applied once
    )
    channel = new_channel(config)
    try:
        call: grpc.UnaryUnaryMultiCallable[object, bytes] = channel.unary_unary(
            METHOD, request_serializer=lambda _: b""
        )
        with pytest.raises(grpc.RpcError) as info:
            call(object(), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()
    # User interceptors run in order, inside the metrics interceptor (not yet counted) ...
    assert seen == [
        "first:before",
        "second:before",
        "second:after:count=None",
        "first:after:count=None",
    ]
    # ... and the latency interceptor logs last: it is the outermost.
    messages = [r.getMessage() for r in records(caplog)]
    assert messages[:2] == ["user interceptor second done", "user interceptor first done"]
    assert messages[2].startswith("RPC failed: method=" + METHOD + " code=UNAVAILABLE")
    assert len(messages) == 3
    assert (
        registry.get_sample_value(
            "nvinformers_client_requests_total", {"method": "GetGpu", "code": "UNAVAILABLE"}
        )
        == 1
    )


def test_a_new_channel_does_not_connect_before_the_first_call(missing_socket: str) -> None:
    channel = new_channel(Config(target=missing_socket, metrics_registry=CollectorRegistry()))
    states: queue.Queue[grpc.ChannelConnectivity] = queue.Queue()
    try:
        # Reports the current state without asking for a connection: a channel that had
        # started connecting (to a socket that is not there) would not be IDLE.
        channel.subscribe(states.put, try_to_connect=False)
        assert states.get(timeout=10) is grpc.ChannelConnectivity.IDLE
    finally:
        channel.close()


def test_channel_options() -> None:
    options = dict(channel_options(Config(user_agent="ua/1", keepalive_time=1.5)))
    assert options["grpc.primary_user_agent"] == "ua/1"
    assert options["grpc.keepalive_time_ms"] == 1500
    assert options["grpc.keepalive_timeout_ms"] == 20000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_pings_without_data"] == 0
    # gRPC's default (120 s) would hide a restarted node-local server for up to two minutes.
    assert options["grpc.max_reconnect_backoff_ms"] == 5000
    assert options["grpc.max_receive_message_length"] == 256 << 20
    key = single_threaded_stream_option()
    assert key is not None  # the pinned grpcio has it
    assert options[key] == 1
    assert key not in dict(channel_options(Config(single_threaded_streams=False)))


def test_missing_single_threaded_option_falls_back_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from nvinformers.clientset import _clientset as channel_module

    monkeypatch.setattr(channel_module, "single_threaded_stream_option", lambda: None)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    options = channel_module.channel_options(Config(logger=logging.getLogger(LOGGER)))
    assert not any("SingleThreaded" in key for key, _ in options)
    (record,) = records(caplog)
    assert record.levelno == logging.DEBUG
    assert "SingleThreadedUnaryStream is not available" in record.getMessage()
