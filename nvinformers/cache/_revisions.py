"""Revision handling: decimal revisions compared, opaque ones kept as they are.

A reflector's :class:`RevisionTracker` never moves backwards when revisions are decimal integers,
as the Device API's are, so a server that replays an ADDED burst of old objects cannot make the
reflector re-watch from the past. Other revisions are kept as opaque strings (and sent back as
they are); since no event can then be recognised as older than the cache, one WARNING says that
stale-event protection is off. The informer drops an event older than the cached object by the
same comparison, :func:`revision_newer`.
"""

from __future__ import annotations

import logging

__all__ = ["revision_newer", "RevisionTracker"]

log = logging.getLogger("nvinformers.cache.reflector")


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


class RevisionTracker:
    """A reflector's last synced revision: which revision its next list and watch ask for.

    Thread-safety: written by the reflector's run thread only (its watch loop writes
    :attr:`last` directly, once per newer event); read by anyone (a str attribute read is
    atomic).
    """

    __slots__ = ("_name", "_opaque", "expired", "last")

    def __init__(self, name: str) -> None:
        self._name = name
        #: The last revision seen (list, event or bookmark); "" before the first list.
        self.last = ""
        #: The server said :attr:`last` expired: the next list reads fresh ("").
        self.expired = False
        self._opaque = False  # a revision that is not a decimal integer was seen

    def relist_from(self) -> str:
        """The revision a classic list asks for."""
        # client-go: "0" first (cheap, may be slightly stale), then the last synced revision so
        # time never goes backwards, and "" (a consistent read) once that revision expired.
        if self.expired:
            return ""
        if not self.last:
            return "0"
        return self.last

    def newer(self, rv: str, current: str) -> bool:
        """Whether ``rv`` should become the last synced revision (the uncommon comparisons)."""
        self.check(rv)
        return not current or revision_newer(rv, current) is not False

    def check(self, rv: str) -> None:
        """Warn, once, that revisions which are not decimal integers turn stale-event
        protection off."""
        if rv and not self._opaque and not rv.isdigit():
            self._opaque = True
            log.warning(
                "%s: the server's resource version %r is not a decimal integer: an event older "
                "than the cached object cannot be recognised, so stale-event protection is off "
                "for this informer (revisions are kept as opaque strings and sent back as they "
                "are)",
                self._name,
                rv,
            )

    def check_list(self, rv: str) -> None:
        """Before a full list at ``rv`` replaces the store: warn of what it tells (an opaque
        revision; revisions that went backwards)."""
        self.check(rv)
        last = self.last
        if last and revision_newer(last, rv) is True:
            # A relist asks for a state at least as new as the last revision seen.
            log.warning(
                "%s: the list is at revision %s, older than the last revision seen (%s): the "
                "server's revisions went backwards (a restart that lost its store?); the cache "
                "takes the list as it is",
                self._name,
                rv,
                last,
            )

    def listed(self, rv: str) -> None:
        """A full list at ``rv`` replaced the store: it is the last synced revision now."""
        self.expired = False
        self.last = rv
