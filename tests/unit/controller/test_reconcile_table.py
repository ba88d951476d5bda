"""judge(): the reconcile table as one pure function, the rows both controller drivers apply."""

from __future__ import annotations

import pytest

from nvinformers.controller import Result, TerminalError
from nvinformers.controller._reconcile import Verdict, judge


class Panic(BaseException):
    """A BaseException that is not an Exception: the Python counterpart of a Go panic."""


def test_success_forgets() -> None:
    assert judge(Result(), None) == Verdict("success", forget=True)


def test_requeue_after_forgets_then_adds_after() -> None:
    assert judge(Result(requeue_after=2.5), None) == Verdict(
        "requeue_after", forget=True, requeue_after=2.5
    )


def test_an_error_is_retried_with_backoff_and_wins_over_the_result() -> None:
    err = RuntimeError("boom")
    assert judge(Result(requeue_after=5.0), err) == Verdict("error", rate_limited=True, error=err)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TerminalError("bad spec"),
        lambda: ExceptionGroup("several", [ValueError("x"), TerminalError("bad spec")]),
    ],
    ids=["direct", "in-group"],
)
def test_a_terminal_error_is_forgotten_and_not_retried(make: object) -> None:
    err = make()  # type: ignore[operator]
    assert judge(None, err) == Verdict("error", forget=True, error=err, terminal=True)


@pytest.mark.parametrize("returned", [None, "done", 0, Result])
def test_anything_but_a_result_is_an_error_that_names_it(returned: object) -> None:
    verdict = judge(returned, None)
    assert (verdict.result, verdict.rate_limited, verdict.forget) == ("error", True, False)
    assert isinstance(verdict.error, TypeError)
    assert f"returned {returned!r} ({type(returned).__name__})" in str(verdict.error)
    assert "it must return a nvinformers.controller.Result" in str(verdict.error)


def test_a_panic_is_an_error_when_recovered_and_reraised_otherwise() -> None:
    panic = Panic("deref of None")
    assert judge(None, panic) == Verdict("error", rate_limited=True, error=panic, panic=True)
    assert judge(Result(), panic, recover_panic=False) == Verdict(
        "error", error=panic, panic=True, reraise=True
    )
