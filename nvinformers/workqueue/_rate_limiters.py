"""Rate limiters deciding how long an item waits before it is retried.

Mirrors client-go's ``util/workqueue/default_rate_limiters.go``. Delays are float seconds.

Bounded memory (a deliberate difference from client-go): the per-item limiters remember failure
counts until :meth:`RateLimiter.forget` is called, and client-go's map grows forever when callers
forget to call it ("Remember to call Forget!"). Here the per-item histories live in a
``cachetools.LRUCache`` of ``max_tracked_items`` entries (default :data:`DEFAULT_MAX_TRACKED_ITEMS`,
one million). Below that size nothing changes. Beyond it, the history of the item that failed
least recently is dropped, and that item's next failure starts again from the first delay. An LRU
bound was preferred to a time-to-live: it needs no clock and never resets the backoff of an item
that keeps failing, however long its delays or the queue's backlog. A million entries costs in
the order of a hundred megabytes of small Python objects at worst; lower it for
memory-constrained daemons.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar, runtime_checkable

from cachetools import LRUCache

from nvinformers.clock import REAL_CLOCK, Clock

__all__ = [
    "DEFAULT_MAX_TRACKED_ITEMS",
    "RateLimiter",
    "ItemExponentialFailureRateLimiter",
    "BucketRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "WithMaxWaitRateLimiter",
    "default_controller_rate_limiter",
]

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)

#: Default bound on the number of items whose failures a per-item limiter remembers.
DEFAULT_MAX_TRACKED_ITEMS = 1_000_000


@runtime_checkable
class RateLimiter(Protocol[T_contra]):
    """Decides how long an item waits before it is retried (client-go ``TypedRateLimiter``).

    Implementations must be thread-safe: a rate-limiting queue calls them from every worker.
    """

    def when(self, item: T_contra) -> float:
        """Record one more failure of ``item`` and return how many seconds it should wait."""
        ...

    def forget(self, item: T_contra) -> None:
        """Stop tracking ``item`` (it succeeded, or failed for good): its next delay starts over."""
        ...

    def num_requeues(self, item: T_contra) -> int:
        """Return how many failures of ``item`` are being tracked."""
        ...


def _check_delay(owner: str, what: str, value: float) -> float:
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{owner}: {what} must be >= 0 seconds, got {value!r}")
    return float(value)


class _FailureCounts(Generic[T]):
    """Per-item failure counts, bounded by an LRU policy. Thread-safe."""

    __slots__ = ("_counts", "_lock")

    def __init__(self, owner: str, max_tracked_items: int) -> None:
        if max_tracked_items < 1:
            raise ValueError(f"{owner}: max_tracked_items must be >= 1, got {max_tracked_items!r}")
        # _lock guards _counts (cachetools caches are not thread-safe).
        self._lock = threading.Lock()
        self._counts: LRUCache[T, int] = LRUCache(maxsize=max_tracked_items)

    def increment(self, item: T) -> int:
        """Count one more failure; return the number of failures before this one."""
        with self._lock:
            before = self._counts.get(item, 0)
            self._counts[item] = before + 1
            return before

    def get(self, item: T) -> int:
        with self._lock:
            return self._counts.get(item, 0)

    def forget(self, item: T) -> None:
        with self._lock:
            self._counts.pop(item, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)


class _PerItemLimiter(Generic[T]):
    """What the per-item limiters share: their bounded failure counts."""

    __slots__ = ("_failures",)

    def __init__(self, max_tracked_items: int) -> None:
        self._failures: _FailureCounts[T] = _FailureCounts(type(self).__name__, max_tracked_items)

    def forget(self, item: T) -> None:
        """Clear the failure count of ``item``."""
        self._failures.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return the failure count of ``item``."""
        return self._failures.get(item)


