"""An informer's health report: the reflector's link report, plus synced and stopped.

The rules for the link (outage, silence, a frozen stream) live in
:class:`~nvinformers.cache._reflector_health.ReflectorHealth`; this module only adds what the
informer alone knows.
"""

from __future__ import annotations

from dataclasses import dataclass

from nvinformers.cache._reflector_health import LinkReport

__all__ = ["InformerHealth", "informer_health"]


@dataclass(frozen=True, slots=True)
class InformerHealth:
    """A point-in-time health report (see :meth:`SharedIndexInformer.health`).

    Attributes:
        healthy: ``reason == "ok"``.
        reason: "ok", "not synced", "stopped", "no working watch for 6.1 s (...)", "watch
            delivered nothing for 400.2 s while the server changed 3 objects (...)", or "watch
            silent for 400.2 s (...), and the progress check due 5.0 s ago has not started".
        synced: the first list is in the cache.
        watching: a watch stream is open (it may not be working yet).
        seconds_since_last_event: since the last event or bookmark on any watch, the last list,
            or the last progress check that found the cache current (None before the first).
        seconds_down: without a working watch for this long (None while one works).
        last_error: the last error a list or watch ended with ("" before any).
    """

    healthy: bool
    reason: str
    synced: bool
    watching: bool
    seconds_since_last_event: float | None
    seconds_down: float | None
    last_error: str


def informer_health(link: LinkReport, *, synced: bool, stopped: bool) -> InformerHealth:
    """The report of an informer whose reflector reported ``link``."""
    reason = "ok"
    if stopped:
        reason = "stopped"
    elif not synced:
        reason = "not synced"
    elif link.problem is not None:
        reason = link.problem
    return InformerHealth(
        healthy=reason == "ok",
        reason=reason,
        synced=synced,
        watching=link.watching,
        seconds_since_last_event=link.seconds_since_last_event,
        seconds_down=link.seconds_down,
        last_error=link.last_error,
    )
