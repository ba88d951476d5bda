"""Ctrl-C and SIGTERM at any moment: every command exits 130 / 143, with no traceback and no
message about anything but what it was doing.

The real console script runs as a subprocess. Moments are chosen by observation, not by sleeping:
"start-up" is the instant ``/proc/<pid>/status`` shows the process catching SIGTERM (the first
thing ``main()`` does; it then imports gRPC and the fake server), the other moments are output
lines or a call arriving at a server that never answers. A sweep adds signals at fixed offsets
after start-up; the assertions hold at every offset, the offsets only spread the samples.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvinformers.testing import FakeServer
from tests.e2e.procs import WAIT, Background
from tests.e2e.silent import SilentServer

pytestmark = pytest.mark.e2e

NVINFORMERS = str(Path(sys.executable).parent / "nvinformers")
SIGNALS = [signal.SIGINT, signal.SIGTERM]
#: Words that must never appear after a stop signal.
MISLEADING = ("Traceback", "KeyboardInterrupt", "did not sync", "Error", "error", "refused")


def catches(pid: int, signum: int) -> bool:
    """True when the process has a handler for ``signum`` (the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def command(*args: str) -> Background:
    """``nvinformers ARGS``, stdout read line by line, stderr apart."""
    return Background(*args, program=NVINFORMERS, stderr_apart=True)


def wait_until_catching(cmd: Background, signum: int = signal.SIGTERM) -> None:
    deadline = time.monotonic() + WAIT
    while not catches(cmd.proc.pid, signum):
        assert cmd.proc.poll() is None, "exited before handling signals"
        assert time.monotonic() < deadline, f"never installed a handler for signal {signum}"
        time.sleep(0.001)  # polling /proc: there is no event to wait on


def assert_stopped_quietly(cmd: Background, signum: int) -> str:
    code = cmd.terminate(signum=signum)
    output = f"{cmd.output}\n--- stderr ---\n{cmd.stderr}"
    assert code == 128 + signum, output
    assert cmd.stderr == "", output
    for word in MISLEADING:
        assert word not in output, output
    return output


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, seed=11) as srv:
        yield srv


@pytest.fixture(scope="module")
def silent() -> Iterator[SilentServer]:
    with SilentServer() as srv:
        yield srv


def socket_path() -> str:
    return os.path.join(tempfile.mkdtemp(dir="/tmp"), "a", "api.sock")


# -------------------------------------------------------------------------------- start-up


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("name", ["get", "watch", "demo", "fake-server"])
def test_a_signal_at_start_up_exits_128_plus_signum(
    name: str, signum: int, silent: SilentServer
) -> None:
    args = {
        "get": ("get", "gpus", "--target", silent.target),
        "watch": ("watch", "gpus", "--target", silent.target),
        "demo": ("demo",),
        "fake-server": ("fake-server", "--socket", socket_path()),
    }[name]
    cmd = command(*args)
    wait_until_catching(cmd)  # main() has just started: the imports are still to come
    assert_stopped_quietly(cmd, signum)


# ------------------------------------------------------------------------ during the work


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_during_a_call_that_never_returns(signum: int, silent: SilentServer) -> None:
    silent.calls.clear()
    cmd = command("get", "gpus", "--target", silent.target, "--request-timeout", "0")
    assert silent.calls.wait(WAIT)  # the call has reached the server, which never answers
    assert_stopped_quietly(cmd, signum)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_while_watching(signum: int, server: FakeServer) -> None:
    cmd = command("watch", "gpus", "--target", server.target)
    cmd.expect("gpu-7")
    assert_stopped_quietly(cmd, signum)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("moment", ["server started", "watching"])
def test_a_signal_during_the_demo(moment: str, signum: int) -> None:
    cmd = command("demo", "--flip-interval", "0.2")
    # "listening" is printed before the informer starts: the signal lands while it syncs.
    cmd.expect("listening on" if moment == "server started" else "Watching Ready transitions")
    assert_stopped_quietly(cmd, signum)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_while_the_fake_server_serves(signum: int) -> None:
    path = socket_path()
    cmd = command("fake-server", "--socket", path)
    cmd.expect("listening on")
    output = assert_stopped_quietly(cmd, signum)
    assert "Stopping server..." in output
    assert not os.path.exists(path)
    assert not os.path.exists(os.path.dirname(path))  # the directory it created, removed


@pytest.mark.parametrize(
    ("offset", "signum"),
    [
        (0.02, signal.SIGINT),
        (0.05, signal.SIGTERM),
        (0.1, signal.SIGINT),
        (0.2, signal.SIGTERM),
        (0.4, signal.SIGINT),
        (0.8, signal.SIGTERM),
    ],
)
def test_a_signal_at_any_offset_into_the_demo(offset: float, signum: int) -> None:
    cmd = command("demo", "--flip-interval", "0.2")
    wait_until_catching(cmd)
    time.sleep(offset)  # a sample point, not a wait: the assertions hold at every offset
    assert_stopped_quietly(cmd, signum)
