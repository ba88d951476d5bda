"""RateLimitingQueue: add_rate_limited goes through the limiter; forget and num_requeues."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from nvinformers.clock import FakeClock
from nvinformers.workqueue import (
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimitingQueue,
)

from .conftest import GUARD


def test_add_rate_limited_waits_for_the_limiter_delay() -> None:
    # client-go TestRateLimitingQueue, on a FakeClock.
    clock = FakeClock()
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(1.0, 1000.0)
    q: RateLimitingQueue[str] = RateLimitingQueue(rate_limiter=limiter, clock=clock)
    try:
        q.add_rate_limited("one")
        assert clock.block_until_waiters(deadline=1.0, timeout=GUARD)
        q.add_rate_limited("one")  # next delay is 2 s: the earlier ready time (1 s) is kept
        q.add_rate_limited("two")
        assert q.num_requeues("one") == 2
        assert q.num_requeues("two") == 1
        assert q.len() == 0

        clock.step(1.0)
        assert clock.block_until_waiters(deadline=math.inf, timeout=GUARD)
        assert q.len() == 2  # "one" and "two" were both due at 1 s

        q.forget("one")
        assert q.num_requeues("one") == 0
        q.add_rate_limited("one")  # backoff starts over: 1 s again
        assert clock.block_until_waiters(deadline=2.0, timeout=GUARD)
    finally:
        q.shut_down()


def test_forget_does_not_replace_done() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(
        rate_limiter=ItemExponentialFailureRateLimiter(0.0, 0.0)
    )
    q.add("a")
    assert q.get() == ("a", False)
    q.add_rate_limited("a")  # zero delay: marks dirty at once
    q.forget("a")
    q.done("a")
    assert q.get(timeout=0) == ("a", False)
    q.shut_down()


def test_default_rate_limiter_is_the_controller_default() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue()
    assert isinstance(q.rate_limiter, MaxOfRateLimiter)
    assert q.rate_limiter.when("x") == 0.005
    q.shut_down()


def test_worker_loop_from_the_package_docstring() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(
        "docstring-loop",
        rate_limiter=ItemExponentialFailureRateLimiter(1.0, 10.0),
        clock=clock,
        registry=CollectorRegistry(),
    )
    attempts: list[str] = []

    def reconcile(key: str) -> None:
        attempts.append(key)
        if len(attempts) < 3:
            raise RuntimeError("transient")

    q.add("gpu-0")
    for expected_deadline in (1.0, 3.0, None):
        key, shutdown = q.get()
        assert not shutdown
        assert key is not None
        try:
            reconcile(key)
        except RuntimeError:
            q.add_rate_limited(key)
        else:
            q.forget(key)
        finally:
            q.done(key)
        if expected_deadline is not None:
            assert clock.block_until_waiters(deadline=expected_deadline, timeout=GUARD)
            clock.set_time(expected_deadline)
            assert clock.block_until_waiters(deadline=math.inf, timeout=GUARD)
    assert attempts == ["gpu-0"] * 3
    assert q.num_requeues("gpu-0") == 0
    q.shut_down()
