"""RealFIFO: deltas applied in order, in batches, by the pushing thread; nothing lost or left
behind by concurrent pushes; a failing batch or a close stops nothing else."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from nvinformers.cache import DeltaType, RealFIFO
from nvinformers.cache._fifo import Replacement
from tests.unit.cache.scripted import WAIT


def test_each_delta_is_processed_in_order_before_the_push_returns() -> None:
    seen: list[tuple[DeltaType, Any]] = []
    fifo = RealFIFO(process=seen.extend)
    fifo.add("a")
    assert seen == [(DeltaType.ADDED, "a")]
    fifo.update("b")
    fifo.delete("c")
    fifo.bookmark("7")
    fifo.resync()
    fifo.replace(iter(["x", "y"]), "9")
    assert seen == [
        (DeltaType.ADDED, "a"),
        (DeltaType.UPDATED, "b"),
        (DeltaType.DELETED, "c"),
        (DeltaType.BOOKMARK, "7"),
        (DeltaType.SYNC, None),
        (DeltaType.REPLACED_ALL, Replacement(["x", "y"], "9")),
    ]
    assert len(fifo) == 0


def test_a_transform_runs_on_enqueue_and_a_failing_one_queues_the_object_as_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[DeltaType, Any]] = []

    def upper(obj: str) -> str:
        if obj == "bad":
            raise ValueError("no")
        return obj.upper()

    fifo = RealFIFO(process=seen.extend, transform=upper)
    with caplog.at_level(logging.ERROR, logger="nvinformers.cache"):
        fifo.add("a")
        fifo.update("bad")
        fifo.bookmark("rv")  # a revision is not an object: not transformed
    assert seen == [(DeltaType.ADDED, "A"), (DeltaType.UPDATED, "bad"), (DeltaType.BOOKMARK, "rv")]
    assert fifo.transform_errors == 1
    assert "transform failed" in caplog.text


def test_deltas_pushed_by_other_threads_during_a_drain_are_applied_by_the_drainer_in_order() -> (
    None
):
    seen: list[Any] = []
    batches: list[int] = []
    entered = threading.Event()
    release = threading.Event()

    def process(batch: list[tuple[DeltaType, Any]]) -> None:
        batches.append(len(batch))
        for _, obj in batch:
            if obj == "slow":
                entered.set()
                assert release.wait(WAIT)
            seen.append(obj)

    fifo = RealFIFO(process=process, batch_size=2)
    drainer = threading.Thread(target=fifo.update, args=("slow",), name="drainer")
    drainer.start()
    assert entered.wait(WAIT)
    fifo.resync()  # another thread: queued, not processed by this thread
    fifo.update("next")
    fifo.update("last")
    assert seen == []
    assert len(fifo) == 3
    release.set()
    drainer.join(WAIT)
    assert not drainer.is_alive()
    assert seen == ["slow", None, "next", "last"]  # the drainer took what was queued, in order
    assert batches == [1, 2, 1]  # in batches of at most batch_size
    assert len(fifo) == 0


def test_a_failing_batch_is_logged_and_the_queue_keeps_draining(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    def process(batch: list[tuple[DeltaType, Any]]) -> None:
        if batch[0][1] == "bad":
            raise RuntimeError("boom")
        seen.extend(obj for _, obj in batch)

    fifo = RealFIFO(process=process)
    with caplog.at_level(logging.ERROR, logger="nvinformers.cache"):
        fifo.update("bad")
    fifo.update("good")
    assert seen == ["good"]
    assert "failed to process" in caplog.text


def test_close_drops_what_is_still_queued_and_every_later_delta() -> None:
    seen: list[Any] = []
    entered = threading.Event()
    release = threading.Event()

    def process(batch: list[tuple[DeltaType, Any]]) -> None:
        for _, obj in batch:
            if obj == "slow":
                entered.set()
                assert release.wait(WAIT)
            seen.append(obj)

    fifo = RealFIFO(process=process)
    drainer = threading.Thread(target=fifo.update, args=("slow",), name="drainer")
    drainer.start()
    assert entered.wait(WAIT)
    fifo.update("queued")
    fifo.close()  # the informer is stopping
    release.set()
    drainer.join(WAIT)
    assert not drainer.is_alive()
    fifo.add("late")
    assert seen == ["slow"]  # the batch in progress finished; nothing after it
    assert len(fifo) == 0


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        RealFIFO(process=lambda batch: None, batch_size=0)
