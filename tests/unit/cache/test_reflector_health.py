"""ReflectorHealth on a fake clock: what silence, a progress check, "no working watch", an outage
and a recovery are, and the one log line per state change (issues 10 and 13)."""

from __future__ import annotations

import logging

import pytest

from nvinformers.cache import ReflectorHealth
from nvinformers.cache._reflector_health import RECOVERED_AFTER
from nvinformers.clock import FakeClock
from nvinformers.errors import ExpiredError, ServiceUnavailableError

LOGGER = "nvinformers.cache.reflector"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, outage_grace: float = 5.0) -> tuple[ReflectorHealth, list[str]]:
    wakes: list[str] = []
    health = ReflectorHealth(
        "gpus", clock=clock, outage_grace=outage_grace, wake=lambda: wakes.append("wake")
    )
    health.started()
    return health, wakes


def synced(health: ReflectorHealth) -> None:
    """A list, then a watch that delivers."""
    health.list_started()
    health.list_ended(ok=True)
    health.watch_opened()
    health.watch_delivered()


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_silence_is_not_reset_by_restarts_and_alone_is_no_problem(clock: FakeClock) -> None:
    """Issue 13: an idle device-apiserver sends no bookmark; silence alone was reported after
    watch_inactivity_timeout (issue 10), so every idle node turned unhealthy. A progress check
    decides now; silence still counts across restarts."""
    health, _ = make(clock)
    synced(health)
    for _ in range(500):  # a watch restarted every second, delivering nothing
        clock.step(1.0)
        health.watch_ended()
        health.watch_opened()
    report = health.report()
    assert report.problem is None
    assert report.seconds_since_last_event == 500.0 and report.watching


def test_a_check_that_found_the_cache_current_counts_as_a_bookmark(clock: FakeClock) -> None:
    health, wakes = make(clock)
    synced(health)
    clock.step(360.0)
    health.progress_check_due()
    health.watch_ended()
    health.list_started()
    clock.step(0.5)
    health.list_ended(ok=True, activity=False)  # the check's list is no activity by itself
    assert health.report().seconds_since_last_event == 360.5
    wakes.clear()
    health.progress_checked(0)
    assert wakes  # the supervisor re-checks
    report = health.report()
    assert report.problem is None and report.seconds_since_last_event == 0.0


def test_a_check_that_changed_objects_reports_the_silence_until_the_next_event(
    clock: FakeClock,
) -> None:
    health, _ = make(clock)
    synced(health)
    clock.step(360.0)
    health.progress_checked(2)
    assert health.report().problem == (
        "watch delivered nothing for 360.0 s while the server changed 2 objects (found by a "
        "relist, which repaired the cache)"
    )
    clock.step(360.0)
    health.progress_checked(1)  # the next check: still frozen, the counts add up
    report = health.report()
    assert report.problem == (
        "watch delivered nothing for 720.0 s while the server changed 3 objects (found by a "
        "relist, which repaired the cache)"
    )
    assert report.seconds_since_last_event == 720.0
    clock.step(1.0)
    health.last_activity = clock.now()  # an event (the run thread's lock-free write)
    assert health.report().problem is None
    clock.step(360.0)
    health.progress_checked(1)  # a new silence counts from 0 again
    assert health.report().problem == (
        "watch delivered nothing for 360.0 s while the server changed 1 object (found by a "
        "relist, which repaired the cache)"
    )
    health.progress_checked(0)  # a current check explains the silence
    assert health.report().problem is None


