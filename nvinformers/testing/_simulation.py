"""What the fake server does on its own: the GPUs it makes up (``gpu-<i>``, Ready), the Ready
condition it flips and the status write that sets it (conditions set by type, as
``meta.SetStatusCondition`` does), and the background threads that call one function every
interval (flip a GPU, compact the history) until the server stops, logging a failure and
carrying on.

Thread-safety: the functions are pure and the constants immutable. :meth:`PeriodicJobs.start`
and :meth:`~PeriodicJobs.stop` are called under the server's lifecycle lock; the jobs run on
their own threads (named ``nvinformers-*``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Final

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb

__all__ = [
    "READY_CONDITION",
    "NOT_READY_RECOMMENDED_ACTION",
    "inventory_gpu",
    "ready_condition",
    "status_mutation",
    "PeriodicJobs",
]

READY_CONDITION: Final = "Ready"
#: ``status.recommended_action`` of a GPU the simulation (or :meth:`FakeServer.set_ready`) marks
#: not ready.
NOT_READY_RECOMMENDED_ACTION: Final = "RESTART_DRIVER"
_READY_REASON = "DriverReady"
_READY_MESSAGE = "driver is posting ready status"
_NOT_READY_REASON = "DriverNotReady"
_NOT_READY_MESSAGE = "driver is not posting ready status"
_GPU_INDEX_LABEL = "nvidia.com/gpu.index"


def ready_condition(ready: bool, last_transition_time: datetime | None = None) -> Condition:
    """The Ready condition (reason DriverReady / DriverNotReady) of a GPU that is ``ready``."""
    return Condition(
        type=READY_CONDITION,
        status=meta.CONDITION_TRUE if ready else meta.CONDITION_FALSE,
        reason=_READY_REASON if ready else _NOT_READY_REASON,
        message=_READY_MESSAGE if ready else _NOT_READY_MESSAGE,
        last_transition_time=last_transition_time,
    )


def inventory_gpu(index: int, gpu_uuid: str) -> GPU:
    """GPU ``gpu-<index>``, Ready since now, labelled ``nvidia.com/gpu.index=<index>``."""
    return GPU.new(
        f"gpu-{index}",
        uuid=gpu_uuid,
        labels={_GPU_INDEX_LABEL: str(index)},
        conditions=[ready_condition(True, datetime.now(UTC))],
    )


def status_mutation(
    conditions: Iterable[Condition] | None, recommended_action: str | None
) -> Callable[[pb.Gpu], pb.Gpu]:
    """The status write of :meth:`FakeServer.update_gpu_status`, as a storage patch function:
    set ``conditions`` by type and ``recommended_action`` (None leaves it, "" clears it)."""
    new_conditions = [c.to_proto() for c in conditions or ()]

    def mutate(msg: pb.Gpu) -> pb.Gpu:
        now = datetime.now(UTC)
        status = msg.status
        for cond in new_conditions:
            _set_condition(status, cond, now)
        if recommended_action is not None:
            if recommended_action:
                status.recommended_action = recommended_action
            else:
                status.ClearField("recommended_action")
        return msg

    return mutate


def _set_condition(status: pb.GpuStatus, cond: pb.Condition, now: datetime) -> None:
    for existing in status.conditions:
        if existing.type == cond.type:
            if not cond.HasField("last_transition_time"):
                if existing.status == cond.status and existing.HasField("last_transition_time"):
                    cond.last_transition_time.CopyFrom(existing.last_transition_time)
                else:
                    cond.last_transition_time.FromDatetime(now)
            existing.CopyFrom(cond)
            return
    if not cond.HasField("last_transition_time"):
        cond.last_transition_time.FromDatetime(now)
    status.conditions.append(cond)


_log = logging.getLogger("nvinformers.testing.server")  # the fake server, whichever part logs


class PeriodicJobs:
    """Threads that each run a job every interval until :meth:`stop`; restartable."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, name: str, interval: float, job: Callable[[], object], failure: str) -> None:
        """Start thread ``name``: ``job()`` every ``interval`` seconds; an exception is logged
        with ``failure`` and the next interval runs as usual."""
        thread = threading.Thread(
            target=self._loop, args=(self._stop, interval, job, failure), name=name
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop every thread and wait for it (blocks for at most one job run)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._stop = threading.Event()

    @staticmethod
    def _loop(
        stop: threading.Event, interval: float, job: Callable[[], object], failure: str
    ) -> None:
        while not stop.wait(interval):
            try:
                job()
            except Exception:
                _log.exception(failure)
