"""Waiting for caches to sync (client-go's ``WaitForCacheSync``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["wait_for_cache_sync", "POLL_INTERVAL"]

log = logging.getLogger("nvinformers.cache")

#: client-go polls every 100 ms.
POLL_INTERVAL = 0.1


def wait_for_cache_sync(
    stop: threading.Event | None,
    *has_synced: Callable[[], bool],
    timeout: float | None = None,
) -> bool:
    """Block until every ``has_synced`` function returns True.

    Returns True when all have synced, False when ``stop`` was set or ``timeout`` seconds passed
    first. Pass informers' ``has_synced`` and handler registrations' ``has_synced`` (a handler
    that must see the whole initial list before acting waits on its registration, not just on
    the informer).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = stop if stop is not None else threading.Event()
    while True:
        if all(fn() for fn in has_synced):
            return True
        if stop is not None and stop.is_set():
            log.info("stop requested before caches synced")
            return False
        wait = POLL_INTERVAL
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait = min(wait, remaining)
        pause.wait(wait)
