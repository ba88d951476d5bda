"""Shared helpers for the workqueue tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

# Real-time bound for waits that only guard against a hang (never part of what is asserted).
GUARD = 10.0


class Workers:
    """Starts named threads and joins them at teardown; collects exceptions to re-raise."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, target: Callable[[], object], name: str = "test-worker") -> threading.Thread:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised in the test thread by check()
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def join(self) -> None:
        for thread in self.threads:
            thread.join(GUARD)
            assert not thread.is_alive(), f"{thread.name} did not finish"
        self.check()

    def check(self) -> None:
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    yield w
    w.join()
