"""Property tests (hypothesis) for the three parsers that take input from outside the process:
label selectors, gRPC targets, and GPU objects off the wire (single objects, list items, watch
streams).

They extend the fuzzing that lives next to each parser: tests/unit/test_labels.py fuzzes the
selector parser over a small token alphabet and matching against a reference;
tests/unit/clientset/test_clientset_target.py feeds arbitrary text to the target parser. Here:
arbitrary Unicode selectors and generated valid ones with arbitrary spacing; generated valid
targets and corrupted ones; and the whole proto → GPU path, which had no property test.

Contract checked everywhere: every input either parses into a value that round-trips, or raises
the one documented error type with a message naming the input; nothing else escapes.
"""

from __future__ import annotations

import json
import logging
import pickle
import string
from datetime import UTC, datetime
from typing import Any, cast

import grpc
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import API_VERSION, GPU, KIND, wire_pb2
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.clientset import GPUClient, parse_target
from nvinformers.clientset._metrics import client_metrics
from nvinformers.clientset._target import MAX_UNIX_PATH_BYTES
from nvinformers.errors import InternalError, MalformedObjectError
from nvinformers.labels import Operator, Requirement, Selector, SelectorParseError
from nvinformers.watch import EventType
from tests.unit.clientset.test_clientset_watch_adapter import ScriptedCall, make, message

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
REGISTRY = CollectorRegistry()  # client metrics are registered once and shared by every example

# ---------------------------------------------------------------------------- label selectors


@FUZZ
@given(st.text(max_size=120))
def test_any_text_is_a_selector_that_round_trips_or_a_selector_parse_error(text: str) -> None:
    failure: SelectorParseError | None = None
    try:
        sel = labels.parse(text)
    except SelectorParseError as err:
        failure = err
    if failure is not None:
        assert failure.selector == text
        assert 0 <= failure.position <= len(text)
        assert str(failure).startswith("invalid label selector ")
        return
    assert labels.parse(str(sel)) == sel


_ALNUM = string.ascii_letters + string.digits
_dns_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_prefix = st.lists(_dns_label, min_size=1, max_size=3).map(".".join)
_name = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)
_key = st.one_of(_name, st.tuples(_prefix, _name).map("/".join))
_value = st.one_of(st.just(""), _name)
_space = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _requirement_and_text(draw: st.DrawFn, key: str) -> tuple[Requirement, str]:
    """A valid requirement on ``key`` and one way of writing it, spaced arbitrarily."""
    op = draw(st.sampled_from(list(Operator)))

    def sp() -> str:
        return draw(_space)

    if op in (Operator.IN, Operator.NOT_IN):
        # Non-empty values: empty ones in a set have Kubernetes' quirky comma rules
        # ("(,)" is {""}, "(,,)" is an error), which tests/unit/test_labels.py pins down.
        values = draw(st.lists(_name, min_size=1, max_size=3, unique=True))
        inner = f"{sp()},{sp()}".join(values)
        text = f"{key} {sp()}{op.value}{sp()} ({sp()}{inner}{sp()})"
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        values = [str(draw(st.integers(0, 10**6)))]
        text = f"{key}{sp()}{'>' if op is Operator.GREATER_THAN else '<'}{sp()}{values[0]}"
    elif op is Operator.EXISTS:
        values, text = [], key
    elif op is Operator.DOES_NOT_EXIST:
        values, text = [], f"!{sp()}{key}"
    else:
        values = [draw(_value)]
        text = f"{key}{sp()}{op.value}{sp()}{values[0]}"
    return Requirement(key, op, values), text


@FUZZ
@given(st.data(), st.lists(_key, min_size=1, max_size=4, unique=True))
def test_generated_valid_selectors_parse_whatever_the_spacing_and_order(
    data: st.DataObject, keys: list[str]
) -> None:
    pairs = [data.draw(_requirement_and_text(key)) for key in keys]
    order = data.draw(st.permutations(pairs))
    text = data.draw(_space).join(f"{t}{data.draw(_space)}," for _, t in order).rstrip(" \t,")
    expected = Selector([r for r, _ in pairs])
    parsed = labels.parse(text)
    assert parsed == expected, text
    assert labels.parse(str(parsed)) == expected


# ------------------------------------------------------------------------------- gRPC targets

_segment = st.text(alphabet=_ALNUM + "._-", min_size=1, max_size=20)
_abs_path = st.lists(_segment, min_size=1, max_size=6).map(lambda s: "/" + "/".join(s))
_hostname = st.lists(_dns_label, min_size=1, max_size=3).map(".".join)
_ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
_port = st.integers(1, 65535).map(str)


