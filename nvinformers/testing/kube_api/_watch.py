"""Watch streams of the fake Kubernetes API server: events rendered one JSON document per line,
written as HTTP chunks.

A stream writes the batches of :meth:`ObjectTracker.events
<nvinformers.testing.tracker.ObjectTracker.events>` (at most :data:`MAX_LINES_PER_CHUNK` lines
per chunk; a progress BOOKMARK every ``bookmark_interval`` seconds when the client allows them;
a clean end at ``timeoutSeconds``) and ends when the tracker ends its watch: after what is queued
(:data:`TIMED_OUT`: a server-side timeout) or at once (:data:`STOPPING`: the server is
stopping). While delivery is paused, events queue and nothing is written.

Events render as the client asked: the object itself (:class:`JSONRenderer`), or a one-row
``Table`` (:class:`TableRenderer`, column definitions in the first event only).

Threads: a stream runs on its connection's thread and blocks on its watcher's condition (no
polling, no sleep) until an event, a deadline or the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, Protocol

from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.testing.kube_api._registry import Record, dumps
from nvinformers.testing.kube_api._resources import Resource
from nvinformers.testing.kube_api._tables import table
from nvinformers.testing.tracker import BOOKMARK, Ended, WatchEvent

__all__ = [
    "Renderer",
    "JSONRenderer",
    "TableRenderer",
    "stream",
    "MAX_LINES_PER_CHUNK",
    "STOPPING",
    "TIMED_OUT",
]

#: Lines written per chunk at most when a watch has a backlog.
MAX_LINES_PER_CHUNK: Final = 512
#: Why the tracker ended a watch: the server is stopping (the stream ends at once; a watch
#: opened meanwhile is refused with 503).
STOPPING: Final = "stop"
#: Why the tracker ended a watch: a server-side timeout (the stream sends what is queued first).
TIMED_OUT: Final = "end"


class Renderer(Protocol):
    """Turns one watch event into one line (with its newline)."""

    def __call__(self, event: WatchEvent[Record]) -> bytes: ...


def _bookmark_object(res: Resource, event: WatchEvent[Record]) -> bytes:
    meta: dict[str, object] = {"resourceVersion": str(event.revision), "creationTimestamp": None}
    if event.initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
    return dumps({"kind": res.kind, "apiVersion": "v1", "metadata": meta}).encode()


class JSONRenderer:
    """``{"type": ..., "object": <the object>}`` lines, as the API server streams them."""

    def __init__(self, res: Resource) -> None:
        self._res = res

    def __call__(self, event: WatchEvent[Record]) -> bytes:
        record = event.object
        body = record.full() if record is not None else _bookmark_object(self._res, event)
        return b'{"type":"%s","object":%s}\n' % (event.type.encode(), body)


class TableRenderer:
    """Lines whose object is a one-row ``Table`` (column definitions in the first only)."""

    def __init__(self, res: Resource, version: str, include: str) -> None:
        self._res = res
        self._version = version
        self._include = include
        self._headers = True

    def __call__(self, event: WatchEvent[Record]) -> bytes:
        if event.type == BOOKMARK:
            # A bookmark's object carries only a revision; its table has no rows.
            rows = []
        else:
            assert event.object is not None
            rows = [event.object.load()]
        doc = table(
            self._res, rows, resource_version=str(event.revision), version=self._version,
            include=self._include, headers=self._headers,
        )  # fmt: skip
        self._headers = False
        return b'{"type":"%s","object":%s}\n' % (event.type.encode(), dumps(doc).encode())


def stream(
    write_chunk: Callable[[bytes], None],
    events: Iterable[list[WatchEvent[Record]] | Ended],
    render: Renderer,
) -> None:
    """Write a watch's ``events`` (:meth:`ObjectTracker.events
    <nvinformers.testing.tracker.ObjectTracker.events>`) as chunks of rendered lines, then the
    last, empty chunk.

    Raises:
        OSError: the client went away.
    """
    for item in events:
        if isinstance(item, Ended):
            break
        write_chunk(b"".join(render(e) for e in item))  # rendered outside every lock
    write_chunk(b"")
