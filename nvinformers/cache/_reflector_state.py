"""What a reflector holds: its defaults, the store slice it writes, its counters, its state.

The base of the reflector's layers (:mod:`nvinformers.cache._reflector` stacks them): this one
checks the configuration and owns every field, and says which lock, if any, guards each; the
layers above add behaviour only.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from nvinformers.cache._backoff import DEFAULT_BACKOFF, Backoff, BackoffConfig
from nvinformers.cache._fifo import AppliedFunc
from nvinformers.cache._listwatch import ListerWatcher
from nvinformers.cache._reflector_errors import WatchErrorHandler
from nvinformers.cache._reflector_health import DEFAULT_OUTAGE_GRACE, ReflectorHealth
from nvinformers.cancel import CancelToken
from nvinformers.clock import REAL_CLOCK, Clock
from nvinformers.watch import Interface as WatchInterface

__all__ = [
    "ReflectorState",
    "ReflectorStore",
    "ReflectorStats",
    "DEFAULT_WATCH_INACTIVITY_TIMEOUT",
    "DEFAULT_MIN_WATCH_TIMEOUT",
    "DEFAULT_INITIAL_EVENTS_TIMEOUT",
]

T = TypeVar("T")

#: Seconds of total silence (no event, no bookmark) on a watch after which the reflector checks
#: progress with a relist. Longer than the Kubernetes bookmark interval (1 min) and than kine's
#: default progress-notify interval (5 min), so a server that sends bookmarks is never checked.
DEFAULT_WATCH_INACTIVITY_TIMEOUT = 360.0
#: Seconds a streaming list may take to deliver its initial-events-end bookmark before the
#: reflector falls back to a classic list (the informer factories pass their list timeout).
DEFAULT_INITIAL_EVENTS_TIMEOUT = 60.0
#: client-go's minimum watch timeout (the actual timeout is drawn from [min, 2 * min)).
DEFAULT_MIN_WATCH_TIMEOUT = 300.0


class ReflectorStore(Protocol):
    """The narrow slice of a store the reflector writes to (the informer's :class:`RealFIFO`)."""

    def add(self, obj: Any) -> None: ...

    def update(self, obj: Any) -> None: ...

    def delete(self, obj: Any) -> None: ...

    def replace(
        self, objects: list[Any], resource_version: str, *, on_applied: AppliedFunc | None = None
    ) -> None:
        """Replace the content with a full list. The reflector passes ``on_applied`` only for a
        progress check; the store must then call it once the list was applied, with the number
        of objects it added, updated or deleted (a store that never calls it leaves checks
        without a result: they neither explain a silence nor report a frozen stream)."""
        ...

    def bookmark(self, resource_version: str) -> None: ...


@dataclass
class ReflectorStats:
    """Counters of one reflector, for metrics (state lives in :class:`ReflectorHealth`).

    Written by the reflector's run thread, except ``progress_checks["current"]`` and
    ``["stale"]``, written by whichever thread applies a check's relist (the run thread, or the
    resync timer's drain of the queue): relists are applied one at a time, so no key is ever
    written by two threads at once. Read without a lock by metrics collectors (each read of an
    int or of a dict copy is atomic).
    """

    lists: dict[str, int] = field(default_factory=dict)  # by reason
    list_failures: int = 0
    watch_restarts: dict[str, int] = field(default_factory=dict)  # by reason
    watch_attempts: int = 0
    events: dict[str, int] = field(default_factory=dict)  # by event type
    progress_checks: dict[str, int] = field(default_factory=dict)  # current, stale, failed


class ReflectorState(Generic[T]):
    """The reflector's configuration and state (the arguments: see :class:`Reflector`)."""

    def __init__(
        self,
        lw: ListerWatcher[T],
        store: ReflectorStore,
        *,
        name: str,
        watch_inactivity_timeout: float | None = DEFAULT_WATCH_INACTIVITY_TIMEOUT,
        min_watch_timeout: float = DEFAULT_MIN_WATCH_TIMEOUT,
        backoff: BackoffConfig = DEFAULT_BACKOFF,
        use_watch_list: bool = False,
        initial_events_timeout: float | None = DEFAULT_INITIAL_EVENTS_TIMEOUT,
        outage_grace: float = DEFAULT_OUTAGE_GRACE,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
        watch_error_handler: WatchErrorHandler | None = None,
    ) -> None:
        if watch_inactivity_timeout is not None and watch_inactivity_timeout <= 0:
            raise ValueError(
                f"watch_inactivity_timeout must be > 0, got {watch_inactivity_timeout}"
            )
        if initial_events_timeout is not None and initial_events_timeout <= 0:
            raise ValueError(f"initial_events_timeout must be > 0, got {initial_events_timeout}")
        if min_watch_timeout <= 0:
            raise ValueError(f"min_watch_timeout must be > 0, got {min_watch_timeout}")
        self._lw = lw
        self._store = store
        self.name = name
        self._inactivity_timeout = watch_inactivity_timeout
        self._min_watch_timeout = min_watch_timeout
        self._use_watch_list = use_watch_list
        self._initial_events_timeout = initial_events_timeout
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(backoff, clock=clock, rng=self._rng)
        self._error_handler = watch_error_handler
        self.stats = ReflectorStats()
        # Set when a deadline of the supervisor may have moved earlier, or when stopping.
        self._wake = threading.Event()
        self.health = ReflectorHealth(
            name, clock=clock, outage_grace=outage_grace, wake=self._wake.set
        )
        # Fired (by the stop thread) when run()'s stop is set; every blocking call honours it.
        self._cancel = CancelToken()
        # Written by the run thread only; read by anyone.
        self._last_sync_rv = ""
        self._last_sync_rv_unavailable = False
        self._watch_list_unsupported = False
        self._watch_list_failed = False  # a streaming list failed once (later ones log at DEBUG)
        self._first_list_done = False
        self._replays_seen = 0
        self._opaque_revisions = False  # a revision that is not a decimal integer was seen
        # The open watch, shared with the supervisor and the cancel callback.
        self._watch_lock = threading.Lock()
        self._current: WatchInterface[T] | None = None  # guarded by _watch_lock: the open watch
        self._watch_opened = 0.0  # guarded by _watch_lock: clock time the open watch opened
        # guarded by _watch_lock: the open watch streams a list's initial events
        self._streaming = False
        # guarded by _watch_lock: (the watch the supervisor stopped, why), until it is closed
        self._stopped_by_supervisor: tuple[WatchInterface[T], str] | None = None

    def _watch_timeout_seconds(self) -> int:
        low = self._min_watch_timeout
        return int(low + self._rng.random() * low)

    def _restart(self, reason: str) -> None:
        restarts = self.stats.watch_restarts
        restarts[reason] = restarts.get(reason, 0) + 1