@FUZZ
@given(_abs_path, st.sampled_from(["unix://", "unix:"]))
def test_valid_unix_targets_parse_to_their_socket_path(path: str, scheme: str) -> None:
    assume(len(path.encode()) <= MAX_UNIX_PATH_BYTES)
    target = parse_target(scheme + path)
    assert (target.kind, target.path, target.address) == ("unix", path, f"unix://{path}")
    assert parse_target(target.address) == parse_target(target.address)  # a fixed point
    assert parse_target(target.address).address == target.address


@FUZZ
@given(_abs_path)
def test_unix_paths_beyond_the_kernel_limit_are_refused_with_their_length(path: str) -> None:
    long_path = path + "/" + "x" * (MAX_UNIX_PATH_BYTES + 1 - len(path.encode()))
    with pytest.raises(ValueError, match=rf"{len(long_path.encode())} bytes long"):
        parse_target("unix://" + long_path)


@FUZZ
@given(
    st.one_of(_hostname, _ipv4, _ipv6),
    _port,
    st.sampled_from(["", "dns:///", "dns:", "passthrough:///"]),
)
def test_valid_network_targets_parse_as_tcp(host: str, port: str, scheme: str) -> None:
    target = parse_target(f"{scheme}{host}:{port}")
    assert target.kind == "tcp" and target.path is None
    assert target.address.endswith(f"{host}:{port}")
    assert parse_target(target.address).address == target.address


@FUZZ
@given(
    st.one_of(_abs_path.map(lambda p: "unix://" + p), st.tuples(_hostname, _port).map(":".join)),
    st.data(),
    st.sampled_from([" ", "\t", "\n", "\x00", "\x7f", "\u2028"]),
)
def test_a_valid_target_with_a_space_or_control_character_is_refused_naming_it(
    valid: str, data: st.DataObject, bad: str
) -> None:
    at = data.draw(st.integers(0, len(valid)))
    corrupted = valid[:at] + bad + valid[at:]
    with pytest.raises(ValueError) as info:
        parse_target(corrupted)
    assert repr(corrupted) in str(info.value)


# -------------------------------------------------------------------------- proto → GPU objects


def _read_everything(gpu: GPU) -> None:
    """Read every field, timestamps and the JSON form included: none of it may raise."""
    meta = gpu.metadata
    created = meta.creation_timestamp
    assert created is None or created.tzinfo is UTC
    assert isinstance(meta.name, str) and isinstance(meta.namespace, str)
    assert isinstance(meta.resource_version, str) and isinstance(meta.uid, str)
    assert isinstance(meta.generation, int)
    assert dict(meta.labels) == dict(meta.to_proto().labels)
    assert dict(meta.annotations) == dict(meta.to_proto().annotations)
    assert isinstance(gpu.spec.uuid, str)
    status = gpu.status
    assert isinstance(status.recommended_action, str)
    for cond in status.conditions:
        assert isinstance(cond.type, str) and isinstance(cond.status, str)
        assert isinstance(cond.reason, str) and isinstance(cond.observed_generation, int)
        changed = cond.last_transition_time
        assert changed is None or changed.tzinfo is UTC
    json.dumps(gpu.to_dict())
    assert repr(gpu)
    assert pickle.loads(pickle.dumps(gpu)) == gpu
    assert GPU.from_bytes(gpu.to_bytes()) == gpu
    assert GPU.from_proto(gpu.to_proto()) == gpu
    with pytest.raises(AttributeError):
        setattr(gpu, "spec", None)  # noqa: B010  (what a careless caller would do)


_VALID = GPU.new(
    "gpu-7",
    uuid="GPU-00000000-1111-2222-3333-444444444444",
    resource_version="42",
    labels={"nvidia.com/gpu.index": "7"},
).to_bytes()


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_gpu_or_a_malformed_object_error(raw: bytes) -> None:
    failure: MalformedObjectError | None = None
    try:
        gpu = GPU.from_bytes(raw)
    except MalformedObjectError as err:
        failure = err
    if failure is not None:
        assert "malformed GPU object" in str(failure)
        return
    assert gpu.to_bytes() == raw
    _read_everything(gpu)