class ItemExponentialFailureRateLimiter(_PerItemLimiter[T]):
    """Per-item exponential backoff: ``base_delay * 2**failures``, capped at ``max_delay``.

    Semantics: the n-th call to :meth:`when` for an item since it was last forgotten returns
    ``min(base_delay * 2**(n-1), max_delay)``; the computation cannot overflow however many
    failures accumulate. Memory per item is bounded as described in the module docstring.

    Thread-safety: thread-safe; never blocks beyond a short internal lock.

    Args:
        base_delay: the first delay, in seconds (client-go's controller default: 5 ms).
        max_delay: the cap, in seconds (default 1000 s).
        max_tracked_items: how many items' failure counts are remembered at most.

    Raises:
        ValueError: a delay is negative or NaN, or ``max_tracked_items`` < 1.
    """

    __slots__ = ("_base_delay", "_max_delay")

    def __init__(
        self,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        *,
        max_tracked_items: int = DEFAULT_MAX_TRACKED_ITEMS,
    ) -> None:
        owner = type(self).__name__
        self._base_delay = _check_delay(owner, "base_delay", base_delay)
        self._max_delay = _check_delay(owner, "max_delay", max_delay)
        super().__init__(max_tracked_items)

    def when(self, item: T) -> float:
        """Record a failure of ``item`` and return its backoff in seconds."""
        exponent = self._failures.increment(item)
        try:
            backoff = math.ldexp(self._base_delay, exponent)
        except OverflowError:
            # base * 2**exponent exceeds the float range: client-go's "never overflows" cap.
            return self._max_delay
        return min(backoff, self._max_delay)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_delay={self._base_delay!r}, max_delay={self._max_delay!r})"
        )


class ItemFastSlowRateLimiter(_PerItemLimiter[T]):
    """Per-item: ``fast_delay`` for the first ``max_fast_attempts`` failures, then ``slow_delay``.

    Semantics: the n-th call to :meth:`when` for an item since it was last forgotten returns
    ``fast_delay`` if ``n <= max_fast_attempts``, else ``slow_delay``. Memory per item is bounded as
    described in the module docstring.

    Thread-safety: thread-safe; never blocks beyond a short internal lock.

    Args:
        fast_delay: seconds to wait for the first attempts.
        slow_delay: seconds to wait afterwards.
        max_fast_attempts: how many failures get ``fast_delay``.
        max_tracked_items: how many items' failure counts are remembered at most.

    Raises:
        ValueError: a delay is negative or NaN, ``max_fast_attempts`` < 0, or
            ``max_tracked_items`` < 1.
    """

    __slots__ = ("_fast_delay", "_max_fast_attempts", "_slow_delay")

    def __init__(
        self,
        fast_delay: float,
        slow_delay: float,
        max_fast_attempts: int,
        *,
        max_tracked_items: int = DEFAULT_MAX_TRACKED_ITEMS,
    ) -> None:
        owner = type(self).__name__
        self._fast_delay = _check_delay(owner, "fast_delay", fast_delay)
        self._slow_delay = _check_delay(owner, "slow_delay", slow_delay)
        if max_fast_attempts < 0:
            raise ValueError(f"{owner}: max_fast_attempts must be >= 0, got {max_fast_attempts!r}")
        self._max_fast_attempts = max_fast_attempts
        super().__init__(max_tracked_items)

    def when(self, item: T) -> float:
        """Record a failure of ``item`` and return its delay in seconds."""
        if self._failures.increment(item) < self._max_fast_attempts:
            return self._fast_delay
        return self._slow_delay

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(fast_delay={self._fast_delay!r}, "
            f"slow_delay={self._slow_delay!r}, max_fast_attempts={self._max_fast_attempts!r})"
        )


