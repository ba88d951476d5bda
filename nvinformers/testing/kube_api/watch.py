"""Watch streams of the fake Kubernetes API server: events rendered one JSON document per line,
written as HTTP chunks.

A stream drains its :class:`~.tracker.Watcher`'s buffer in batches (at most
:data:`MAX_LINES_PER_CHUNK` lines per chunk), sends a progress BOOKMARK every
``bookmark_interval`` seconds when the client allows them, ends cleanly at ``timeoutSeconds``,
and ends when the tracker ends its watcher: after what is queued (``"end"``: a server-side
timeout) or at once (``"stop"``: the server is stopping). While delivery is paused, events queue
and nothing is written.

Events render as the client asked: the object itself (:class:`JSONRenderer`), or a one-row
``Table`` (:class:`TableRenderer`, column definitions in the first event only).

Threads: a stream runs on its connection's thread and blocks on its watcher's condition (no
polling, no sleep) until an event, a deadline or the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.testing.kube_api.objects import Record, dumps
from nvinformers.testing.kube_api.resources import Resource
from nvinformers.testing.kube_api.tables import table
from nvinformers.testing.kube_api.tracker import BOOKMARK, Watcher, WatchEvent

__all__ = ["Renderer", "JSONRenderer", "TableRenderer", "stream", "MAX_LINES_PER_CHUNK"]

#: Lines written per chunk at most when a watch has a backlog.
MAX_LINES_PER_CHUNK: Final = 512


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
    watcher: Watcher[Record],
    render: Renderer,
    *,
    deadline: float | None,
    bookmark_interval: float | None,
    paused: Callable[[], bool],
    send_bookmark: Callable[[], None],
) -> None:
    """Write ``watcher``'s events until it ends or ``deadline`` (monotonic) passes; ends with
    the last, empty chunk.

    Args:
        write_chunk: writes one HTTP chunk (raises OSError when the client went away).
        watcher: the tracker's watch.
        render: how an event becomes a line.
        deadline: when the stream ends cleanly (``timeoutSeconds``), or None.
        bookmark_interval: seconds between progress BOOKMARKs, or None for none.
        paused: whether delivery is paused (checked whenever the watcher is woken).
        send_bookmark: queues a BOOKMARK behind the events already queued.

    Raises:
        OSError: the client went away.
    """
    next_bookmark = time.monotonic() + bookmark_interval if bookmark_interval else None
    cond = watcher.cond
    buffer = watcher.buffer
    while True:
        with cond:
            while True:
                if watcher.ended is not None or (buffer and not paused()):
                    break
                now = time.monotonic()
                waits = [t - now for t in (deadline, next_bookmark) if t is not None]
                if waits and min(waits) <= 0:
                    break
                cond.wait(min(waits) if waits else None)
            ended = watcher.ended
            events: list[WatchEvent[Record]] = []
            # "end" (a server-side timeout) sends what was already queued; "stop" ends at once.
            if ended == "end" or (ended is None and not paused()):
                while buffer and len(events) < MAX_LINES_PER_CHUNK:
                    events.append(buffer.popleft())
        if events:
            write_chunk(b"".join(render(e) for e in events))  # rendered outside the lock
            continue
        if ended is not None:
            write_chunk(b"")
            return
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            write_chunk(b"")  # timeoutSeconds: a clean end of the stream
            return
        if next_bookmark is not None and bookmark_interval and now >= next_bookmark:
            next_bookmark = now + bookmark_interval
            send_bookmark()
