"""Run commands as subprocesses and read their output line by line with timeouts."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
WAIT = 20.0


def kubectl() -> str:
    """The path of kubectl. Skips the test when it is not on PATH, except under ``CI=true``,
    where a missing kubectl fails the run (CI machines have it, so its absence is a broken
    machine, not a reason to pass without the test)."""
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not on PATH, and CI=true requires it")
        pytest.skip("kubectl is not on PATH")
    return found


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out.pop("NVIDIA_DEVICE_API_TARGET", None)
    out["PYTHONUNBUFFERED"] = "1"
    out.update(extra)
    return out


def run(
    *args: str, timeout: float = 60.0, program: str = PYTHON, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``PYTHON *args`` (or ``program *args``) to completion; returns the completed process
    (stdout and stderr captured)."""
    return subprocess.run(
        [program, *args], capture_output=True, text=True, timeout=timeout, env=env(**extra_env),
        cwd=ROOT, check=False,
    )  # fmt: skip


def cli(*args: str, timeout: float = 60.0, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return run("-m", "nvinformers._cli", *args, timeout=timeout, **extra_env)


class Background:
    """A long-running subprocess whose merged output is read by a thread into a queue.

    Runs ``PYTHON *args`` (or ``program *args``) from the repository root. With
    ``stderr_apart``, stderr is collected separately (:attr:`stderr`) instead of merged; with
    ``new_session``, the process leads its own process group, which :meth:`wait` kills at the
    end (whatever it left running in the background).
    """

    def __init__(
        self,
        *args: str,
        program: str = PYTHON,
        stderr_apart: bool = False,
        new_session: bool = False,
        **extra_env: str,
    ) -> None:
        self.proc = subprocess.Popen(
            [program, *args], stdout=subprocess.PIPE, text=True,
            stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT,
            env=env(**extra_env), cwd=ROOT, start_new_session=new_session,
        )  # fmt: skip
        self._new_session = new_session
        self.lines: list[str] = []
        self._stderr: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._readers = [threading.Thread(target=self._read, name="e2e-reader", daemon=True)]
        if stderr_apart:
            self._readers.append(
                threading.Thread(target=self._read_stderr, name="e2e-stderr", daemon=True)
            )
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    @property
    def stderr(self) -> str:
        """What the process wrote to stderr (with ``stderr_apart``; complete after wait)."""
        return "".join(self._stderr)

    @property
    def output(self) -> str:
        """The output lines read so far (all of them after :meth:`wait`)."""
        return "\n".join(self.lines)

    def expect(self, fragment: str, timeout: float = WAIT) -> str:
        """Return the first new output line containing ``fragment``; fail after ``timeout``."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line containing {fragment!r} within {timeout} s; output so far:\n"
                    + "\n".join(self.lines)
                ) from None
            if line is None:
                raise AssertionError(
                    f"process exited before printing {fragment!r}; output:\n"
                    + "\n".join(self.lines)
                )
            self.lines.append(line)
            if fragment in line:
                return line

    def send(self, signum: int) -> None:
        """Send ``signum`` to the process (to its whole group with ``new_session``, as a
        terminal's Ctrl-C does)."""
        if self._new_session:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = WAIT) -> int:
        """Wait for the exit; returns the exit code. Collects the remaining output."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if self._new_session:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            for reader in self._readers:
                reader.join(WAIT)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        return code

    def terminate(self, timeout: float = WAIT, signum: int = signal.SIGTERM) -> int:
        """``signum`` (SIGTERM), then wait; returns the exit code."""
        if self.proc.poll() is None:
            self.send(signum)
        return self.wait(timeout)
