"""CancelToken: a one-shot signal whose callbacks run once, at once, outside its lock."""

from __future__ import annotations

import logging
import threading

import pytest

from nvinformers.cancel import CancelToken


def test_callbacks_run_once_when_the_token_fires() -> None:
    token = CancelToken()
    seen: list[str] = []
    token.add_callback(lambda: seen.append("a"))
    token.add_callback(lambda: seen.append("b"))
    assert not token.cancelled() and not token.event.is_set()
    token.cancel()
    token.cancel()  # idempotent
    assert seen == ["a", "b"]
    assert token.cancelled() and token.wait(0)
    assert repr(token) == "CancelToken(cancelled)"


def test_a_callback_added_after_the_fact_runs_at_once_on_the_caller() -> None:
    token = CancelToken()
    token.cancel()
    ran_on: list[str] = []
    remove = token.add_callback(lambda: ran_on.append(threading.current_thread().name))
    assert ran_on == [threading.current_thread().name]
    remove()  # a no-op


def test_a_removed_callback_never_runs() -> None:
    token = CancelToken()
    seen: list[str] = []
    remove = token.add_callback(lambda: seen.append("x"))
    remove()
    token.cancel()
    assert seen == []


def test_a_raising_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = CancelToken()
    seen: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    token.add_callback(boom)
    token.add_callback(lambda: seen.append("after"))
    with caplog.at_level(logging.ERROR, logger="nvinformers.cancel"):
        token.cancel()
    assert seen == ["after"]
    assert "callback" in caplog.text and "boom" in caplog.text


def test_a_callback_may_use_the_token_without_deadlocking() -> None:
    token = CancelToken()
    seen: list[bool] = []

    def register_another() -> None:
        token.add_callback(lambda: seen.append(True))  # runs at once: already cancelled

    token.add_callback(lambda: seen.append(token.cancelled()))
    token.add_callback(register_another)
    token.cancel()
    assert seen == [True, True]
