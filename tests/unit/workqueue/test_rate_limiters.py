"""Rate limiters: exact delay sequences, forget/num_requeues, bounded memory, validation."""

from __future__ import annotations

import math
from collections.abc import Hashable

import pytest

from nvinformers.clock import FakeClock
from nvinformers.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    WithMaxWaitRateLimiter,
    default_controller_rate_limiter,
)


class TestItemExponentialFailureRateLimiter:
    def test_delay_doubles_per_failure_up_to_the_cap(self) -> None:
        limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
            0.001, 1.0
        )
        delays = [limiter.when("one") for _ in range(12)]
        assert delays == [0.001 * 2**n for n in range(10)] + [1.0, 1.0]
        assert limiter.num_requeues("one") == 12

    def test_items_are_independent_and_forget_starts_over(self) -> None:
        limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
            0.001, 1.0
        )
        assert [limiter.when("one") for _ in range(3)] == [0.001, 0.002, 0.004]
        assert limiter.when("two") == 0.001
        limiter.forget("one")
        assert limiter.num_requeues("one") == 0
        assert limiter.when("one") == 0.001
        assert limiter.num_requeues("two") == 1

    def test_never_overflows(self) -> None:
        limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
            0.005, 1000.0
        )
        delays = [limiter.when("x") for _ in range(2000)]  # 2**1999 is beyond any float
        assert delays[-1] == 1000.0
        assert all(math.isfinite(d) for d in delays)
        assert limiter.num_requeues("x") == 2000

    def test_zero_base_delay_is_always_zero(self) -> None:
        limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(0, 1)
        assert [limiter.when("x") for _ in range(1100)][-3:] == [0.0, 0.0, 0.0]

    def test_defaults_are_client_go_controller_defaults(self) -> None:
        limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
        assert limiter.when("x") == 0.005
        for _ in range(30):
            limiter.when("x")
        assert limiter.when("x") == 1000.0

    def test_failure_memory_is_bounded_least_recently_failed_first(self) -> None:
        limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
            1.0, 100.0, max_tracked_items=3
        )
        for item in ("a", "b", "c"):
            limiter.when(item)
        limiter.when("a")  # "a" failed most recently now; "b" is the oldest
        limiter.when("d")  # a fourth item evicts "b"
        assert limiter._failures.__len__() == 3
        assert limiter.num_requeues("b") == 0
        assert limiter.num_requeues("a") == 2
        assert limiter.num_requeues("d") == 1
        assert limiter.when("b") == 1.0  # its backoff starts over

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"base_delay": -1.0}, "base_delay must be >= 0"),
            ({"max_delay": math.nan}, "max_delay must be >= 0"),
            ({"max_tracked_items": 0}, "max_tracked_items must be >= 1"),
        ],
    )
    def test_bad_arguments_are_rejected(self, kwargs: dict[str, float], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            ItemExponentialFailureRateLimiter(**kwargs)  # type: ignore[arg-type]


class TestItemFastSlowRateLimiter:
    def test_fast_then_slow(self) -> None:
        # client-go TestItemFastSlowRateLimiter.
        limiter: ItemFastSlowRateLimiter[str] = ItemFastSlowRateLimiter(0.005, 10.0, 3)
        assert [limiter.when("one") for _ in range(5)] == [0.005, 0.005, 0.005, 10.0, 10.0]
        assert [limiter.when("two") for _ in range(2)] == [0.005, 0.005]
        assert limiter.num_requeues("one") == 5
        assert limiter.num_requeues("two") == 2
        limiter.forget("one")
        assert limiter.num_requeues("one") == 0
        assert limiter.when("one") == 0.005

    def test_zero_fast_attempts_is_always_slow(self) -> None:
        limiter: ItemFastSlowRateLimiter[str] = ItemFastSlowRateLimiter(0.005, 10.0, 0)
        assert limiter.when("x") == 10.0

    def test_failure_memory_is_bounded(self) -> None:
        limiter: ItemFastSlowRateLimiter[int] = ItemFastSlowRateLimiter(
            0.0, 1.0, 1, max_tracked_items=10
        )
        for item in range(100):
            limiter.when(item)
        assert len(limiter._failures) == 10
        assert limiter.num_requeues(0) == 0
        assert limiter.num_requeues(99) == 1

    def test_bad_arguments_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="max_fast_attempts must be >= 0"):
            ItemFastSlowRateLimiter(0.0, 1.0, -1)
        with pytest.raises(ValueError, match="slow_delay must be >= 0"):
            ItemFastSlowRateLimiter(0.0, -1.0, 1)


