"""``nvinformers fake-server`` as a subprocess: where it listens, what it creates and removes,
and how many watches it serves."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from nvinformers import errors
from nvinformers.clientset import Config, new_for_config
from nvinformers.options import ListOptions
from tests.e2e.procs import ROOT, WAIT, cli, env

pytestmark = pytest.mark.e2e

NVINFORMERS = str(Path(sys.executable).parent / "nvinformers")


class FakeServerCommand:
    """``nvinformers fake-server ARGS`` until :meth:`stop`; started when it says it listens."""

    def __init__(
        self, *args: str, umask: int = -1, cwd: str | None = None, **extra_env: str
    ) -> None:
        self.proc = subprocess.Popen(
            [NVINFORMERS, "fake-server", "--flip-interval", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env(**extra_env), cwd=cwd or ROOT, umask=umask,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()  # blocks until it serves or exits
        assert first.startswith("Fake Device API listening on "), self._failure(first)
        self.path = first.removeprefix("Fake Device API listening on ").strip()
        self.target = f"unix://{self.path}"

    def _failure(self, first: str) -> str:
        self.proc.kill()
        _, err = self.proc.communicate(timeout=WAIT)
        return f"did not start: {first!r} {err}"

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode, out + err


@pytest.fixture
def tmp() -> Iterator[str]:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvfs-")  # short: socket paths are bounded
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_every_directory_it_creates_is_0755_under_umask_000_and_removed_on_exit(
    tmp: str,
) -> None:
    path = os.path.join(tmp, "um", "a", "b", "api.sock")
    server = FakeServerCommand("--socket", path, umask=0)
    try:
        assert server.path == path
        created = [os.path.join(tmp, "um"), os.path.join(tmp, "um", "a"), os.path.dirname(path)]
        assert [oct(mode(d)) for d in created] == ["0o755"] * 3
        assert oct(mode(path)) == "0o660"
    finally:
        code, output = server.stop()
    assert code == 143, output
    assert os.listdir(tmp) == []  # the socket and every directory it made are gone
    assert mode(tmp) == 0o700  # what existed before is left alone


@pytest.mark.parametrize("form", ["unix://{}", "unix:{}", "{}"])  # {} is absolute
def test_socket_takes_a_path_or_a_unix_target(tmp: str, form: str) -> None:
    path = os.path.join(tmp, "d", "u.sock")
    workdir = os.path.join(tmp, "cwd")
    os.mkdir(workdir)
    server = FakeServerCommand("--socket", form.format(path), cwd=workdir)
    try:
        assert server.path == path
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        result = cli("get", "gpus", "-o", "name", "--target", server.target)
        assert result.stdout.splitlines()[0] == "gpu/gpu-0", result.stderr
        assert os.listdir(workdir) == []  # no ./unix:/… tree
    finally:
        server.stop()
    assert sorted(os.listdir(tmp)) == ["cwd"]


def test_the_default_socket_comes_from_target_then_sock(tmp: str) -> None:
    from_sock = os.path.join(tmp, "sock", "api.sock")
    server = FakeServerCommand(NVIDIA_DEVICE_API_SOCK=f"unix://{from_sock}")
    try:
        assert server.path == from_sock
    finally:
        server.stop()
    from_target = os.path.join(tmp, "target", "api.sock")
    server = FakeServerCommand(
        NVIDIA_DEVICE_API_TARGET=f"unix://{from_target}",
        NVIDIA_DEVICE_API_SOCK=f"unix://{from_sock}",
    )
    try:
        assert server.path == from_target
    finally:
        server.stop()
    assert os.listdir(tmp) == []


def test_it_serves_200_open_watches(tmp: str) -> None:
    server = FakeServerCommand("--socket", os.path.join(tmp, "api.sock"), "--gpus", "1")
    cs = new_for_config(Config(target=server.target, metrics_registry=CollectorRegistry()))
    watches = []
    try:
        gpus = cs.device_v1alpha1().gpus()
        for _ in range(200):
            watch = gpus.watch(ListOptions(resource_version=""))
            watches.append(watch)
            event = next(iter(watch))  # the ADDED burst: this watch is being served
            assert event.object.metadata.name == "gpu-0"
    finally:
        for watch in watches:
            watch.stop()
        cs.close()
        server.stop()
    assert len(watches) == 200


def test_max_workers_bounds_the_watches_and_a_full_pool_reads_as_such(tmp: str) -> None:
    assert "--max-workers" in cli("fake-server", "--help").stdout
    server = FakeServerCommand("--socket", os.path.join(tmp, "api.sock"), "--max-workers", "2")
    cs = new_for_config(Config(target=server.target, metrics_registry=CollectorRegistry()))
    gpus = cs.device_v1alpha1().gpus()
    watches = [gpus.watch(ListOptions(resource_version="")) for _ in range(2)]
    try:
        for watch in watches:
            next(iter(watch))
        third = gpus.watch(ListOptions(resource_version=""))
        with third, pytest.raises(errors.ExpiredError) as info:  # an informer relists on it
            next(iter(third))
        message = str(info.value)
        assert "Concurrent RPC limit exceeded" in message  # the server's own words
        assert "expired" not in message and "resource version" not in message
        result = cli("watch", "gpus", "--resource-version", "", "--target", server.target)
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert line.startswith("Error from server (TooManyRequests):")
        assert "Concurrent RPC limit exceeded" in line and "expired" not in line
    finally:
        for watch in watches:
            watch.stop()
        cs.close()
        server.stop()
