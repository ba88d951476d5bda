"""A Device API server the suite runs as a child process, so that it can kill and restart it.

The command runs in its own session (process group) with its output in a log file; ``kill()``
sends SIGKILL (no clean shutdown: the socket file stays behind, watches break mid-stream), and
``start()`` runs the same command again. Readiness is a condition, not a delay: the socket
accepts a connection and a ``GetGpu`` call is answered (any status but UNAVAILABLE).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence

import grpc

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1 import gpu_pb2_grpc
from nvinformers.clientset import parse_target

__all__ = ["ServerProcess", "ServerProcessError"]

_POLL = 0.05


class ServerProcessError(RuntimeError):
    """The server did not start, or exited when it should not have; the message quotes its log."""


class ServerProcess:
    """Runs ``argv`` (a server listening at ``target``) as a child process.

    Thread-safety: meant for the test's thread; not safe for concurrent calls.
    """

    def __init__(self, argv: Sequence[str], target: str, log_path: str) -> None:
        self.argv = tuple(argv)
        self.target = target
        self.log_path = log_path
        self._parsed = parse_target(target)
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Run the command and wait until the server answers RPCs.

        Blocks up to ``timeout`` seconds.

        Raises:
            ServerProcessError: something already listens at the target, the process exited, or
                it did not answer in time (the message ends with the log's tail).
        """
        if self.running:
            raise ServerProcessError(f"server process for {self.target} is already running")
        if self._accepts():
            raise ServerProcessError(
                f"something already listens at {self.target}; stop it (the suite starts the "
                "server itself when NVINFORMERS_CONFORMANCE_SERVER_CMD is set)"
            )
        with open(self.log_path, "ab") as log:
            log.write(f"--- start #{self.starts + 1}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while not self._answers():
            if self._proc.poll() is not None:
                raise ServerProcessError(
                    f"server exited with status {self._proc.returncode} before serving "
                    f"{self.target}\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ServerProcessError(
                    f"server did not answer at {self.target} within {timeout:.0f} s\n"
                    f"{self.log_tail()}"
                )
            pause.wait(_POLL)

    def kill(self) -> None:
        """SIGKILL the process group and reap it (no-op when not running)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._proc = None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._proc = None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            with open(self.log_path, "rb") as log:
                text = log.read().decode(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def _accepts(self) -> bool:
        parsed = self._parsed
        if parsed.kind == "unix":
            assert parsed.path is not None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: object = parsed.path
        else:
            host, _, port = parsed.address.rpartition(":")
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            address = (host.strip("[]"), int(port))
        try:
            sock.settimeout(1.0)
            sock.connect(address)  # type: ignore[arg-type]
        except OSError:
            return False
        finally:
            sock.close()
        return True

    def _answers(self) -> bool:
        if not self._accepts():
            return False
        with grpc.insecure_channel(self._parsed.address) as channel:
            stub = gpu_pb2_grpc.GpuServiceStub(channel)
            try:
                stub.GetGpu(pb.GetGpuRequest(name="conformance-readiness-probe"), timeout=2.0)
            except grpc.RpcError as err:
                return err.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
        return True
