"""Launching the streaming-daemon example and the raw baseline client for N2-N4.

Each measurement starts a fresh process. Bytecode: this environment may set
``PYTHONDONTWRITEBYTECODE``, which would make every start compile every module from source (an
installed package would have its ``.pyc`` files); children therefore run with a private
``PYTHONPYCACHEPREFIX`` under ``/tmp`` and the writes enabled, and :func:`warm_up` runs each
command once before anything is measured, so that both sides start from warm bytecode and a warm
page cache.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

__all__ = [
    "DAEMON",
    "RAW_CLIENT",
    "child_env",
    "Child",
    "launch",
    "warm_up",
    "rss_bytes",
    "cpu_seconds",
]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAEMON = os.path.join(_ROOT, "examples", "streaming-daemon", "streaming_daemon.py")
RAW_CLIENT = os.path.join(_ROOT, "benchmarks", "rawclient.py")
#: The line the daemon logs once its cache has synced.
DAEMON_SYNCED = "cache synced"


def daemon_cmd(target: str) -> list[str]:
    return [sys.executable, DAEMON, "--target", target, "--metrics-port", "0"]


def raw_cmd(mode: str, target: str) -> list[str]:
    return [sys.executable, RAW_CLIENT, mode, target]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = f"/tmp/nvbench-pycache-{os.getuid()}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Child:
    """A started child process whose merged output is read until a marker line."""

    def __init__(self, cmd: Sequence[str], marker: str, timeout: float) -> None:
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(),
            cwd=_ROOT,
        )
        self.lines: list[str] = []
        found = threading.Event()
        self.seconds_to_marker = float("nan")

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if not found.is_set() and marker in line:
                    self.seconds_to_marker = time.perf_counter() - start
                    found.set()

        self._pump = threading.Thread(target=pump, name="nvbench-child-output", daemon=True)
        self._pump.start()
        if not found.wait(timeout):
            self.stop()
            raise TimeoutError(f"{cmd[1]} never printed {marker!r}:\n{''.join(self.lines)[-2000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(5)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def launch(cmd: Sequence[str], marker: str, timeout: float = 60.0) -> Child:
    return Child(cmd, marker, timeout)


def warm_up(target: str) -> None:
    """Run the daemon and both baseline modes once (writes bytecode, warms the page cache)."""
    for cmd, marker in (
        (daemon_cmd(target), DAEMON_SYNCED),
        (raw_cmd("list", target), "listed"),
        (raw_cmd("watch", target), "watching"),
    ):
        with launch(cmd, marker):
            pass


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