class BucketRateLimiter(Generic[T]):
    """An overall token bucket (client-go's ``BucketRateLimiter`` over ``rate.Limiter``).

    Semantics: the bucket holds at most ``burst`` tokens, starts full and refills at ``qps`` tokens
    per second. Each :meth:`when` reserves one token, whatever the item, and returns how long until
    that token is available: 0 while tokens remain, then ``1/qps``, ``2/qps``, ... for calls made at
    the same moment (reservations are never cancelled). No per-item memory: :meth:`forget` does
    nothing and :meth:`num_requeues` is always 0.

    Thread-safety: thread-safe; never blocks beyond a short internal lock.

    Args:
        qps: refill rate in tokens per second (``math.inf``: never limits).
        burst: bucket size.
        clock: the clock (default: the real monotonic clock); inject a FakeClock in tests.

    Raises:
        ValueError: ``qps`` is not > 0 or ``burst`` is < 1.
    """

    __slots__ = ("_burst", "_clock", "_last", "_lock", "_qps", "_tokens")

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock | None = None) -> None:
        owner = type(self).__name__
        if not qps > 0:
            raise ValueError(f"{owner}: qps must be > 0, got {qps!r}")
        if burst < 1:
            raise ValueError(f"{owner}: burst must be >= 1, got {burst!r}")
        self._qps = float(qps)
        self._burst = burst
        self._clock: Clock = REAL_CLOCK if clock is None else clock
        # _lock guards _tokens and _last. _tokens may go negative: that is the reserved debt.
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = self._clock.now()

    def when(self, item: T) -> float:
        """Reserve a token and return the seconds until it is available."""
        if self._qps == math.inf:
            return 0.0
        with self._lock:
            now = self._clock.now()
            elapsed = now - self._last
            if elapsed > 0:
                self._tokens = min(float(self._burst), self._tokens + elapsed * self._qps)
            self._last = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._qps

    def forget(self, item: T) -> None:
        """Do nothing: the bucket has no per-item state."""

    def num_requeues(self, item: T) -> int:
        """Return 0: the bucket has no per-item state."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(qps={self._qps!r}, burst={self._burst!r})"


class MaxOfRateLimiter(Generic[T]):
    """The worst case of several limiters.

    Semantics: :meth:`when` calls every limiter (each records the failure) and returns the largest
    delay; :meth:`forget` forgets in every limiter; :meth:`num_requeues` is the largest count. As
    client-go notes, combined with a token bucket the burst can appear exceeded when some items were
    delayed longer by another limiter.

    Thread-safety: as thread-safe as the limiters it combines.

    Raises:
        ValueError: no limiter is given.
    """

    __slots__ = ("_limiters",)

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        if not limiters:
            raise ValueError(f"{type(self).__name__}: at least one limiter is required")
        self._limiters = limiters

    def when(self, item: T) -> float:
        """Return the largest delay of all limiters (each records the failure)."""
        return max([limiter.when(item) for limiter in self._limiters])

    def forget(self, item: T) -> None:
        """Forget ``item`` in every limiter."""
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return the largest failure count of all limiters."""
        return max(limiter.num_requeues(item) for limiter in self._limiters)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self._limiters))})"


class WithMaxWaitRateLimiter(Generic[T]):
    """Caps the delays of another limiter at ``max_delay`` seconds.

    Thread-safety: as thread-safe as the wrapped limiter.

    Raises:
        ValueError: ``max_delay`` is negative or NaN.
    """

    __slots__ = ("_limiter", "_max_delay")

    def __init__(self, limiter: RateLimiter[T], max_delay: float) -> None:
        self._limiter = limiter
        self._max_delay = _check_delay(type(self).__name__, "max_delay", max_delay)

    def when(self, item: T) -> float:
        """Return the wrapped limiter's delay, at most ``max_delay``."""
        return min(self._limiter.when(item), self._max_delay)

    def forget(self, item: T) -> None:
        """Forget ``item`` in the wrapped limiter."""
        self._limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return the wrapped limiter's failure count."""
        return self._limiter.num_requeues(item)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._limiter!r}, max_delay={self._max_delay!r})"


def default_controller_rate_limiter() -> RateLimiter[Hashable]:
    """Return client-go's default controller limiter: per-item and overall limits combined.

    ``MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0,
    100))``: per item, exponential backoff from 5 ms to 1000 s; overall, 10 retries per second with
    bursts of 100 (it limits only the retry rate, not the first adds).
    """
    return MaxOfRateLimiter[Hashable](
        ItemExponentialFailureRateLimiter[Hashable](0.005, 1000.0),
        BucketRateLimiter[Hashable](qps=10.0, burst=100),
    )
