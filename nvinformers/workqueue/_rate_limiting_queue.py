"""A delaying queue whose re-adds a rate limiter paces (client-go ``rate_limiting_queue.go``)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, TypeVar

from nvinformers.workqueue._delaying_queue import DelayingQueue
from nvinformers.workqueue._rate_limiters import RateLimiter, default_controller_rate_limiter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from nvinformers.clock import Clock

__all__ = ["RateLimitingQueue"]

T = TypeVar("T", bound=Hashable)


class RateLimitingQueue(DelayingQueue[T]):
    """A :class:`DelayingQueue` that re-adds failed items after a delay chosen by a rate limiter.

    Semantics (client-go's ``RateLimitingInterface``):

    * :meth:`add_rate_limited` records a failure with the limiter and adds the item after the delay
      the limiter returns (``add_after(item, limiter.when(item))``).
    * :meth:`forget` tells the limiter to stop tracking the item, after a success or a final
      failure. It does not replace :meth:`done`, which must still be called. Remember to call it:
      otherwise the item's next failure backs off from where the last one stopped. (The built-in
      per-item limiters bound their memory, so a missing ``forget`` cannot grow it forever.)
    * :meth:`num_requeues` returns the limiter's failure count for the item.

    Thread-safety: all methods are thread-safe. The limiter is called without any queue lock held.

    Args:
        name: the queue's name for metrics (``""``: no metrics).
        rate_limiter: the limiter; defaults to :func:`default_controller_rate_limiter`.
        clock: the clock for delays and metrics; defaults to the real monotonic clock. It is not
            passed to ``rate_limiter``; give the limiter the same clock if it needs one.
        registry: the Prometheus registry for a named queue's metrics (default: the global one).
    """

    __slots__ = ("_rate_limiter",)

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter[T] | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name, clock=clock, registry=registry)
        self._rate_limiter: RateLimiter[T] = (
            default_controller_rate_limiter() if rate_limiter is None else rate_limiter
        )

    @property
    def rate_limiter(self) -> RateLimiter[T]:
        """The limiter pacing :meth:`add_rate_limited`."""
        return self._rate_limiter

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay the rate limiter assigns to its next retry.

        Raises:
            ValueError: ``item`` is None.
        """
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Clear the limiter's failure history for ``item``; :meth:`done` is still required."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return how many times ``item`` has been re-added through :meth:`add_rate_limited`."""
        return self._rate_limiter.num_requeues(item)
