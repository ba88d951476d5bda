"""Revision handling: decimal revisions compared, opaque ones kept as they are.

The reflector tracks the last revision from lists, events and bookmarks. It never moves
backwards when revisions are decimal integers, as the Device API's are, so a server that replays
an ADDED burst of old objects cannot make the reflector re-watch from the past. Revisions that are
not decimal integers are kept as opaque strings (and sent back as they are); since no event can
then be recognised as older than the cache, one WARNING says that stale-event protection is off.
The informer drops an event older than the cached object by the same comparison,
:func:`revision_newer`.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from nvinformers.cache._reflector_state import ReflectorState

__all__ = ["revision_newer", "RevisionTracking"]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache._reflector")


def revision_newer(candidate: str, current: str) -> bool | None:
    """Compare two resource versions when both are decimal integers.

    Returns True if ``candidate`` is strictly newer, False if it is the same or older, and None
    when they cannot be compared (resource versions are opaque in general; the Device API's are
    one global integer revision).
    """
    if candidate.isdigit() and current.isdigit():
        if len(candidate) == len(current):
            # Digit strings of equal length compare as numbers do (no int conversion needed:
            # this runs for every watch event).
            return candidate > current
        return int(candidate) > int(current)
    return None


class RevisionTracking(ReflectorState[T]):
    """The reflector's revision rules: which revision a relist asks for, which one is newer."""

    def _relist_resource_version(self) -> str:
        # client-go: "0" first (cheap, may be slightly stale), then the last synced revision so
        # time never goes backwards, and "" (a consistent read) once that revision expired.
        if self._last_sync_rv_unavailable:
            return ""
        if not self._last_sync_rv:
            return "0"
        return self._last_sync_rv

    def _newer_revision(self, rv: str, current: str) -> bool:
        """Whether ``rv`` should become the last synced revision (the uncommon comparisons)."""
        self._check_revision(rv)
        return not current or revision_newer(rv, current) is not False

    def _check_revision(self, rv: str) -> None:
        """Warn, once, that revisions which are not decimal integers turn stale-event
        protection off."""
        if rv and not self._opaque_revisions and not rv.isdigit():
            self._opaque_revisions = True
            log.warning(
                "%s: the server's resource version %r is not a decimal integer: an event older "
                "than the cached object cannot be recognised, so stale-event protection is off "
                "for this informer (revisions are kept as opaque strings and sent back as they "
                "are)",
                self.name,
                rv,
            )
