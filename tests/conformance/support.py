"""Helpers of the conformance suite: writing through the generated stubs, reading watches.

:class:`Writer` changes the server only through the write RPCs of ``GpuService`` (the generated
stub), never through a fake's Python API, so every test works against any server. Objects are
named ``<prefix>-<suffix>`` with a prefix unique to the test, and labelled with the run and the
test, so that tests never see each other's objects, even on a server that keeps state between
runs. Observation goes through the SDK (:class:`WatchLog` reads an SDK watch on a thread).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import grpc

from nvinformers.api.device.v1alpha1 import GPU, gpu_pb2_grpc
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.watch import Event, EventType
from nvinformers.watch import Interface as WatchInterface

__all__ = [
    "RUN_LABEL",
    "CASE_LABEL",
    "WRITE_TIMEOUT",
    "Writer",
    "WatchLog",
    "rv",
    "rpc_code",
    "wait_until",
]

RUN_LABEL = "conformance.nvinformers.io/run"
CASE_LABEL = "conformance.nvinformers.io/case"
#: Deadline of one write RPC; writes wait for the channel to be ready (after a server restart).
WRITE_TIMEOUT = 30.0


def rv(obj: GPU | pb.Gpu) -> int:
    """An object's resource version as an int (the Device API's are decimal revisions)."""
    text = (
        obj.metadata.resource_version if isinstance(obj, GPU) else obj.object_meta.resource_version
    )
    return int(text)


def rpc_code(call: Callable[[], object]) -> grpc.StatusCode | None:
    """The status code ``call`` fails with, None when it succeeds."""
    try:
        call()
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()
        return code
    return None


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds; False after ``timeout`` seconds.

    For conditions on a remote server, which cannot notify the test.
    """
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        pause.wait(interval)


class Writer:
    """Writes GPUs through the generated ``GpuService`` stub; remembers what to clean up.

    Args:
        channel: a channel to the server under test.
        run_id: the run's id (label value).
        case_id: the test's id (label value and name prefix).
    """

    def __init__(self, channel: grpc.Channel, run_id: str, case_id: str) -> None:
        self.stub = gpu_pb2_grpc.GpuServiceStub(channel)
        self.run_id = run_id
        self.case_id = case_id
        self.prefix = f"cf-{run_id}-{case_id}"
        self._created: list[str] = []

    @property
    def selector(self) -> str:
        """A label selector matching exactly this test's objects."""
        return f"{CASE_LABEL}={self.prefix}"

    def name(self, suffix: str) -> str:
        """The full name of this test's object ``suffix``."""
        return f"{self.prefix}-{suffix}"

    def owns(self, name: str) -> bool:
        """True for a name this test made."""
        return name.startswith(self.prefix + "-")

    def _call(self, method: Callable[..., Any], request: object) -> Any:
        return method(request, timeout=WRITE_TIMEOUT, wait_for_ready=True)

    def create(
        self,
        suffix: str,
        *,
        labels: Mapping[str, str] | None = None,
        uuid: str | None = None,
        namespace: str | None = None,
        status: pb.GpuStatus | None = None,
    ) -> pb.Gpu:
        """``CreateGpu`` (then ``UpdateGpuStatus`` when ``status`` is given: servers may drop
        status on create). Returns the server's object after the last write."""
        msg = pb.Gpu()
        msg.object_meta.name = self.name(suffix)
        if namespace is not None:
            msg.object_meta.namespace = namespace
        msg.object_meta.labels[RUN_LABEL] = self.run_id
        msg.object_meta.labels[CASE_LABEL] = self.prefix
        msg.object_meta.labels.update(labels or {})
        msg.spec.uuid = uuid or f"GPU-{suffix}"
        created = self._call(self.stub.CreateGpu, pb.CreateGpuRequest(gpu=msg))
        self._created.append(created.object_meta.name)
        if status is not None:
            return self.set_status(created.object_meta.name, status)
        return created  # type: ignore[no-any-return]

    def get(self, name: str) -> pb.Gpu:
        """``GetGpu``."""
        response = self._call(self.stub.GetGpu, pb.GetGpuRequest(name=name, opts=pb.GetOptions()))
        return response.gpu  # type: ignore[no-any-return]

    def exists(self, name: str) -> bool:
        """True when ``GetGpu`` finds ``name``."""
        try:
            self.get(name)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    def set_labels(self, name: str, **changes: str | None) -> pb.Gpu:
        """``UpdateGpu`` of the current object with labels changed (None removes one)."""
        current = self.get(name)
        for key, value in changes.items():
            if value is None:
                current.object_meta.labels.pop(key, None)
            else:
                current.object_meta.labels[key] = value
        return self._call(self.stub.UpdateGpu, pb.UpdateGpuRequest(gpu=current))  # type: ignore[no-any-return]

    def set_uuid(self, name: str, uuid: str) -> pb.Gpu:
        """``UpdateGpu`` changing the spec."""
        current = self.get(name)
        current.spec.uuid = uuid
        return self._call(self.stub.UpdateGpu, pb.UpdateGpuRequest(gpu=current))  # type: ignore[no-any-return]

    def set_status(self, name: str, status: pb.GpuStatus) -> pb.Gpu:
        """``UpdateGpuStatus`` replacing the status."""
        current = self.get(name)
        current.status.CopyFrom(status)
        request = pb.UpdateGpuStatusRequest(gpu=current)
        return self._call(self.stub.UpdateGpuStatus, request)  # type: ignore[no-any-return]

    def set_ready(self, name: str, ready: bool, reason: str = "Conformance") -> pb.Gpu:
        """``UpdateGpuStatus`` with one Ready condition."""
        return self.set_status(name, ready_status(ready, reason))

    def delete(self, name: str) -> None:
        """``DeleteGpu``."""
        self._call(self.stub.DeleteGpu, pb.DeleteGpuRequest(name=name))

    def churn(self, name: str, count: int) -> pb.Gpu:
        """``count`` label updates of ``name`` (new revisions); returns the last state."""
        last = self.get(name)
        for i in range(count):
            last.object_meta.labels["conformance.nvinformers.io/churn"] = str(i)
            last = self._call(self.stub.UpdateGpu, pb.UpdateGpuRequest(gpu=last))
        return last

    def cleanup(self) -> None:
        """Delete every object this writer created (those already gone are ignored)."""
        for name in self._created:
            # Already gone, or the server is down at the end of a restart test.
            with contextlib.suppress(grpc.RpcError):
                self.stub.DeleteGpu(pb.DeleteGpuRequest(name=name), timeout=10)


