"""Wire values in Python: protobuf Timestamps and serialized ``Gpu`` bytes.

:func:`ts_to_datetime` and :func:`set_ts` convert between ``google.protobuf.Timestamp`` and aware
UTC datetimes (a timestamp outside protobuf's range reads as None, so reading a cached object never
fails); :func:`rfc3339` prints a datetime as Kubernetes prints ``metav1.Time``. :func:`decode_gpu`
parses serialized ``Gpu`` bytes and turns a protobuf ``DecodeError`` into
:class:`~nvinformers.errors.MalformedObjectError` (:func:`malformed_gpu`).

Building GPU views from wire bytes (``gpu_from_wire``) stays with the views in
:mod:`nvinformers.api.device.v1alpha1._types`: ``GPU.from_bytes`` is built on it, and this module
must not import the views it serves.

Thread-safety: pure functions; no shared state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.errors import MalformedObjectError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: protobuf's valid Timestamp range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
_TS_MIN_SECONDS = -62135596800
_TS_MAX_SECONDS = 253402300799


def ts_to_datetime(ts: Timestamp) -> datetime | None:
    """The timestamp as an aware UTC datetime (microsecond precision, truncated).

    A value outside protobuf's valid range (which a hostile or buggy server can still put on
    the wire) reads as None instead of raising: reading a cached object never fails.
    """
    seconds, nanos = ts.seconds, ts.nanos
    if not (_TS_MIN_SECONDS <= seconds <= _TS_MAX_SECONDS) or not (0 <= nanos < 1_000_000_000):
        return None
    # Integer arithmetic: seconds + nanos / 1e9 as a float rounds up at the range's end.
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def set_ts(ts: Timestamp, value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware datetimes, got naive {value!r}")
    ts.FromDatetime(value.astimezone(UTC))


def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 with second precision, as Kubernetes prints ``metav1.Time`` (years zero-padded:
    ``strftime("%Y")`` is not, for years before 1000)."""
    if value is None:
        return None
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


def malformed_gpu(exc: DecodeError) -> MalformedObjectError:
    return MalformedObjectError(f"malformed GPU object from the server: {exc}")


def decode_gpu(raw: bytes) -> pb.Gpu:
    try:
        return pb.Gpu.FromString(raw)
    except DecodeError as exc:
        raise malformed_gpu(exc) from exc
