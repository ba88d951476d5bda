"""The reflector's lists: the classic list, the streaming list, and the progress check's relist.

client-go's ``list``, run by the reflector's run thread; every list replaces the store.

* **Progress check.** A watch that has delivered nothing, not even a bookmark, for
  ``watch_inactivity_timeout`` seconds (counted from its start or from the last activity,
  whichever is later) is either on an idle server or frozen (the silent-hang failure that
  plagues Python watchers: kopf, the official client). Servers that send progress bookmarks to
  idle watches make the difference visible; the device-apiserver does not (its etcd3 storage
  only after a change followed the watch's start, its memory storage never). So the supervisor
  stops the silent watch and the run thread verifies with a relist: a consistent read
  (``resource_version=""``), cancellable and under the source's list timeout, applied to the
  store like any relist. If it changed nothing in the cache, the server was idle: the check
  counts as a bookmark at the list's revision. If it added, updated or deleted objects, the
  stream was frozen while the server changed: the cache is repaired, and health keeps
  reporting the silence (see :mod:`nvinformers.cache._reflector_health`). Either way the watch
  restarts from the list's revision; a check that fails or hangs is an outage like any other.
  The store, not the revision, decides: a server may advance its revision without changing an
  object (kine writes a row when it compacts). Counted in ``stats.progress_checks`` by result
  (``current``, ``stale``, ``failed``).
* **Streaming list** (``use_watch_list=True``, KEP-3157): one watch with ``send_initial_events``;
  the ADDED burst is collected until the bookmark annotated ``k8s.io/initial-events-end``, replaces
  the store, and the same stream continues. Until then it is a list, for health as for logs. It
  falls back to a classic list, as client-go does, when the server refuses it (a bad request or
  an unknown method: classic lists from then on), when the stream fails with any error other
  than UNAVAILABLE or an expired revision (which end the pass as usual), or ends before the
  bookmark; and when the server ignores ``send_initial_events`` (the device-apiserver's memory
  storage): no bookmark within ``initial_events_timeout``, or a change before it (classic lists
  from then on).
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from nvinformers.cache._fifo import AppliedFunc
from nvinformers.cache._listwatch import CancellableLister, ListResult
from nvinformers.cache._open_watch import NO_INITIAL_END, OpenWatch
from nvinformers.cache._revisions import RevisionTracking, revision_newer
from nvinformers.errors import (
    BadRequestError,
    ExpiredError,
    MethodNotSupportedError,
    ServiceUnavailableError,
    StatusError,
)
from nvinformers.options import (
    INITIAL_EVENTS_END_ANNOTATION,
    RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
    ListOptions,
)
from nvinformers.watch import EventType
from nvinformers.watch import Interface as WatchInterface

__all__ = ["ListPhase"]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache._reflector")


class ListPhase(RevisionTracking[T], OpenWatch[T]):
    """client-go's ``list`` and its streaming variant: replace the store with a full list."""

    def _list_reason(self) -> str:
        if not self._first_list_done:
            return "initial"
        if self._last_sync_rv_unavailable:
            return "expired"
        return "relist"

    def _call_list(self, options: ListOptions) -> ListResult[T]:
        lw = self._lw
        if isinstance(lw, CancellableLister):
            result: ListResult[T] = lw.list_with_cancel(options, self._cancel)
            return result
        return lw.list(options)

    def _list(self, progress_check: bool = False) -> None:
        """List and replace the store with the result (client-go's ``list``).

        A progress check (see the module docstring) lists with ``resource_version=""`` (a
        consistent read: the server's current state, not a cache of it, is what the store is
        compared with), is no activity by itself, and asks the store what it changed.
        """
        reason = "progress_check" if progress_check else self._list_reason()
        last = self.health.last_activity
        silence = 0.0 if last is None or not progress_check else self._clock.now() - last
        stats = self.stats
        stats.lists[reason] = stats.lists.get(reason, 0) + 1
        options = ListOptions(
            resource_version="" if progress_check else self._relist_resource_version()
        )
        health = self.health
        health.list_started()
        try:
            result = self._call_list(options)
        except Exception as err:
            health.list_ended(ok=False)
            if not self._cancel.cancelled():
                stats.list_failures += 1
            if isinstance(err, ExpiredError):
                # The revision we asked for is gone: the next attempt reads fresh ("").
                self._last_sync_rv_unavailable = True
            raise
        health.list_ended(ok=True, activity=not progress_check)
        resource_version = result.metadata.resource_version
        on_applied: AppliedFunc | None = None
        if progress_check:

            def on_applied(changes: int) -> None:
                self._progress_checked(changes, resource_version, silence)

        self._listed(list(result.items), resource_version, on_applied)
        log.debug("listed %s at revision %s", self.name, resource_version)

    def _listed(
        self, items: list[Any], resource_version: str, on_applied: AppliedFunc | None = None
    ) -> None:
        """A full list (classic or streamed) arrived: replace the store with it."""
        self._check_revision(resource_version)
        last = self._last_sync_rv
        if last and revision_newer(last, resource_version) is True:
            # A relist asks for a state at least as new as the last revision seen.
            log.warning(
                "%s: the list is at revision %s, older than the last revision seen (%s): the "
                "server's revisions went backwards (a restart that lost its store?); the cache "
                "takes the list as it is",
                self.name,
                resource_version,
                last,
            )
        if on_applied is None:
            self._store.replace(items, resource_version)
        else:
            self._store.replace(items, resource_version, on_applied=on_applied)
        self._last_sync_rv_unavailable = False
        self._last_sync_rv = resource_version
        self._first_list_done = True

    def _progress_check(self) -> None:
        """The open watch delivered nothing for the inactivity timeout (the supervisor stopped
        it): relist to tell an idle server from a frozen stream (see the module docstring).

        Runs on the run thread; the list is cancellable and under the source's list timeout.
        Raises what the list raised: the pass ends, and the outage rules apply.
        """
        try:
            self._list(progress_check=True)
        except Exception:
            if not self._cancel.cancelled():
                checks = self.stats.progress_checks
                checks["failed"] = checks.get("failed", 0) + 1
            raise

    def _progress_checked(self, changes: int, resource_version: str, silence: float) -> None:
        """A progress check's relist was applied and changed ``changes`` objects.

        Called by the store, on whichever thread applied the relist. The health object decides
        what it means and logs the WARNING when a frozen stream starts an outage.
        """
        checks = self.stats.progress_checks
        result = "current" if changes == 0 else "stale"
        checks[result] = checks.get(result, 0) + 1
        self.health.progress_checked(changes)
        log.debug(
            "%s: watch delivered nothing for %.1f s; a list at revision %s %s",
            self.name,
            silence,
            resource_version,
            "found the cache current (an idle server)"
            if changes == 0
            else f"changed {changes} objects in the cache (a frozen stream)",
        )

    def _watch_list(self) -> WatchInterface[T] | None:
        """Streaming list: returns the open watch after the initial events, or None to fall back
        to a classic list (see the module docstring). Until the initial-events-end bookmark the
        stream is a list in flight, for health as for the supervisor, which stops it past
        ``initial_events_timeout``.

        Raises what ends the pass: UNAVAILABLE, an expired revision, a bug.
        """
        reason = self._list_reason()
        stats = self.stats
        options = ListOptions(
            resource_version="" if self._last_sync_rv_unavailable else self._last_sync_rv,
            resource_version_match=RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
            send_initial_events=True,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_seconds(),
        )
        watch: WatchInterface[T] | None = None
        health = self.health
        health.list_started()
        listed = False
        try:
            watch = self._lw.watch(options)
            if not self._set_watch(watch, streaming=True):
                return None
            initial: list[Any] = []
            for event in watch:
                etype = event.type
                if etype is EventType.ADDED:
                    initial.append(event.object)
                    continue
                if etype is EventType.BOOKMARK:
                    annotations = event.object.metadata.annotations  # type: ignore[attr-defined]
                    if annotations.get(INITIAL_EVENTS_END_ANNOTATION) != "true":
                        continue  # a progress bookmark amid the initial events
                    rv = event.object.metadata.resource_version  # type: ignore[attr-defined]
                    stats.lists[reason] = stats.lists.get(reason, 0) + 1
                    health.list_ended(ok=True)
                    listed = True
                    self._listed(initial, rv)
                    self._streamed(watch)
                    return watch
                # A change before the end of the initial events: the server streams a plain
                # watch (it ignores send_initial_events).
                self._watch_list_unsupported = True
                log.warning(
                    "%s: streaming list got %s before the initial-events-end bookmark: the "
                    "server does not follow the streaming-list protocol; using classic lists "
                    "from now on",
                    self.name,
                    etype.value,
                )
                break
            else:
                if self._cancel.cancelled():
                    pass
                elif self._stopped_for(watch) == NO_INITIAL_END:
                    self._watch_list_unsupported = True
                    log.warning(
                        "%s: no initial-events-end bookmark within %g s of a streaming list "
                        "(%d initial events received): the server ignores send_initial_events; "
                        "using classic lists from now on",
                        self.name,
                        self._initial_events_timeout,
                        len(initial),
                    )
                else:
                    log.info(
                        "%s: server ended the streaming list before the initial-events-end "
                        "bookmark; falling back to a classic list",
                        self.name,
                    )
        except (BadRequestError, MethodNotSupportedError) as err:
            log.info(
                "%s: server does not support streaming lists (%s); using classic lists",
                self.name,
                err,
            )
            self._watch_list_unsupported = True
        except ExpiredError:
            self._last_sync_rv_unavailable = True
            raise
        except ServiceUnavailableError:
            raise  # the server is away: a classic list would fail too; back off and retry
        except StatusError as err:
            if self._cancel.cancelled():
                raise
            # client-go: any other error falls back to a classic list ("making progress is
            # better than deadlocking"); the next pass tries streaming again.
            log.log(
                logging.DEBUG if self._watch_list_failed else logging.WARNING,
                "%s: streaming list failed (%s: %s); falling back to a classic list",
                self.name,
                type(err).__name__,
                err,
            )
            self._watch_list_failed = True
        finally:
            if not listed:
                health.list_ended(ok=False)
                if watch is not None:
                    self._close_watch(watch)
        return None
