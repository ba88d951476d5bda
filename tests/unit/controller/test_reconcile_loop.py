"""The reconcile table, panics and concurrency of Controller (requests added to its queue)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.clock import FakeClock
from nvinformers.controller import (
    Controller,
    ReconcilePanicError,
    Request,
    Result,
    TerminalError,
    is_terminal_error,
)
from nvinformers.workqueue import ItemExponentialFailureRateLimiter
from tests.unit.cache.scripted import eventually

from .conftest import WAIT, RecordingReconciler, controller_threads, sample

A = Request("a")


class Panic(BaseException):
    """A BaseException that is not an Exception: the Python counterpart of a Go panic."""


def results(registry: CollectorRegistry, name: str = "ctl") -> dict[str, float | None]:
    return {
        r: sample(registry, "controller_runtime_reconcile_total", controller=name, result=r)
        for r in ("success", "error", "requeue", "requeue_after")
    }


def started(controller: Controller) -> Controller:
    controller.start()
    assert controller.wait_for_started(WAIT)
    return controller


def test_success_forgets_the_failure_history(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    rec = RecordingReconciler()
    rec.script("a", RuntimeError("one"), RuntimeError("two"))
    ctl = started(make_controller(reconciler=rec))
    ctl.queue.add(A)
    assert rec.wait_for_count("a", 3)
    assert eventually(lambda: results(registry)["success"] == 1.0)
    assert results(registry) == {"success": 1, "error": 2, "requeue": 0, "requeue_after": 0}
    assert ctl.queue.num_requeues(A) == 0


def test_an_error_is_retried_after_the_rate_limiters_delay(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    clock = FakeClock()
    rec = RecordingReconciler()
    rec.script("a", RuntimeError("boom"))
    limiter = ItemExponentialFailureRateLimiter[Request](1.0, 60.0)
    ctl = started(make_controller(reconciler=rec, clock=clock, rate_limiter=limiter))
    ctl.queue.add(A)
    # The retry waits on the fake clock for the limiter's first delay (1 s).
    assert clock.block_until_waiters(deadline=1.0)
    assert rec.count("a") == 1
    assert ctl.queue.num_requeues(A) == 1
    assert sample(registry, "workqueue_retries_total", name="ctl") == 1.0
    clock.step(1.0)
    assert rec.wait_for_count("a", 2)
    assert eventually(lambda: ctl.queue.num_requeues(A) == 0)
    assert results(registry)["error"] == 1.0
    assert sample(registry, "controller_runtime_reconcile_errors_total", controller="ctl") == 1.0


def _wrapped_terminal() -> Exception:
    outer = RuntimeError("while applying the spec")
    outer.__cause__ = TerminalError("bad spec")
    return outer


@pytest.mark.parametrize(
    "make_error",
    [
        lambda: TerminalError("bad spec"),
        _wrapped_terminal,
        lambda: ExceptionGroup("several", [ValueError("x"), TerminalError("bad spec")]),
    ],
    ids=["direct", "as-cause", "in-group"],
)
def test_a_terminal_error_is_counted_logged_once_and_not_retried(
    make_controller: Callable[..., Controller],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    make_error: Callable[[], Exception],
) -> None:
    clock = FakeClock()
    rec = RecordingReconciler()
    rec.script("a", make_error())
    limiter = ItemExponentialFailureRateLimiter[Request](1.0, 60.0)
    ctl = started(make_controller(reconciler=rec, clock=clock, rate_limiter=limiter))
    with caplog.at_level(logging.ERROR, logger="nvinformers.controller"):
        ctl.queue.add(A)
        assert eventually(
            lambda: (
                sample(
                    registry, "controller_runtime_terminal_reconcile_errors_total", controller="ctl"
                )
                == 1.0
            )
        )
        # The worker went on: a later request is reconciled; "a" was not re-queued, now or later.
        ctl.queue.add(Request("z"))
        assert rec.wait_for_count("z", 1)
    assert clock.waiters() == []  # no delayed retry is pending
    assert ctl.queue.num_requeues(A) == 0
    assert rec.count("a") == 1
    assert results(registry)["error"] == 1.0
    assert sample(registry, "controller_runtime_reconcile_errors_total", controller="ctl") == 1.0
    terminal_logs = [r for r in caplog.records if "terminal error" in r.getMessage()]
    assert len(terminal_logs) == 1
    assert "a" in terminal_logs[0].getMessage()
    assert terminal_logs[0].exc_info is not None


def test_an_implicit_context_is_not_a_terminal_cause() -> None:
    try:
        try:
            raise TerminalError("bad spec")
        except TerminalError:
            raise RuntimeError("cleanup failed") from None
    except RuntimeError as exc:
        suppressed = exc
    try:
        try:
            raise TerminalError("bad spec")
        except TerminalError:
            raise RuntimeError("cleanup failed")  # noqa: B904 - the implicit context is the point
    except RuntimeError as exc:
        implicit = exc
    assert implicit.__context__ is not None
    assert not is_terminal_error(implicit)
    assert not is_terminal_error(suppressed)
    assert not is_terminal_error(ValueError("x"))
    assert is_terminal_error(_wrapped_terminal())


def test_requeue_after_forgets_then_adds_after_the_delay(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    clock = FakeClock()
    rec = RecordingReconciler()
    rec.script("a", RuntimeError("first"), Result(requeue_after=5.0))
    limiter = ItemExponentialFailureRateLimiter[Request](1.0, 60.0)
    ctl = started(make_controller(reconciler=rec, clock=clock, rate_limiter=limiter))
    ctl.queue.add(A)
    assert clock.block_until_waiters(deadline=1.0)
    assert ctl.queue.num_requeues(A) == 1
    clock.step(1.0)
    # Second pass asks to come back in 5 s: the failure history is forgotten first.
    assert clock.block_until_waiters(deadline=6.0)
    assert rec.count("a") == 2
    assert ctl.queue.num_requeues(A) == 0
    clock.step(4.9)
    assert clock.block_until_waiters(deadline=6.0)
    assert rec.count("a") == 2
    clock.step(0.1)
    assert rec.wait_for_count("a", 3)
    assert eventually(lambda: results(registry)["success"] == 1.0)
    assert results(registry) == {"success": 1, "error": 1, "requeue": 0, "requeue_after": 1}


def test_exceptions_and_bad_results_never_kill_a_worker(
    make_controller: Callable[..., Controller],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = RecordingReconciler()
    rec.script("bad", ValueError("broken"))
    rec.script("weird", "not a result")
    rec.script("none", lambda request: None)  # type: ignore[return-value]
    ctl = started(make_controller(reconciler=rec, max_concurrent_reconciles=1))
    with caplog.at_level(logging.ERROR, logger="nvinformers.controller"):
        for name in ("bad", "weird", "none", "good"):
            ctl.queue.add(Request(name))
        assert rec.wait_for_count("good", 1)
        # Each failed request is retried (zero-delay limiter) and then succeeds.
        for name in ("bad", "weird", "none"):
            assert rec.wait_for_count(name, 2)
        assert eventually(lambda: results(registry)["success"] == 4.0)
    assert results(registry)["error"] == 3.0
    assert sorted(controller_threads("ctl")) == [
        "nvinformers-controller-ctl",
        "nvinformers-controller-ctl-worker-0",
    ]
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "reconcile of bad failed, retrying with backoff: broken" in messages
    assert (
        "returned 'not a result' (str); it must return a nvinformers.controller.Result" in messages
    )
    assert "returned None (NoneType)" in messages


def test_an_async_reconciler_is_rejected_with_a_clear_error() -> None:
    class AsyncReconciler:
        async def reconcile(self, request: Request) -> Result:
            return Result()

    with pytest.raises(TypeError, match="is async"):
        Controller("ctl", AsyncReconciler(), registry=CollectorRegistry())  # type: ignore[arg-type]


def test_a_reconcile_function_is_accepted(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    seen: list[Request] = []
    done = threading.Event()

    def reconcile(request: Request) -> Result:
        seen.append(request)
        done.set()
        return Result()

    ctl = started(make_controller(reconciler=reconcile))
    ctl.queue.add(Request("gpu-0", namespace="ns"))
    assert done.wait(WAIT)
    assert seen == [Request("gpu-0", namespace="ns")]


def test_a_recovered_panic_is_counted_and_retried(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    rec = RecordingReconciler()
    rec.script("a", Panic("deref of None"))
    ctl = started(make_controller(reconciler=rec, max_concurrent_reconciles=1))
    ctl.queue.add(A)
    assert rec.wait_for_count("a", 2)
    assert eventually(lambda: results(registry)["success"] == 1.0)
    assert sample(registry, "controller_runtime_reconcile_panics_total", controller="ctl") == 1.0
    assert sample(registry, "controller_runtime_reconcile_errors_total", controller="ctl") == 1.0
    assert results(registry)["error"] == 1.0
    assert ctl.error() is None


def test_an_unrecovered_panic_stops_the_controller(
    make_controller: Callable[..., Controller],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = RecordingReconciler()
    rec.script("a", Panic("deref of None"))
    ctl = make_controller(reconciler=rec, recover_panic=False)
    errors: list[BaseException] = []
    stop = ctl.start(on_error=errors.append)
    assert ctl.wait_for_started(WAIT)
    ctl.queue.add(A)
    assert ctl.wait_for_stopped(WAIT)
    assert stop.is_set()
    assert len(errors) == 1
    err = errors[0]
    assert isinstance(err, ReconcilePanicError)
    assert isinstance(err.__cause__, Panic)
    assert ctl.error() is err
    assert ctl.status().startswith("failed: controller 'ctl': a reconcile raised Panic")
    assert sample(registry, "controller_runtime_reconcile_panics_total", controller="ctl") == 1.0
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)
    assert ctl.stop(WAIT)
    assert controller_threads("ctl") == []


def test_run_raises_the_unrecovered_panic(make_controller: Callable[..., Controller]) -> None:
    rec = RecordingReconciler()
    rec.script("a", Panic("boom"))
    ctl = make_controller(reconciler=rec, recover_panic=False)
    ctl.queue.add(A)
    with pytest.raises(ReconcilePanicError) as info:
        ctl.run(threading.Event())
    assert isinstance(info.value.__cause__, Panic)


def test_workers_reconcile_up_to_max_concurrent_reconciles_at_once(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    gate = threading.Event()
    rec = RecordingReconciler()

    def blocked(request: Request) -> Result:
        assert gate.wait(WAIT)
        return Result()

    names = [f"gpu-{i}" for i in range(7)]
    for name in names:
        rec.script(name, blocked)
    ctl = started(make_controller(reconciler=rec, max_concurrent_reconciles=3))
    for name in names:
        ctl.queue.add(Request(name))
    # Three reconciles run at once (proving concurrency), and no fourth starts.
    assert rec.wait_for(lambda: rec.in_flight == 3)
    assert sample(registry, "controller_runtime_active_workers", controller="ctl") == 3.0
    assert ctl.queue.len() == 4
    assert len(rec.calls) == 3
    gate.set()
    assert rec.wait_for_calls(7)
    assert eventually(lambda: results(registry)["success"] == 7.0)
    assert rec.max_in_flight == 3
    assert sample(registry, "controller_runtime_active_workers", controller="ctl") == 0.0


def test_one_request_is_never_reconciled_by_two_workers_at_once(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    gate = threading.Event()
    rec = RecordingReconciler()

    def blocked(request: Request) -> Result:
        assert gate.wait(WAIT)
        return Result()

    rec.script("a", blocked)
    ctl = started(make_controller(reconciler=rec, max_concurrent_reconciles=4))
    ctl.queue.add(A)
    assert rec.wait_for(lambda: rec.in_flight_by_name["a"] == 1)
    for _ in range(3):
        ctl.queue.add(A)  # marked dirty: reconciled once more, after the current pass
    ctl.queue.add(Request("b"))
    assert rec.wait_for_count("b", 1)  # the other workers are free, and stay off "a"
    assert rec.count("a") == 1
    gate.set()
    assert rec.wait_for_count("a", 2)
    assert eventually(lambda: results(registry)["success"] == 3.0)
    assert rec.count("a") == 2
    assert rec.max_in_flight_by_name["a"] == 1


def test_reconcile_time_is_observed_with_the_controllers_clock(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    clock = FakeClock()
    rec = RecordingReconciler()

    def slow(request: Request) -> Result:
        clock.step(0.3)
        return Result()

    rec.script("a", slow)
    ctl = started(make_controller(reconciler=rec, clock=clock))
    ctl.queue.add(A)
    assert eventually(lambda: results(registry)["success"] == 1.0)
    name = "controller_runtime_reconcile_time_seconds"
    assert sample(registry, name + "_count", controller="ctl") == 1.0
    assert sample(registry, name + "_sum", controller="ctl") == pytest.approx(0.3)
    assert sample(registry, name + "_bucket", controller="ctl", le="0.25") == 0.0
    assert sample(registry, name + "_bucket", controller="ctl", le="0.3") == 1.0
    assert sample(registry, name + "_bucket", controller="ctl", le="+Inf") == 1.0


def test_bad_options_are_rejected_with_the_problem_named() -> None:
    reg = CollectorRegistry()
    rec = RecordingReconciler()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name must be a non-empty string"),
        ({"max_concurrent_reconciles": 0}, "max_concurrent_reconciles must be an int >= 1"),
        ({"max_concurrent_reconciles": True}, "max_concurrent_reconciles must be an int >= 1"),
        ({"cache_sync_timeout": 0}, "cache_sync_timeout must be > 0"),
        ({"shutdown_timeout": -1}, "shutdown_timeout must be >= 0"),
    ]
    for kwargs, message in bad:
        name = kwargs.pop("name", "ctl")
        with pytest.raises(ValueError, match=message):
            Controller(name, rec, registry=reg, **kwargs)
    with pytest.raises(TypeError, match="reconciler must have a reconcile"):
        Controller("ctl", object(), registry=reg)  # type: ignore[arg-type]
