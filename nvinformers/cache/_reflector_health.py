"""The health of a reflector's link to its server: activity, outage and recovery, in one place.

An informer's health report (:func:`informer_health`) is the link report plus what the informer
alone knows: synced and stopped.

:class:`ReflectorHealth` is the single owner of that state. The reflector's run thread reports
what happens (a list starts or ends, a watch opens, delivers, ends, an attempt fails); its
supervisor thread calls :meth:`ReflectorHealth.check` at the deadlines this object hands out;
``informer.health()``, the informer metrics and the log lines all read it. Nothing else keeps a
copy of these rules.

Definitions:

* **Activity** is data from the server: an event or bookmark on any watch, a successful list, or
  a progress check that found the cache current. *Silence* is the time since the last activity.
  It is not reset by a watch restart: a server whose watches stay open but deliver nothing is
  silent however often they are restarted.
* **A progress check** tells an idle server from a frozen stream. When the open watch has
  delivered nothing for the reflector's ``watch_inactivity_timeout``, the supervisor stops it
  (:meth:`ReflectorHealth.progress_check_due`) and the run thread relists. A relist that changes
  nothing in the cache explains the silence: it counts as a bookmark
  (:meth:`ReflectorHealth.progress_checked` with 0). A relist that changed K objects means the
  server changed while the stream said nothing: the cache is repaired, but the silence keeps
  counting, and is a problem until the next event, bookmark, list or current check. Silence
  alone is no problem: an idle server whose storage sends no progress bookmarks (the
  device-apiserver's) is silent for as long as nothing changes.
* **A working watch** is an open watch that delivered something, or that stayed open
  :data:`RECOVERED_AFTER` seconds (a failing one fails within milliseconds; an idle node may send
  nothing for minutes). *No working watch* is counted from the moment the last working watch
  ended (or the reflector started), whether or not a list or a re-watch is in flight.
* **The problem** (what ``health()`` reports, the informer adds "not synced" and "stopped"):
  no working watch for at least ``outage_grace`` seconds (this covers a progress check that
  hangs or fails: the silent watch was stopped for it); else a silence that a progress check
  found unexplained ("watch delivered nothing for N s while the server changed K objects");
  else a progress check due for ``outage_grace`` seconds that has not started (the run thread
  is stuck, for example in a transform that never returns); else none.
* **An outage**, as the logs tell it, begins with the first failed attempt, or when a problem
  appears without any failure (a hung relist, a frozen stream): one WARNING. Further failures
  are logged at DEBUG. It ends once the link has been good (a working watch, no problem) for
  ``outage_grace`` seconds without interruption: one INFO. A recovery shorter than that (a
  flapping stream) is not a recovery in the logs.

Thread-safety: every method may be called from any thread; one lock guards all the state, except
:attr:`ReflectorHealth.last_activity`, which the run thread writes once per watch event without
the lock (a float attribute store is atomic; the hot path pays no lock) and everyone else reads.
Log records are emitted after the lock is released. No method blocks beyond the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from nvinformers.clock import REAL_CLOCK, Clock

__all__ = [
    "ReflectorHealth",
    "LinkReport",
    "InformerHealth",
    "informer_health",
    "RECOVERED_AFTER",
    "DEFAULT_OUTAGE_GRACE",
    "MIN_OUTAGE_GRACE",
]

log = logging.getLogger("nvinformers.cache.reflector")

#: A watch that has stayed open this long without failing is working, even if nothing arrived.
RECOVERED_AFTER = 1.0
#: Seconds without a working watch before health reports it; also how long a recovery must hold
#: before the logs call it one.
DEFAULT_OUTAGE_GRACE = 5.0
#: The least grace honoured: a quiet re-watch proves itself only after RECOVERED_AFTER, so a
#: shorter grace would report every routine re-watch of an idle node as an outage.
MIN_OUTAGE_GRACE = 2 * RECOVERED_AFTER


@dataclass(frozen=True, slots=True)
class LinkReport:
    """A point-in-time view of a reflector's link (see :meth:`ReflectorHealth.report`).

    Attributes:
        problem: why the cache is not being kept current ("no working watch for 6.0 s (...)",
            "watch delivered nothing for 12.3 s while the server changed 2 objects"), or None.
        watching: a watch stream is open.
        seconds_since_last_event: silence: seconds since the last event or bookmark on any
            watch, the last list, or the last progress check that found the cache current
            (None before the first).
        seconds_down: seconds without a working watch (None while one works).
        last_error: the last error a list or watch ended with ("" before any).
        failures: failed attempts in the current outage (0 outside one).
    """

    problem: str | None
    watching: bool
    seconds_since_last_event: float | None
    seconds_down: float | None
    last_error: str
    failures: int


@dataclass(frozen=True, slots=True)
class InformerHealth:
    """A point-in-time health report (see :meth:`SharedIndexInformer.health`).

    Attributes:
        healthy: ``reason == "ok"``.
        reason: "ok", "not synced", "stopped", "no working watch for 6.1 s (...)", "watch
            delivered nothing for 400.2 s while the server changed 3 objects (...)", or "watch
            silent for 400.2 s (...), and the progress check due 5.0 s ago has not started".
        synced: the first list is in the cache.
        watching, seconds_since_last_event, seconds_down, last_error: the reflector's, as in
            :class:`LinkReport` (a watch stream that is open may not be working yet).
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


