"""What ends a reflector's list or watch, and what follows: the one table, :func:`classify`.

client-go's relist/re-watch table, as :mod:`nvinformers.cache._reflector` applies it:

  ==========================================  ==============================================
  the watch ...                               then
  ==========================================  ==============================================
  ends cleanly (server timeout, EOF)          re-watch from the last revision, no relist
  breaks with UNAVAILABLE after working       re-watch at once from the last revision
  fails with UNAVAILABLE before working       back off, re-watch (no relist)
  (also: the watch cannot even start)
  is silent past ``watch_inactivity_timeout`` progress check: relist at once, then watch from
                                              the list's revision
  ends with 410 Expired                       back off, relist
  ends with any other error, or a malformed   back off, relist
  event
  ends cleanly in < 1 s with no event         back off, relist (client-go's VeryShortWatch)
  ==========================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nvinformers.errors import (
    ExpiredError,
    MalformedObjectError,
    NvInformersError,
    ServiceUnavailableError,
    StatusError,
)

__all__ = ["WatchErrorHandler", "VeryShortWatchError", "ReplayedWatchError", "Verdict", "classify"]

#: Called with the reflector's name and the error after each failed list-and-watch pass.
WatchErrorHandler = Callable[[str, BaseException], None]


class VeryShortWatchError(NvInformersError):
    """A watch ended cleanly almost immediately without delivering any event."""


class ReplayedWatchError(NvInformersError):
    """A re-watch started with ADDED events no newer than the revision it asked for.

    The server ignored the requested revision and replayed its current state (some Device API
    server builds do). Objects deleted while the reflector was not watching are absent from such
    a burst and would stay in the cache, so the reflector relists instead ("relist when in
    doubt", as the contract asks). A watch that directly follows a list is exempt: its burst is
    the list it follows.
    """


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an error that ended a list or a watch means (see :func:`classify`).

    Attributes:
        reason: the ``watch_restarts`` label when it ended a watch.
        relist: end the pass and relist (False: re-watch from the last revision).
        failure: the server failed (an outage, as the logs tell it); False: routine, logged at
            DEBUG.
        unexpected: not an API error at all (a bug): logged with its traceback.
    """

    reason: str
    relist: bool
    failure: bool
    unexpected: bool = False


#: The table, in the order it is read: the first class the error is an instance of decides.
_VERDICTS: tuple[tuple[type[BaseException], Verdict], ...] = (
    (ServiceUnavailableError, Verdict("unavailable", relist=False, failure=True)),
    (ExpiredError, Verdict("expired", relist=True, failure=False)),
    (VeryShortWatchError, Verdict("very_short", relist=True, failure=False)),
    (ReplayedWatchError, Verdict("replayed", relist=True, failure=False)),
    (MalformedObjectError, Verdict("malformed", relist=True, failure=True)),
    (StatusError, Verdict("error", relist=True, failure=True)),
)
_BUG = Verdict("error", relist=True, failure=True, unexpected=True)


def classify(err: BaseException) -> Verdict:
    """The one place that decides what an error ending a list or a watch means.

    The first entry of the table above the error is an instance of decides (the module
    docstring's table says what follows); anything else is a bug: a failure, relist, and its
    traceback is logged. client-go logs expiry at V(4): it is routine here too.
    """
    for cls, verdict in _VERDICTS:
        if isinstance(err, cls):
            return verdict
    return _BUG
