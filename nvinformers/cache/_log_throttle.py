"""Rate-limited logging for errors that can repeat at event rate (raising handlers, skipped events).

A handler that raises on every event must not write a traceback per event: one record per
interval is logged, and the next one says how many were held back meanwhile (they are counted in
metrics either way).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["LogThrottle"]


class LogThrottle:
    """Allows one log record per ``interval`` seconds and counts the ones it holds back.

    Thread-safety: :meth:`allow` may be called from any thread (a lock guards the counters); it
    never blocks beyond that lock.
    """

    __slots__ = ("interval", "_now", "_lock", "_last", "_held")

    def __init__(
        self, interval: float = 10.0, *, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._now = now
        self._lock = threading.Lock()
        self._last: float | None = None  # guarded by _lock: monotonic time of the last record
        self._held = 0  # guarded by _lock: records held back since then

    def allow(self) -> int | None:
        """Whether to log now.

        Returns None when a record was allowed less than ``interval`` seconds ago (this one is
        counted as held back); otherwise how many were held back since the last allowed record,
        for the caller to mention.
        """
        now = self._now()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                self._held += 1
                return None
            held, self._held, self._last = self._held, 0, now
            return held