def ready_status(ready: bool, reason: str = "Conformance") -> pb.GpuStatus:
    """A status with one Ready condition (last transition: now)."""
    status = pb.GpuStatus()
    cond = status.conditions.add()
    cond.type = "Ready"
    cond.status = "True" if ready else "False"
    cond.reason = reason
    cond.message = f"set by the conformance suite ({reason})"
    cond.last_transition_time.GetCurrentTime()
    cond.last_transition_time.nanos = 0  # servers keep seconds (metav1.Time)
    return status


class WatchLog:
    """Reads an SDK watch on a thread (``nvinformers-test-watch-log``) and keeps every event.

    ``end`` is set once the stream is over: ``error`` is None for a clean end, else what
    ``next()`` raised. Tests wait on conditions over the events with timeouts.

    Thread-safety: all methods may be called from any thread.
    """

    def __init__(self, watch: WatchInterface[GPU]) -> None:
        self._watch = watch
        self._cond = threading.Condition()
        self._events: list[Event[GPU]] = []  # guarded by _cond
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="nvinformers-test-watch-log")
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._watch:
                with self._cond:
                    self._events.append(event)
                    self._cond.notify_all()
        except Exception as exc:  # recorded for the test to assert on
            self.error = exc
        finally:
            self.ended.set()
            with self._cond:
                self._cond.notify_all()

    @property
    def events(self) -> list[Event[GPU]]:
        """A snapshot of the events so far."""
        with self._cond:
            return list(self._events)

    def of(self, names: Iterable[str] | Callable[[str], bool]) -> list[Event[GPU]]:
        """The non-bookmark events about ``names`` (a collection, or a predicate on names)."""
        test = names if callable(names) else set(names).__contains__
        return [
            e
            for e in self.events
            if e.type is not EventType.BOOKMARK and test(e.object.metadata.name)
        ]

    def bookmarks(self) -> list[GPU]:
        """The objects of the BOOKMARK events so far."""
        return [e.object for e in self.events if e.type is EventType.BOOKMARK]

    def wait(self, predicate: Callable[[list[Event[GPU]]], bool], timeout: float) -> bool:
        """Wait until ``predicate(events)`` holds (False on timeout or once the stream ended
        without it holding)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: predicate(self._events) or self.ended.is_set(), timeout
            ) and predicate(self._events)

    def close(self) -> None:
        """Stop the watch and join the reader thread."""
        self._watch.stop()
        self._thread.join(30)

    def __enter__(self) -> WatchLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summary(events: Iterable[Event[GPU]]) -> list[tuple[str, str, int]]:
    """``(type, name, resource version)`` of each event, for readable assertions."""
    return [(str(e.type), e.object.metadata.name, rv(e.object)) for e in events]
