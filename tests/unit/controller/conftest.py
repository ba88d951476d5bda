"""Helpers for the controller tests: a recording reconciler, a fake informer, fixtures.

Nothing here sleeps: waits are on conditions, with a real-time guard that is reached only when a
test fails.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.cache import ResourceEventHandler, SharedIndexInformer, cluster_scoped_key_func
from nvinformers.controller import Controller, Request, Result
from nvinformers.workqueue import ItemExponentialFailureRateLimiter

# Real-time bound of waits that only guard against a hang (never part of what is asserted).
WAIT = 10.0

#: One scripted reconcile outcome: a Result to return, an exception to raise, or a function of
#: the request that does either.
Action = Result | BaseException | Callable[[Request], Result] | object


class RecordingReconciler:
    """Records every reconcile; returns ``Result()`` unless an outcome is scripted.

    ``script(name, *actions)`` queues outcomes for a request name, consumed in order.
    ``in_flight`` and ``max_in_flight`` track concurrency, overall and per name.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.calls: list[Request] = []
        self._script: dict[str, deque[Action]] = defaultdict(deque)
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_by_name: Counter[str] = Counter()
        self.max_in_flight_by_name: Counter[str] = Counter()

    def script(self, name: str, *actions: Action) -> None:
        with self._cond:
            self._script[name].extend(actions)

    def reconcile(self, request: Request) -> Result:
        with self._cond:
            self.calls.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.in_flight_by_name[request.name] += 1
            self.max_in_flight_by_name[request.name] = max(
                self.max_in_flight_by_name[request.name], self.in_flight_by_name[request.name]
            )
            action = self._script[request.name].popleft() if self._script[request.name] else None
            self._cond.notify_all()
        try:
            if action is None:
                return Result()
            if isinstance(action, BaseException):
                raise action
            if isinstance(action, Result):
                return action
            if callable(action):
                result: Result = action(request)
                return result
            return action  # type: ignore[return-value]  # a wrong return value, on purpose
        finally:
            with self._cond:
                self.in_flight -= 1
                self.in_flight_by_name[request.name] -= 1
                self._cond.notify_all()

    def count(self, name: str) -> int:
        with self._cond:
            return sum(1 for r in self.calls if r.name == name)

    def names(self) -> list[str]:
        with self._cond:
            return [r.name for r in self.calls]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_calls(self, n: int, timeout: float = WAIT) -> bool:
        return self.wait_for(lambda: len(self.calls) >= n, timeout)

    def wait_for_count(self, name: str, n: int, timeout: float = WAIT) -> bool:
        return self.wait_for(lambda: sum(1 for r in self.calls if r.name == name) >= n, timeout)


class FakeRegistration:
    def __init__(self, handler: ResourceEventHandler, name: str) -> None:
        self.handler = handler
        self.name = name
        self.synced = True

    def has_synced(self) -> bool:
        return self.synced


class FakeInformer:
    """Just enough of a SharedIndexInformer for ``Controller.watch`` (controller-runtime's
    ``controllertest.FakeInformer``): the test calls the registered handler directly."""

    def __init__(self, name: str = "gpus", *, synced: bool = True) -> None:
        self.name = name
        self.key_func = cluster_scoped_key_func
        self.synced = synced
        self.registrations: list[FakeRegistration] = []
        self.removed: list[FakeRegistration] = []

    def add_event_handler(
        self, handler: ResourceEventHandler, resync_period: float | None = None, *, name: str
    ) -> FakeRegistration:
        registration = FakeRegistration(handler, name)
        self.registrations.append(registration)
        return registration

    def handlers(self) -> tuple[FakeRegistration, ...]:
        return tuple(self.registrations)

    def shut_down_event_handler(self, registration: FakeRegistration, timeout: float) -> bool:
        self.registrations.remove(registration)
        self.removed.append(registration)
        return True

    def has_synced(self) -> bool:
        return self.synced

    @property
    def handler(self) -> ResourceEventHandler:
        assert len(self.registrations) == 1, self.registrations
        return self.registrations[0].handler


def as_informer(fake: FakeInformer) -> SharedIndexInformer[Any]:
    """Type a FakeInformer as the informer it stands in for."""
    return cast("SharedIndexInformer[Any]", fake)


def zero_delay_limiter() -> ItemExponentialFailureRateLimiter[Any]:
    """Retries at once, but still counts failures (num_requeues)."""
    return ItemExponentialFailureRateLimiter(0.0, 0.0)


def controller_threads(name: str) -> list[str]:
    own = f"nvinformers-controller-{name}"
    return [
        t.name
        for t in threading.enumerate()
        if t.name == own or t.name.startswith(own + "-worker-")
    ]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_controller(registry: CollectorRegistry) -> Iterator[Callable[..., Controller]]:
    """Builds controllers on the test's registry; stops them at teardown and checks that no
    controller thread is left behind."""
    controllers: list[Controller] = []

    def build(name: str = "ctl", reconciler: Any = None, **kwargs: Any) -> Controller:
        kwargs.setdefault("registry", registry)
        kwargs.setdefault("rate_limiter", zero_delay_limiter())
        controller = Controller(name, reconciler or RecordingReconciler(), **kwargs)
        controllers.append(controller)
        return controller

    yield build
    for controller in controllers:
        assert controller.stop(WAIT), f"{controller!r} did not stop"
    for controller in controllers:
        assert controller_threads(controller.name) == [], controller_threads(controller.name)


def sample(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)
