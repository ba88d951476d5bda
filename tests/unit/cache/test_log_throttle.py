"""LogThrottle: one record per interval, and the count of those held back in between."""

from __future__ import annotations

from nvinformers.cache._processor import LogThrottle


def test_one_record_per_interval_and_the_count_held_back() -> None:
    clock = [100.0]
    throttle = LogThrottle(10.0, now=lambda: clock[0])
    assert throttle.allow() == 0  # the first is always logged
    assert [throttle.allow() for _ in range(3)] == [None, None, None]
    clock[0] += 9.9
    assert throttle.allow() is None
    clock[0] += 0.1  # 10 s after the last record
    assert throttle.allow() == 4
    assert throttle.allow() is None
    clock[0] += 60.0
    assert throttle.allow() == 1
    clock[0] += 10.0
    assert throttle.allow() == 0


def test_a_zero_interval_logs_everything() -> None:
    throttle = LogThrottle(0.0, now=lambda: 5.0)
    assert [throttle.allow() for _ in range(3)] == [0, 0, 0]
