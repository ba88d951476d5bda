"""Benchmark fixtures: realistic GPU objects and pre-serialized Device API responses.

Every figure that needs GPUs builds them here, so all figures measure the same object: a GPU
with a uid, a generation, a creation timestamp, three labels and three status conditions, about
500 bytes on the wire (the issue's "510-byte event").

Building 100,000 distinct GPUs through ``GPU.new`` would take seconds; instead one message per
GPU *shape* is serialized with a placeholder resource version and the placeholder's bytes are
swapped for the real revision (revisions are fixed-width decimal integers, so the message length
never changes). The result is byte-for-byte what serializing the message with that revision gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from nvinformers.api.device.v1alpha1 import API_VERSION, KIND, LIST_KIND
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb

__all__ = [
    "RV_BASE",
    "LABEL_KEY",
    "gpu_message",
    "gpu_bytes",
    "GpuTemplates",
    "frame",
    "list_response",
    "watch_response",
]

#: First resource version handed out: revisions are 10-digit decimals from here on.
RV_BASE = 1_000_000_000
_RV_PLACEHOLDER = b"9999999999"
#: The label every benchmark GPU carries, with 10 distinct values (``rack-0`` .. ``rack-9``).
LABEL_KEY = "example.com/rack"
_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _ids(index: int) -> tuple[str, str, str, str]:
    """Per-GPU strings, fixed width so that every GPU serializes to the same length."""
    return (
        f"gpu-{index:06d}",
        f"{index:08x}-5d1e-4c7a-9b1f-{index * 7919 % 10**12:012x}",
        f"GPU-{index:08x}-2c4e-4f1a-8b3d-{index * 104729 % 10**12:012x}",
        f"rack-{index % 10}",
    )


def gpu_message(index: int, resource_version: int, *, ready: bool = True) -> pb.Gpu:
    """A realistic ``Gpu`` message (about 500 bytes serialized), named ``gpu-000123``."""
    name, uid, uuid, rack = _ids(index)
    msg = pb.Gpu()
    msg.type_meta.kind = KIND
    msg.type_meta.api_version = API_VERSION
    meta = msg.object_meta
    meta.name = name
    meta.resource_version = str(resource_version)
    meta.uid = uid
    meta.generation = 1
    meta.creation_timestamp.FromDatetime(_T0)
    meta.labels["nvidia.com/gpu.index"] = str(index % 8)
    meta.labels["nvidia.com/gpu.product"] = "NVIDIA-H100-80GB-HBM3"
    meta.labels[LABEL_KEY] = rack
    msg.spec.uuid = uuid
    for ctype, status, reason, message in (
        (
            "Ready",
            "True" if ready else "False",
            "DriverReady" if ready else "DriverNotReady",
            "driver loaded, device responsive" if ready else "driver reports the device lost!",
        ),
        ("MemoryHealthy", "True", "NoECCErrors", "no uncorrectable ECC errors in the last hour"),
        ("ThermalNormal", "True", "WithinLimits", "GPU temperature 54C, below the slowdown limit"),
    ):
        cond = msg.status.conditions.add()
        cond.type = ctype
        cond.status = status
        cond.reason = reason
        cond.message = message
        cond.observed_generation = 1
        cond.last_transition_time.FromDatetime(_T0)
    return msg


def gpu_bytes(index: int, resource_version: int, *, ready: bool = True) -> bytes:
    """``gpu_message(...).SerializeToString()``."""
    return gpu_message(index, resource_version, ready=ready).SerializeToString()


# Placeholders: a GPU is serialized once per Ready state with these in place of its name, uid,
# uuid, rack label, GPU index label and resource version, then rebuilt for any index by joining
# the bytes between the placeholders with the real (same-length) values.
_PLACEHOLDER_INDEX = 999_999


class GpuTemplates:
    """Serialized GPUs ``gpu-000000`` .. ``gpu-(count-1)`` at any 10-digit revision, fast.

    ``gpu(i, rv)`` returns exactly ``gpu_bytes(i % count, rv)``, in about a microsecond.

    Args:
        count: distinct GPUs.
    """

    def __init__(self, count: int) -> None:
        if not 1 <= count <= _PLACEHOLDER_INDEX:
            raise ValueError(f"count must be in 1..{_PLACEHOLDER_INDEX}, got {count}")
        self._count = count
        self._segments: dict[bool, list[bytes]] = {}
        self._order: list[int] = []
        for ready in (True, False):
            self._segments[ready], self._order = self._split(ready)

    @staticmethod
    def _split(ready: bool) -> tuple[list[bytes], list[int]]:
        """The bytes between the placeholders, and which value goes into each gap."""
        raw = gpu_bytes(_PLACEHOLDER_INDEX, int(_RV_PLACEHOLDER), ready=ready)
        tokens = [t.encode() for t in _ids(_PLACEHOLDER_INDEX)] + [_RV_PLACEHOLDER]
        # The GPU-index label value of the placeholder GPU is str(999999 % 8) = "7", one byte:
        # too short to find reliably, so it is located through its label key instead.
        index_key = b"nvidia.com/gpu.index"
        at = raw.index(index_key) + len(index_key)
        positions = []
        for token in tokens:
            if raw.count(token) != 1:
                raise AssertionError(f"placeholder {token!r} is not unique in the template")
            positions.append((raw.index(token), len(token)))
        # key, then field 2 tag (0x12), length 1, value byte
        if raw[at : at + 2] != b"\x12\x01":
            raise AssertionError("unexpected encoding of the GPU index label")
        positions.append((at + 2, 1))
        order = sorted(range(len(positions)), key=lambda k: positions[k][0])
        segments: list[bytes] = []
        cursor = 0
        for k in order:
            start, length = positions[k]
            segments.append(raw[cursor:start])
            cursor = start + length
        segments.append(raw[cursor:])
        return segments, order

    def gpu(self, index: int, resource_version: int, *, ready: bool = True) -> bytes:
        """GPU ``index % count`` at ``resource_version`` (10 digits)."""
        if not RV_BASE <= resource_version < 10 * RV_BASE:
            raise ValueError(f"resource version {resource_version} is not 10 digits")
        index %= self._count
        name, uid, uuid, rack = _ids(index)
        values = (name, uid, uuid, rack, str(resource_version), str(index % 8))
        segments = self._segments[ready]
        parts = [segments[0]]
        for gap, k in enumerate(self._order):
            parts.append(values[k].encode())
            parts.append(segments[gap + 1])
        return b"".join(parts)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


_LIST_TYPE_META = pb.TypeMeta(kind=LIST_KIND, api_version=API_VERSION).SerializeToString()


def list_response(items: list[bytes], resource_version: int) -> bytes:
    """A serialized ``ListGpusResponse`` holding ``items`` (serialized Gpus)."""
    list_meta = _field(1, str(resource_version).encode())
    body = b"".join(
        [_field(1, _LIST_TYPE_META), _field(2, list_meta)] + [_field(3, i) for i in items]
    )
    return _field(1, body)


def watch_response(event_type: str, obj: bytes) -> bytes:
    """A serialized ``WatchGpusResponse``."""
    return _field(1, event_type.encode()) + _field(2, obj)


def modified_events(templates: GpuTemplates, count: int, first_rv: int) -> Iterator[bytes]:
    """``count`` MODIFIED events cycling over the templates' GPUs, revisions from ``first_rv``."""
    gpus = templates._count
    for j in range(count):
        yield watch_response("MODIFIED", templates.gpu(j % gpus, first_rv + j, ready=j % 2 == 0))