def test_a_check_not_started_within_the_grace_is_a_problem(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The run thread stuck (a transform that never returns) leaves the silent watch unchecked,
    and the frozen cache would go unreported."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    health, _ = make(clock, outage_grace=5.0)
    synced(health)
    clock.step(360.0)
    health.progress_check_due()
    assert health.check() == 5.0
    clock.step(5.0)
    health.check()
    assert lines(caplog) == [
        (
            "WARNING",
            "gpus: watch silent for 365.0 s (no event, no bookmark), and the progress check "
            "due 5.0 s ago has not started",
        )
    ]
    health.watch_ended()  # the run thread took the watch back: the check runs
    health.list_started()
    health.list_ended(ok=True, activity=False)
    health.progress_checked(0)
    health.watch_opened()
    clock.step(RECOVERED_AFTER)
    assert health.report().problem is None


def test_no_working_watch_counts_from_the_end_of_the_last_working_one(clock: FakeClock) -> None:
    health, _ = make(clock, outage_grace=5.0)
    synced(health)
    clock.step(100.0)
    health.watch_ended()  # the watch worked: the outage starts now
    health.noted(ExpiredError("too old"))
    clock.step(1.0)
    health.list_started()  # a relist that hangs
    clock.step(3.9)
    assert health.report().problem is None  # within the grace
    clock.step(0.1)
    report = health.report()
    assert report.problem is not None and report.problem.startswith(
        "no working watch for 5.0 s (list in flight for 4.0 s; last error: ExpiredError"
    )
    assert report.seconds_down == 5.0 and not report.watching


def test_a_watch_works_once_it_delivers_or_stays_open_a_second(clock: FakeClock) -> None:
    health, _ = make(clock, outage_grace=0.5)
    synced(health)
    health.watch_ended()
    health.watch_opened()
    # Steps that are binary fractions, so that "open exactly RECOVERED_AFTER" is exact in floats.
    clock.step(RECOVERED_AFTER - 0.25)
    health.watch_ended()  # failed before it worked: still down since the first one ended
    health.watch_opened()
    clock.step(RECOVERED_AFTER)
    assert health.report().seconds_down is None  # this one stayed open: it works


def test_an_outage_is_one_warning_and_one_info_once_the_recovery_held(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    health, _ = make(clock, outage_grace=5.0)
    synced(health)
    health.watch_ended()
    for _ in range(4):
        health.failed(ServiceUnavailableError("down"))
        clock.step(2.0)
    assert health.failures == 4 and health.in_outage
    health.watch_opened()
    health.watch_delivered()  # back at t=8
    clock.step(4.9)
    assert health.check() == pytest.approx(0.1)  # the recovery is due in 0.1 s
    clock.step(0.1)
    health.check()
    assert (health.in_outage, health.failures) == (False, 0)
    logged = [(level, text) for level, text in lines(caplog) if level != "DEBUG"]
    assert logged == [
        ("WARNING", "gpus: list/watch failing: down; retrying with backoff"),
        ("INFO", "gpus: list/watch recovered after 4 failed attempts over 8.0 s"),
    ]


def test_a_recovery_that_does_not_hold_is_not_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    health, _ = make(clock, outage_grace=3.0)
    synced(health)
    for _ in range(5):  # flapping: each watch works for 2 s, then breaks
        clock.step(2.0)
        health.watch_ended()
        health.failed(ServiceUnavailableError("flapped"))
        health.watch_opened()
        health.watch_delivered()
        health.check()
    assert [level for level, _ in lines(caplog)] == ["WARNING"]
    assert health.report().problem is None  # a working watch most of the time: healthy
    clock.step(3.0)
    health.check()
    assert [level for level, _ in lines(caplog)] == ["WARNING", "INFO"]


def test_a_hang_without_any_failure_is_logged_when_health_turns_false(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    health, wakes = make(clock, outage_grace=5.0)
    synced(health)
    wakes.clear()
    health.watch_ended()
    assert wakes  # a new deadline: the supervisor must re-check
    health.list_started()
    assert health.check() == 5.0
    clock.step(5.0)
    assert health.check() is None  # nothing more is due: the outage is logged
    assert lines(caplog) == [
        ("WARNING", "gpus: no working watch for 5.0 s (list in flight for 5.0 s)"),
    ]
    health.list_ended(ok=True)
    health.watch_opened()
    assert health.check() == RECOVERED_AFTER  # the new watch works after a second
    clock.step(RECOVERED_AFTER)
    assert health.check() == 5.0  # then the recovery must hold for the grace
    clock.step(5.0)
    health.check()
    assert lines(caplog)[-1] == ("INFO", "gpus: list/watch recovered after 6.0 s")


def test_a_recovery_goes_on_through_a_progress_check(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A watch stopped for a progress check is no interruption of a recovery (a check every
    watch_inactivity_timeout shorter than the grace would otherwise never let one be logged)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    health, _ = make(clock, outage_grace=5.0)
    synced(health)
    health.watch_ended()
    health.failed(ServiceUnavailableError("down"))
    clock.step(2.0)
    health.watch_opened()
    health.watch_delivered()  # back: the recovery starts
    clock.step(3.0)
    health.progress_check_due()
    health.watch_ended()  # stopped for the check
    health.list_started()
    health.list_ended(ok=True, activity=False)
    health.progress_checked(0)
    health.watch_opened()
    clock.step(2.0)
    health.check()
    assert lines(caplog)[-1] == (
        "INFO",
        "gpus: list/watch recovered after 1 failed attempts over 2.0 s",
    )


def test_a_frozen_stream_starts_an_outage_and_activity_ends_it(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    health, _ = make(clock, outage_grace=2.0)
    synced(health)
    assert health.check() is None  # silence alone brings no deadline
    clock.step(10.0)
    health.progress_checked(4)
    health.check()
    clock.step(10.0)
    health.progress_checked(1)  # still frozen: no second WARNING
    health.check()
    assert lines(caplog) == [
        (
            "WARNING",
            "gpus: watch delivered nothing for 10.0 s while the server changed 4 objects "
            "(found by a relist, which repaired the cache)",
        )
    ]
    health.watch_delivered()
    clock.step(2.0)
    health.check()
    assert lines(caplog)[-1] == ("INFO", "gpus: list/watch recovered after 20.0 s")


def test_routine_errors_are_kept_but_are_no_failure(clock: FakeClock) -> None:
    health, _ = make(clock)
    health.noted(ExpiredError("gone"))
    assert health.last_error == "ExpiredError: gone"
    assert health.failures == 0 and not health.in_outage
    with pytest.raises(ValueError, match="outage_grace"):
        ReflectorHealth("x", outage_grace=-1.0)


def test_a_grace_shorter_than_two_seconds_counts_as_two(clock: FakeClock) -> None:
    """A quiet re-watch proves itself after a second: a shorter grace would report every
    routine re-watch of an idle node as an outage."""
    health, _ = make(clock, outage_grace=0.1)
    synced(health)
    health.watch_ended()
    health.watch_opened()  # a routine re-watch on an idle node
    clock.step(RECOVERED_AFTER)
    assert health.report().problem is None
    health.watch_ended()
    clock.step(1.9)
    assert health.report().problem is None
    clock.step(0.1)
    assert health.report().problem is not None