class TestBucketRateLimiter:
    def test_burst_then_one_token_per_interval(self) -> None:
        clock = FakeClock()
        limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=10.0, burst=3, clock=clock)
        # The bucket starts full: three immediate tokens, then each reservation waits one more
        # 1/qps interval, whatever the item.
        delays = [limiter.when(item) for item in ("a", "b", "c", "d", "e", "f")]
        assert delays == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])

    def test_tokens_refill_at_qps_up_to_burst(self) -> None:
        clock = FakeClock()
        limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=2.0, burst=2, clock=clock)
        assert [limiter.when("x") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])
        clock.step(0.5)  # pays the debt: the bucket is empty
        assert limiter.when("x") == pytest.approx(0.5)
        clock.step(100.0)  # refills to burst, not beyond
        assert [limiter.when("x") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])

    def test_spacing_with_a_steady_caller(self) -> None:
        clock = FakeClock()
        limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=4.0, burst=1, clock=clock)
        assert limiter.when("x") == 0.0
        clock.step(0.25)
        assert limiter.when("x") == pytest.approx(0.0)
        clock.step(0.125)
        assert limiter.when("x") == pytest.approx(0.125)

    def test_has_no_per_item_memory(self) -> None:
        limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=1.0, burst=1, clock=FakeClock())
        limiter.when("x")
        limiter.when("x")
        assert limiter.num_requeues("x") == 0
        limiter.forget("x")  # no-op
        assert limiter.when("x") == pytest.approx(2.0)  # the debt is global, not per item

    def test_infinite_qps_never_limits(self) -> None:
        limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=math.inf, burst=1)
        assert [limiter.when("x") for _ in range(5)] == [0.0] * 5

    def test_defaults_are_ten_qps_burst_hundred(self) -> None:
        limiter: BucketRateLimiter[int] = BucketRateLimiter(clock=FakeClock())
        delays = [limiter.when(n) for n in range(102)]
        assert delays[:100] == [0.0] * 100
        assert delays[100:] == pytest.approx([0.1, 0.2])

    def test_bad_arguments_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="qps must be > 0"):
            BucketRateLimiter(qps=0.0)
        with pytest.raises(ValueError, match="burst must be >= 1"):
            BucketRateLimiter(burst=0)


class TestMaxOfRateLimiter:
    def test_returns_the_worst_delay_and_fans_out(self) -> None:
        # client-go TestMaxOfRateLimiter.
        limiter: MaxOfRateLimiter[str] = MaxOfRateLimiter(
            ItemFastSlowRateLimiter(0.005, 3.0, 3),
            ItemExponentialFailureRateLimiter(0.001, 1.0),
        )
        assert [limiter.when("one") for _ in range(5)] == [0.005, 0.005, 0.005, 3.0, 3.0]
        assert limiter.num_requeues("one") == 5
        limiter.forget("one")
        assert limiter.num_requeues("one") == 0
        assert limiter.when("one") == 0.005

    def test_num_requeues_is_the_largest_count(self) -> None:
        limiter: MaxOfRateLimiter[str] = MaxOfRateLimiter(
            ItemExponentialFailureRateLimiter(0.001, 1.0), BucketRateLimiter(clock=FakeClock())
        )
        limiter.when("x")
        limiter.when("x")
        assert limiter.num_requeues("x") == 2

    def test_needs_a_limiter(self) -> None:
        with pytest.raises(ValueError, match="at least one limiter"):
            MaxOfRateLimiter()


class TestWithMaxWaitRateLimiter:
    def test_caps_the_delay(self) -> None:
        inner: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
            1.0, 100.0
        )
        limiter: WithMaxWaitRateLimiter[str] = WithMaxWaitRateLimiter(inner, 3.0)
        assert [limiter.when("x") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
        assert limiter.num_requeues("x") == 4
        limiter.forget("x")
        assert inner.num_requeues("x") == 0

    def test_negative_max_delay_is_rejected(self) -> None:
        inner: BucketRateLimiter[str] = BucketRateLimiter()
        with pytest.raises(ValueError, match="max_delay must be >= 0"):
            WithMaxWaitRateLimiter(inner, -1.0)


def test_default_controller_rate_limiter_is_exponential_and_bucket() -> None:
    limiter = default_controller_rate_limiter()
    assert isinstance(limiter, MaxOfRateLimiter)
    assert [limiter.when("x") for _ in range(3)] == [0.005, 0.01, 0.02]
    assert limiter.num_requeues("x") == 3
    limiter.forget("x")
    assert limiter.when("x") == 0.005
    assert "qps=10.0, burst=100" in repr(limiter)


@pytest.mark.parametrize(
    "limiter",
    [
        ItemExponentialFailureRateLimiter(),
        ItemFastSlowRateLimiter(0.1, 1.0, 2),
        BucketRateLimiter(),
        MaxOfRateLimiter(BucketRateLimiter()),
        WithMaxWaitRateLimiter(BucketRateLimiter(), 1.0),
        default_controller_rate_limiter(),
    ],
    ids=lambda limiter: type(limiter).__name__,
)
def test_every_limiter_satisfies_the_protocol(limiter: RateLimiter[Hashable]) -> None:
    assert isinstance(limiter, RateLimiter)
