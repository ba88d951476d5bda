"""A reflector's counters, for metrics (its state lives in its ``ReflectorHealth``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ReflectorStats"]


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
