"""The reflector's watch loop: open watches one after another, and feed their events to the store.

client-go's ``watch`` (:meth:`WatchLoop._watch`) and ``handleWatch``
(:meth:`WatchLoop._handle_watch`, the hot loop). What ends a watch, and whether a relist follows,
is decided by :func:`~nvinformers.cache._reflector.classify`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from nvinformers.cache._keys import resource_version_of
from nvinformers.cache._list_phase import ListPhase
from nvinformers.cache._open_watch import SILENT
from nvinformers.cache._reflector_errors import ReplayedWatchError, VeryShortWatchError, classify
from nvinformers.cache._revisions import revision_newer
from nvinformers.meta import header_accessors
from nvinformers.options import ListOptions
from nvinformers.watch import EventType
from nvinformers.watch import Interface as WatchInterface

__all__ = ["WatchLoop"]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache._reflector")

#: A watch that ends cleanly sooner than this with no event is an error (client-go: 1 s).
_VERY_SHORT_WATCH = 1.0

_EVENT_NAMES: dict[EventType, str] = {t: t.value for t in EventType}


class WatchLoop(ListPhase[T]):
    """client-go's ``watch`` and ``handleWatch``."""

    def _watch(self, watch: WatchInterface[T] | None) -> None:
        """client-go's ``watch``: open watches one after another until one must be abandoned.

        Returns when the reflector is stopped; raises what ends the pass (a relist) otherwise.
        """
        clock = self._clock
        cancel = self._cancel
        # The first watch of a pass follows a list (or is the streaming list): a server replaying
        # its state on it repeats that list. Later re-watches are checked for replays.
        after_list = True
        while not cancel.cancelled():
            if watch is None:
                watch = self._open_watch()
                if watch is None:
                    continue  # refused (and backed off), or stopped
            start_rv = self._last_sync_rv
            started = clock.now()
            count = 0
            error: Exception | None = None
            try:
                count = self._handle_watch(watch, "" if after_list else start_rv)
            except Exception as err:
                error = err
            after_list = False
            working, stopped_for = self._close_watch(watch)
            watch = None
            if cancel.cancelled():
                return
            if error is not None:
                verdict = classify(error)
                if verdict.relist or working:
                    self._restart(verdict.reason)
                if isinstance(error, ReplayedWatchError):
                    self._replays_seen += 1
                    if self._replays_seen == 1:
                        log.info(
                            "%s: %s; relisting (and after every such re-watch)", self.name, error
                        )
                if verdict.relist:
                    raise error
                # UNAVAILABLE: the server went away. A watch that worked is re-opened at once
                # from the last revision; one that never worked is a failed attempt.
                self.health.failed(error)
                if not working and clock.wait(cancel.event, self._backoff.next_delay()):
                    return
                continue
            if stopped_for == SILENT:
                # Silent for the inactivity timeout: an idle server or a frozen stream? A relist
                # tells (and repairs the cache); the next watch follows that list.
                self._restart("inactivity")
                self._progress_check()
                after_list = True
                continue
            if count == 0 and clock.now() - started < _VERY_SHORT_WATCH:
                self._restart("very_short")
                raise VeryShortWatchError(
                    f"{self.name}: watch ended after less than {_VERY_SHORT_WATCH:.0f} s "
                    "without any event"
                )
            self._restart("closed")

    def _open_watch(self) -> WatchInterface[T] | None:
        """Open a watch from the last revision; None if the server refused it (after backing off,
        client-go's retry of a watch that cannot start) or the reflector was stopped."""
        options = ListOptions(
            resource_version=self._last_sync_rv,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_seconds(),
        )
        self.stats.watch_attempts += 1
        try:
            watch = self._lw.watch(options)
        except Exception as err:
            if self._cancel.cancelled():
                return None
            if classify(err).relist:
                raise
            # Refused, not broken (UNAVAILABLE): back off, then try the watch again.
            self.health.failed(err)
            self._clock.wait(self._cancel.event, self._backoff.next_delay())
            return None
        return watch if self._set_watch(watch) else None

    def _handle_watch(self, watch: WatchInterface[T], replay_below: str = "") -> int:
        """Feed one watch's events into the store; return how many arrived. The hot loop.

        client-go's ``handleWatch``. Returns when the watch ends cleanly or is stopped; raises
        what ended it otherwise. With ``replay_below`` (the revision the watch asked for), an
        ADDED event no newer than it raises :class:`ReplayedWatchError` before it is applied.
        """
        store = self._store
        add, update, delete = store.add, store.update, store.delete
        health = self.health
        events = self.stats.events
        # Bound once: the real clock's now is time.monotonic itself, called once per event.
        now = self._clock.now
        added, modified, deleted, bookmark = (
            EventType.ADDED,
            EventType.MODIFIED,
            EventType.DELETED,
            EventType.BOOKMARK,
        )
        event_names = _EVENT_NAMES
        count = 0
        last_cls: type | None = None
        rv_of: Callable[[Any], Any] = resource_version_of
        for event in watch:
            if count:
                health.last_activity = now()  # the lock-free per-event write (see its docs)
            else:
                health.watch_delivered()  # the first one: the watch works
            count += 1
            etype = event.type
            obj = event.object
            cls = type(obj)
            if cls is not last_cls:
                # Direct readers for types that allow it (GPUs): see cache.keys.
                last_cls = cls
                rv_of = header_accessors(cls).resource_version
            if etype is modified:
                update(obj)
            elif etype is added:
                if replay_below and revision_newer(rv_of(obj), replay_below) is False:
                    raise ReplayedWatchError(
                        f"server replayed its state (ADDED at revision {rv_of(obj)}) on a watch "
                        f"from revision {replay_below}: it ignores requested revisions"
                    )
                add(obj)
            elif etype is deleted:
                delete(obj)
            elif etype is bookmark:
                store.bookmark(rv_of(obj))
            name = event_names[etype]  # not etype.value: an enum property is Python code
            events[name] = events.get(name, 0) + 1
            rv = rv_of(obj)
            if rv:
                current = self._last_sync_rv
                # Equal-length decimal revisions compare as strings: the usual case, inline.
                if len(rv) == len(current) and rv.isdigit() and current.isdigit():
                    if rv > current:
                        self._last_sync_rv = rv
                elif self._newer_revision(rv, current):
                    self._last_sync_rv = rv
        return count