class ReflectorHealth:
    """Activity, outage and recovery of one reflector (see the module docstring).

    Args:
        name: the reflector's name, for log lines.
        clock: time source.
        outage_grace: seconds without a working watch before it is a problem; how long a due
            progress check may wait for the run thread; and how long a recovery must hold
            before it is logged. Values under :data:`MIN_OUTAGE_GRACE` (2 s) count as that.
        wake: called (without the lock) when a new deadline may be earlier than the one
            :meth:`check` last returned, so that the supervisor re-checks.
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock = REAL_CLOCK,
        outage_grace: float = DEFAULT_OUTAGE_GRACE,
        wake: Callable[[], None] | None = None,
    ) -> None:
        if not outage_grace >= 0:
            raise ValueError(f"outage_grace must be >= 0, got {outage_grace!r}")
        self.name = name
        self._clock = clock
        self._grace = max(outage_grace, MIN_OUTAGE_GRACE)
        self._wake = wake
        self._lock = threading.Lock()
        #: Clock time of the last event, bookmark, list or current progress check (None before
        #: any). Written by the run thread without the lock (see the module docstring), and
        #: under it by the other reports; read by anyone.
        self.last_activity: float | None = None
        # Guarded by _lock:
        self._watch_opened: float | None = None  # the open watch's start, None when none
        self._watch_working = False  # the open watch delivered or stayed open RECOVERED_AFTER
        self._no_watch_since: float | None = clock.now()  # None while a watch works
        self._list_since: float | None = None  # a list in flight since
        self._last_error = ""
        self._outage_since: float | None = None  # the logged outage began (None: none)
        self._failures = 0  # failed attempts in the logged outage
        self._good_since: float | None = None  # in an outage: the link has worked since
        self._check_due: float | None = None  # the supervisor stopped a silent watch for a check
        # The last check that found changes; frozen while no activity came after it.
        self._frozen_at: float | None = None
        self._frozen_changes = 0  # objects changed, found by the checks of this silence

    # -------------------------------------------------------------- what the run thread reports

    def started(self) -> None:
        """The reflector starts: no working watch from now on (until one works)."""
        with self._lock:
            self._no_watch_since = self._clock.now()

    def list_started(self) -> None:
        with self._lock:
            self._list_since = self._clock.now()

    def list_ended(self, ok: bool, activity: bool = True) -> None:
        """A list returned (``ok``: with a result) or raised.

        A result is activity, except a progress check's (``activity=False``): what it found
        decides, through :meth:`progress_checked`.
        """
        now = self._clock.now()
        with self._lock:
            self._list_since = None
            if ok and activity:
                self.last_activity = now

    def watch_opened(self) -> None:
        """A watch was opened; it works once it delivers or stays open RECOVERED_AFTER."""
        with self._lock:
            self._watch_opened = self._clock.now()
            self._watch_working = False
        self._notify()

    def watch_delivered(self) -> None:
        """The open watch delivered its first event or bookmark: it works.

        Called once per watch by the run thread (later events only set :attr:`last_activity`).
        """
        now = self._clock.now()
        with self._lock:
            self.last_activity = now
            if self._watch_opened is not None and not self._watch_working:
                self._working_locked(now)
        self._notify()

    def watch_ended(self) -> bool:
        """The open watch ended (any reason). Returns whether it had been working."""
        now = self._clock.now()
        with self._lock:
            # Stopped for a progress check: the run thread has the watch back and checks now.
            checking = self._check_due is not None
            self._check_due = None
            self._confirm_locked(now)
            working = self._watch_working
            if working:
                self._no_watch_since = now
                if not checking:
                    # A recovery in progress goes on through a check (unless it hangs: a
                    # problem ends the recovery); any other end interrupts it.
                    self._good_since = None
            self._watch_opened = None
            self._watch_working = False
        self._notify()
        return working

    def progress_check_due(self) -> None:
        """The supervisor stopped the open watch, silent for the inactivity timeout: the run
        thread is to check progress with a relist. If it has not taken the watch back
        (:meth:`watch_ended`) within ``outage_grace``, that is a problem."""
        now = self._clock.now()
        with self._lock:
            if self._check_due is None:
                self._check_due = now
        self._notify()

    def progress_checked(self, changes: int) -> None:
        """A progress check's relist was applied and added, updated or deleted ``changes``
        objects.

        0: the cache was current, the server idle; that is activity (a bookmark at the list's
        revision). More: the stream was frozen while the server changed; the silence goes on
        (the cache is repaired) and is a problem until the next activity. May be called from
        any thread (whichever applied the relist).
        """
        now = self._clock.now()
        with self._lock:
            if changes == 0:
                self.last_activity = now
            else:
                last = self.last_activity
                if self._frozen_at is None or (last is not None and last >= self._frozen_at):
                    self._frozen_changes = 0  # a new silence
                self._frozen_at = now
                self._frozen_changes += changes
        self._notify()

    def noted(self, err: BaseException) -> None:
        """A routine error ended a list or watch (expiry, a very short or replayed watch): it is
        kept as the last error, and is no failure."""
        with self._lock:
            self._last_error = _describe(err)

    def failed(self, err: BaseException) -> None:
        """An attempt failed: the first failure of an outage is logged at WARNING, the others
        at DEBUG."""
        now = self._clock.now()
        with self._lock:
            self._last_error = _describe(err)
            self._failures += 1
            self._good_since = None
            first = self._outage_since is None
            if first:
                self._outage_since = now
        if first:
            log.warning("%s: list/watch failing: %s; retrying with backoff", self.name, err)
        else:
            log.debug("%s: list/watch still failing: %s", self.name, err)

    # ---------------------------------------------------------------------- deadlines and reads

    def check(self) -> float | None:
        """Apply what time alone changes (a watch that stayed open, a problem that began, a
        recovery that held), logging each change once. Called by the supervisor.

        Returns:
            Seconds until the next such change may be due (None: none is pending). A later
            report may bring a deadline forward; ``wake`` is then called.
        """
        records, _ = self._advance()
        _emit(records)
        with self._lock:
            return self._next_deadline_locked(self._clock.now())

    def report(self) -> LinkReport:
        """The link as of now (applying, and logging, what time alone changed)."""
        records, report = self._advance()
        _emit(records)
        return report

    @property
    def failures(self) -> int:
        """Failed attempts in the current outage (0 outside one)."""
        with self._lock:
            return self._failures

    @property
    def last_error(self) -> str:
        with self._lock:
            return self._last_error

    @property
    def in_outage(self) -> bool:
        """An outage has been logged and its recovery not yet."""
        with self._lock:
            return self._outage_since is not None

    # ---------------------------------------------------------------------------- internals

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake()

    def _working_locked(self, since: float) -> None:
        self._watch_working = True
        self._no_watch_since = None
        if self._outage_since is not None and self._good_since is None:
            self._good_since = since

    def _confirm_locked(self, now: float) -> None:
        """An open watch that stayed open RECOVERED_AFTER seconds works (as of that moment)."""
        opened = self._watch_opened
        if opened is not None and not self._watch_working and now - opened >= RECOVERED_AFTER:
            self._working_locked(opened + RECOVERED_AFTER)

    def _problem_locked(self, now: float) -> tuple[str, float] | None:
        """(the problem, when it began), or None."""
        down_since = self._no_watch_since
        if down_since is not None and now - down_since >= self._grace:
            if self._list_since is not None:
                detail = f"list in flight for {now - self._list_since:.1f} s"
                if self._last_error:
                    detail += f"; last error: {self._last_error}"
            elif self._last_error:
                detail = self._last_error
            elif self._watch_opened is not None:
                detail = f"a watch open for {now - self._watch_opened:.1f} s, nothing received"
            else:
                detail = "no watch open"
            return f"no working watch for {now - down_since:.1f} s ({detail})", down_since
        last = self.last_activity
        frozen = self._frozen_at
        # Frozen until activity follows the last check that found changes (a pure read: a
        # later check starts a new count by the same rule, in progress_checked).
        if frozen is not None and (last is None or last < frozen):
            since = frozen if last is None else last
            changed = self._frozen_changes
            return (
                f"watch delivered nothing for {now - since:.1f} s while the server changed "
                f"{changed} object{'' if changed == 1 else 's'} (found by a relist, which "
                "repaired the cache)",
                since,
            )
        due = self._check_due
        if due is not None and now - due >= self._grace:
            since = due if last is None else last
            return (
                f"watch silent for {now - since:.1f} s (no event, no bookmark), and the "
                f"progress check due {now - due:.1f} s ago has not started",
                since,
            )
        return None

    def _advance(self) -> tuple[list[tuple[int, str]], LinkReport]:
        now = self._clock.now()
        records: list[tuple[int, str]] = []
        with self._lock:
            self._confirm_locked(now)
            problem = self._problem_locked(now)
            if (
                problem is None
                and self._outage_since is not None
                and self._good_since is None
                and self._watch_working
            ):
                # A watch that kept working through a silence: the activity that ended the
                # silence starts the recovery.
                last = self.last_activity
                self._good_since = last if last is not None and last > self._outage_since else now
            if problem is not None:
                self._good_since = None
                if self._outage_since is None:
                    self._outage_since = problem[1]
                    records.append((logging.WARNING, f"{self.name}: {problem[0]}"))
            elif (
                self._outage_since is not None
                and self._good_since is not None
                and now - self._good_since >= self._grace
            ):
                took = self._good_since - self._outage_since
                if self._failures:
                    text = (
                        f"{self.name}: list/watch recovered after {self._failures} failed "
                        f"attempts over {took:.1f} s"
                    )
                else:  # a hang or a silence: nothing failed, it just did not work
                    text = f"{self.name}: list/watch recovered after {took:.1f} s"
                records.append((logging.INFO, text))
                self._outage_since = None
                self._good_since = None
                self._failures = 0
            last = self.last_activity
            down = self._no_watch_since
            report = LinkReport(
                problem=None if problem is None else problem[0],
                watching=self._watch_opened is not None,
                seconds_since_last_event=None if last is None else max(0.0, now - last),
                seconds_down=None if down is None else max(0.0, now - down),
                last_error=self._last_error,
                failures=self._failures,
            )
        return records, report

    def _next_deadline_locked(self, now: float) -> float | None:
        deadlines: list[float] = []
        if self._watch_opened is not None and not self._watch_working:
            deadlines.append(self._watch_opened + RECOVERED_AFTER)
        if self._outage_since is None:
            if self._no_watch_since is not None:
                deadlines.append(self._no_watch_since + self._grace)
            if self._check_due is not None:
                deadlines.append(self._check_due + self._grace)
        elif self._good_since is not None:
            deadlines.append(self._good_since + self._grace)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _emit(records: list[tuple[int, str]]) -> None:
    for level, message in records:
        log.log(level, "%s", message)
