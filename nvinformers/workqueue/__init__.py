"""Work queues for controllers: client-go's ``util/workqueue`` in Python.

Three layers, each wrapping the one below:

* :class:`Queue` — fair, de-duplicating, never hands one item to two workers at once;
* :class:`DelayingQueue` — adds :meth:`~DelayingQueue.add_after`;
* :class:`RateLimitingQueue` — adds :meth:`~RateLimitingQueue.add_rate_limited`,
  :meth:`~RateLimitingQueue.forget` and :meth:`~RateLimitingQueue.num_requeues`, paced by a
  :class:`RateLimiter`.

Named queues export client-go's ``workqueue_*`` Prometheus metrics. Time is read through a
:class:`nvinformers.clock.Clock`; :class:`nvinformers.clock.FakeClock` lets tests, including
users' tests, drive it by hand.

A worker loop::

    queue: RateLimitingQueue[str] = RateLimitingQueue("gpu-controller")
    while True:
        key, shutdown = queue.get()
        if shutdown:
            return
        assert key is not None
        try:
            reconcile(key)
        except Exception:
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)

This package imports nothing else from nvinformers but the leaf module :mod:`nvinformers.clock`
(checked by import-linter).
"""

from nvinformers.workqueue._delaying_queue import DelayingQueue, RateLimitingQueue
from nvinformers.workqueue._queue import Queue
from nvinformers.workqueue._rate_limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    WithMaxWaitRateLimiter,
    default_controller_rate_limiter,
)

__all__ = [
    # queues
    "Queue",
    "DelayingQueue",
    "RateLimitingQueue",
    # rate limiters
    "RateLimiter",
    "ItemExponentialFailureRateLimiter",
    "BucketRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "WithMaxWaitRateLimiter",
    "default_controller_rate_limiter",
]