@FUZZ
@given(st.data())
def test_corrupted_gpu_bytes_are_a_gpu_or_a_malformed_object_error(data: st.DataObject) -> None:
    raw = bytearray(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif action == "drop":
            del raw[at]
        else:
            raw.insert(at, data.draw(st.integers(0, 255)))
    try:
        gpu = GPU.from_bytes(bytes(raw))
    except MalformedObjectError:
        return
    _read_everything(gpu)


_text = st.text(max_size=16)
_label_map = st.dictionaries(_text, _text, max_size=4)
# protobuf's whole valid Timestamp range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_TS_MIN = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
_TS_MAX = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
_seconds = st.integers(_TS_MIN, _TS_MAX)
_nanos = st.integers(0, 999_999_999)


@st.composite
def _gpu_messages(draw: st.DrawFn) -> pb.Gpu:
    msg = pb.Gpu()
    meta = msg.object_meta
    meta.name = draw(_text)
    if draw(st.booleans()):
        meta.namespace = draw(_text)
    meta.resource_version = draw(_text)
    meta.uid = draw(_text)
    meta.generation = draw(st.integers(-(2**63), 2**63 - 1))
    if draw(st.booleans()):
        meta.creation_timestamp.seconds = draw(_seconds)
        meta.creation_timestamp.nanos = draw(_nanos)
    meta.labels.update(draw(_label_map))
    meta.annotations.update(draw(_label_map))
    if draw(st.booleans()):
        msg.spec.uuid = draw(_text)
    for _ in range(draw(st.integers(0, 3))):
        cond = msg.status.conditions.add()
        cond.type = draw(_text)
        cond.status = draw(st.sampled_from(["True", "False", "Unknown", ""]))
        cond.reason, cond.message = draw(_text), draw(_text)
        cond.observed_generation = draw(st.integers(-(2**63), 2**63 - 1))
        if draw(st.booleans()):
            cond.last_transition_time.seconds = draw(_seconds)
            cond.last_transition_time.nanos = draw(_nanos)
    if draw(st.booleans()):
        msg.status.recommended_action = draw(_text)
    return msg


@FUZZ
@given(_gpu_messages())
def test_any_gpu_message_converts_to_an_equal_immutable_gpu_and_back(msg: pb.Gpu) -> None:
    gpu = GPU.from_proto(msg)
    expected = pb.Gpu()
    expected.CopyFrom(msg)
    expected.type_meta.kind, expected.type_meta.api_version = KIND, API_VERSION
    assert gpu.to_proto() == expected
    meta = gpu.metadata
    assert (meta.name, meta.namespace, meta.resource_version) == (
        msg.object_meta.name,
        msg.object_meta.namespace,
        msg.object_meta.resource_version,
    )
    assert meta.labels == dict(msg.object_meta.labels)
    if msg.object_meta.HasField("creation_timestamp"):
        ts = msg.object_meta.creation_timestamp
        assert meta.creation_timestamp is not None
        assert abs(meta.creation_timestamp.timestamp() - (ts.seconds + ts.nanos / 1e9)) < 1e-3
    conditions = gpu.status.conditions
    assert [(c.type, c.status, c.reason) for c in conditions] == [
        (c.type, c.status, c.reason) for c in msg.status.conditions
    ]
    for cond in conditions:
        assert cond.last_transition_time is None or cond.last_transition_time.tzinfo is UTC
    as_dict = gpu.to_dict()
    assert as_dict["kind"] == KIND and as_dict["metadata"]["name"] == msg.object_meta.name
    json.dumps(as_dict)  # the Kubernetes JSON form is JSON
    _read_everything(gpu)


def _with_creation_timestamp(seconds: int, nanos: int = 0) -> GPU:
    msg = pb.Gpu()
    msg.object_meta.name = "gpu-0"
    msg.object_meta.creation_timestamp.seconds = seconds
    msg.object_meta.creation_timestamp.nanos = nanos
    return GPU.from_bytes(msg.SerializeToString())


# Regression tests for bugs the fuzzing found (issue 6): out-of-range timestamps used to be
# accepted and then raise when read; the largest valid one raised ("year 10000 is out of range",
# float rounding); years below 1000 were not zero-padded in to_dict().


@pytest.mark.parametrize("seconds", [2**62, -(2**40), _TS_MAX + 1, _TS_MIN - 1])
def test_an_out_of_range_timestamp_is_rejected_or_readable(seconds: int) -> None:
    try:
        gpu = _with_creation_timestamp(seconds)
    except MalformedObjectError:
        return  # rejecting it on receipt is as good as reading it
    _read_everything(gpu)


@pytest.mark.parametrize("nanos", [-1, 1_000_000_000])
def test_out_of_range_nanoseconds_are_rejected_or_readable(nanos: int) -> None:
    try:
        gpu = _with_creation_timestamp(0, nanos)
    except MalformedObjectError:
        return
    _read_everything(gpu)


def test_the_largest_valid_timestamp_is_readable() -> None:
    gpu = _with_creation_timestamp(_TS_MAX, 999_999_999)
    created = gpu.metadata.creation_timestamp
    assert created is not None
    assert (created.year, created.month, created.day, created.second) == (9999, 12, 31, 59)
    assert gpu.to_dict()["metadata"]["creationTimestamp"] == "9999-12-31T23:59:59Z"


def test_to_dict_timestamps_are_rfc3339_for_every_year() -> None:
    gpu = _with_creation_timestamp(_TS_MIN)
    assert gpu.to_dict()["metadata"]["creationTimestamp"] == "0001-01-01T00:00:00Z"


# --------------------------------------------------------- the clientset's receive paths


_payload = st.one_of(
    st.none(),
    st.just(_VALID),
    st.just(GPU.new("", resource_version="9").to_bytes()),
    st.binary(max_size=40),
)
_event_type = st.one_of(
    st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", ""]), st.text(max_size=8)
)


@FUZZ
@given(st.lists(st.tuples(_event_type, _payload), max_size=8))
def test_any_watch_stream_yields_valid_events_or_ends_with_a_status_error(
    messages: list[tuple[str, bytes | None]],
) -> None:
    call = ScriptedCall(*[message(t, p) for t, p in messages])
    watch = make(call, REGISTRY)
    logging.getLogger("test.clientset.watch").disabled = True  # unknown types warn; not here
    try:
        while True:
            try:
                event = next(watch)
            except StopIteration:
                break
            except (MalformedObjectError, InternalError):
                assert watch.done and next(watch, None) is None
                assert call.cancelled == 1  # the stream is abandoned, not drained
                break
            assert isinstance(event.object, GPU)
            assert event.type in tuple(EventType)
            if event.type is not EventType.BOOKMARK:
                assert event.object.metadata.name
    finally:
        logging.getLogger("test.clientset.watch").disabled = False


class _OneResponseChannel:
    """Just enough of a grpc.Channel for GPUClient: every unary call answers ``payload``."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def unary_unary(
        self, method: str, request_serializer: Any, response_deserializer: Any = None
    ) -> Any:
        assert response_deserializer is None  # the SDK decodes responses itself
        return lambda request, timeout=None: self.payload

    def unary_stream(
        self, method: str, request_serializer: Any, response_deserializer: Any = None
    ) -> Any:
        return lambda request: iter(())


@FUZZ
@given(st.lists(_payload.filter(lambda p: p is not None), max_size=6), st.text(max_size=8))
def test_any_list_response_is_a_gpu_list_or_a_malformed_object_error(
    items: list[bytes], revision: str
) -> None:
    response = wire_pb2.RawListGpusResponse(
        gpu_list=wire_pb2.RawGpuList(
            items=items, list_meta=wire_pb2.RawListMeta(resource_version=revision)
        )
    )
    client = GPUClient(
        cast("grpc.Channel", _OneResponseChannel(response.SerializeToString())),
        target="unix:///tmp/fuzz.sock",
        logger=logging.getLogger("test.fuzz"),
        metrics=client_metrics(REGISTRY),
    )
    failure: MalformedObjectError | None = None
    try:
        result = client.list()
    except MalformedObjectError as err:
        failure = err
    if failure is not None:
        assert "ListGpus response from unix:///tmp/fuzz.sock" in str(failure)
        return
    assert result.metadata.resource_version == revision
    assert [g.to_bytes() for g in result.items] == items
    assert all(g.metadata.name for g in result.items)


@FUZZ
@given(st.binary(max_size=64))
def test_any_list_response_bytes_are_a_gpu_list_or_a_malformed_object_error(data: bytes) -> None:
    """Whatever bytes the server answers ListGpus with, the SDK returns a list or raises
    MalformedObjectError naming the method and the target (issue 10: gRPC's deserializer used
    to log a traceback and raise an anonymous INTERNAL error)."""
    client = GPUClient(
        cast("grpc.Channel", _OneResponseChannel(data)),
        target="unix:///tmp/fuzz.sock",
        logger=logging.getLogger("test.fuzz"),
        metrics=client_metrics(REGISTRY),
    )
    failure: MalformedObjectError | None = None
    try:
        client.list()
    except MalformedObjectError as err:
        failure = err
    if failure is not None:
        assert "ListGpus response" in str(failure) and "unix:///tmp/fuzz.sock" in str(failure)
