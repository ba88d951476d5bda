"""What the conformance suite runs against: read once from the environment.

=======================================  ==========================================================
variable                                 meaning
=======================================  ==========================================================
``NVINFORMERS_CONFORMANCE_TARGET``       the server under test (``unix:///abs/path.sock`` or
                                         ``host:port``). Unset: an in-process ``FakeServer``.
``NVINFORMERS_CONFORMANCE_SERVER_CMD``   the command line (shell words) that runs that server in
                                         the foreground. The suite then starts it itself, kills it
                                         (SIGKILL) and starts it again for the restart scenario,
                                         and stops it at the end. Unset: the restart scenario is
                                         skipped for an external target.
``NVINFORMERS_CONFORMANCE_BOOKMARK_WAIT``  seconds within which the target sends a progress
                                         BOOKMARK on a watch after a change (e.g. 15 for a
                                         device-apiserver run with
                                         ``--etcd-watch-progress-notify-interval 5s``). Unset:
                                         the progress-bookmark test is skipped.
``NVINFORMERS_CONFORMANCE_COMPACTION``   ``RETAIN:WAIT``: the target compacts its history on its
                                         own, keeping ``RETAIN`` revisions; the suite writes more
                                         than that and waits up to ``WAIT`` seconds for an early
                                         revision to expire (e.g. ``101:240`` for
                                         ``--etcd-compaction-interval 1m
                                         --etcd-compaction-min-retain 101``). Unset: tests that
                                         need an expired revision are skipped, unless the target
                                         already refuses to resume from it.
``NVINFORMERS_CONFORMANCE_RESULTS``      write a Markdown table of every test's outcome here.
``NVINFORMERS_CONFORMANCE_LABEL``        how the results file names the server.
=======================================  ==========================================================

A bad value is a usage error naming the variable, raised when the suite starts.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from nvinformers.clientset import parse_target

__all__ = ["Settings", "Compaction", "read_settings"]

TARGET_ENV = "NVINFORMERS_CONFORMANCE_TARGET"
SERVER_CMD_ENV = "NVINFORMERS_CONFORMANCE_SERVER_CMD"
BOOKMARK_WAIT_ENV = "NVINFORMERS_CONFORMANCE_BOOKMARK_WAIT"
COMPACTION_ENV = "NVINFORMERS_CONFORMANCE_COMPACTION"
RESULTS_ENV = "NVINFORMERS_CONFORMANCE_RESULTS"
LABEL_ENV = "NVINFORMERS_CONFORMANCE_LABEL"


@dataclass(frozen=True)
class Compaction:
    """The target compacts by itself, keeping ``retain`` revisions, at least every ``wait`` s."""

    retain: int
    wait: float


@dataclass(frozen=True)
class Settings:
    """The parsed environment (None / empty: not set)."""

    target: str | None
    server_cmd: tuple[str, ...]
    bookmark_wait: float | None
    compaction: Compaction | None
    results: str | None
    label: str | None

    @property
    def external(self) -> bool:
        """True when the suite runs against a server named by ``TARGET_ENV``."""
        return self.target is not None


def _positive(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a number of seconds") from None
    if not value > 0:
        raise ValueError(f"{name}={text!r}: must be positive")
    return value


def _compaction(text: str) -> Compaction:
    retain, sep, wait = text.partition(":")
    if not sep or not retain.strip().isdigit() or int(retain) < 1:
        raise ValueError(
            f"{COMPACTION_ENV}={text!r}: expected RETAIN:WAIT, e.g. 101:240 (RETAIN revisions "
            "kept by the server's compaction, WAIT seconds to wait for it)"
        )
    return Compaction(retain=int(retain), wait=_positive(COMPACTION_ENV, wait))


def read_settings(environ: dict[str, str] | None = None) -> Settings:
    """Parse the suite's environment variables (see the module docstring).

    Raises:
        ValueError: a variable is malformed; the message names it and says what was expected.
    """
    env = os.environ if environ is None else environ
    target = env.get(TARGET_ENV) or None
    if target is not None:
        try:
            parse_target(target)
        except ValueError as exc:
            raise ValueError(f"{TARGET_ENV}: {exc}") from None
    cmd_text = env.get(SERVER_CMD_ENV, "")
    try:
        server_cmd = tuple(shlex.split(cmd_text))
    except ValueError as exc:
        raise ValueError(f"{SERVER_CMD_ENV}={cmd_text!r}: {exc}") from None
    if server_cmd and target is None:
        raise ValueError(f"{SERVER_CMD_ENV} is set but {TARGET_ENV} is not: name where it listens")
    bookmark_text = env.get(BOOKMARK_WAIT_ENV, "")
    compaction_text = env.get(COMPACTION_ENV, "")
    return Settings(
        target=target,
        server_cmd=server_cmd,
        bookmark_wait=_positive(BOOKMARK_WAIT_ENV, bookmark_text) if bookmark_text else None,
        compaction=_compaction(compaction_text) if compaction_text else None,
        results=env.get(RESULTS_ENV) or None,
        label=env.get(LABEL_ENV) or None,
    )
