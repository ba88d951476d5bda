"""ProcessorListener: one handler's own delivery thread (notifications in order, whatever the
thread is doing when they arrive; stop ends it at once)."""

from __future__ import annotations

import functools
import threading
from typing import Any

from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.cache._processor import ADD, UPDATE, ProcessorListener
from tests.unit.cache.scripted import WAIT


def _has(seen: list[Any], count: int) -> bool:
    return len(seen) == count


def test_notifications_reach_the_handler_in_order_whether_its_thread_sleeps_lingers_or_works() -> (
    None
):
    seen: list[Any] = []
    arrived = threading.Condition()

    def on_add(obj: Any) -> None:
        with arrived:
            seen.append(obj)
            arrived.notify_all()

    listener = ProcessorListener(
        ResourceEventHandlerFuncs(on_add=on_add),
        name="h",
        informer_name="i",
        informer_synced=lambda: True,
    )
    listener.start()
    try:
        for batch in range(5):  # each add finds the thread asleep, lingering or delivering
            listener.add_many([(ADD, f"o{batch}", False)])
            with arrived:
                assert arrived.wait_for(functools.partial(_has, seen, batch + 1), WAIT)
        listener.add_many([(UPDATE, "x", "y"), (ADD, "last", False)])
        with arrived:
            assert arrived.wait_for(lambda: "last" in seen, WAIT)
        assert seen == ["o0", "o1", "o2", "o3", "o4", "last"]
    finally:
        listener.stop()
        assert listener.join(WAIT)
    assert listener.backlog == 0
