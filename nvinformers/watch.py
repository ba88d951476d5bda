"""The watch protocol shared by the clientset, the fake clientset and the cache.

A watch is an iterator of :class:`Event` with a :meth:`Interface.stop` that may be called from any
thread. Iteration ends quietly when the stream ends cleanly or is stopped; any other failure is
raised from ``next()`` as a :class:`nvinformers.errors.StatusError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

__all__ = ["EventType", "Event", "Interface", "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]

T_co = TypeVar("T_co", covariant=True)


class EventType(StrEnum):
    """Type of a watch event; compares equal to its wire string (``EventType.ADDED == "ADDED"``)."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    #: A progress notification: the object carries only ``metadata.resource_version`` (and, at
    #: the end of a streaming list's initial events, the ``k8s.io/initial-events-end`` annotation).
    BOOKMARK = "BOOKMARK"
    #: Never yielded by nvinformers watches: an in-band ERROR is raised as an exception instead.
    ERROR = "ERROR"


ADDED = EventType.ADDED
MODIFIED = EventType.MODIFIED
DELETED = EventType.DELETED
BOOKMARK = EventType.BOOKMARK
ERROR = EventType.ERROR


@dataclass(frozen=True, slots=True)
class Event(Generic[T_co]):
    """One watch event. ``object`` is the new state (ADDED/MODIFIED), the last known state
    (DELETED), or a resource-version carrier (BOOKMARK)."""

    type: EventType
    object: T_co


class Interface(Protocol[T_co]):
    """A running watch.

    Thread-safety: ``stop()`` is idempotent and may be called from any thread; it makes a blocked
    ``next()`` return promptly (iteration ends). Iterate from one thread only.

    A class that subclasses it explicitly (the library's watches do) writes ``__next__`` and
    ``stop`` and inherits the rest: iteration over itself, and ``with`` stopping it on exit.
    """

    __slots__ = ()

    def __iter__(self) -> Iterator[Event[T_co]]:
        return self

    def __next__(self) -> Event[T_co]: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
