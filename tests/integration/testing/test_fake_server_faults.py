"""FakeServer over a real Unix socket: fault injection, lifecycle, socket safety, concurrency and
the console entry point."""

from __future__ import annotations

import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1 import wire_pb2
from nvinformers.testing import FakeServer, FakeServerError, main_fake_server
from nvinformers.testing._socket_path import target_to_socket_path

from .conftest import WAIT, Client

MakeClient = Callable[[str], Client]


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    """A short directory under /tmp (Unix socket paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="nvft-", dir="/tmp"))
    yield path
    for child in sorted(path.rglob("*"), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()


def rv(event: pb.WatchGpusResponse) -> int:
    return int(event.object.object_meta.resource_version)


class TestStreamFaults:
    def test_end_watches_with_a_status(self, client: Client, server: FakeServer) -> None:
        streams = [client.watch(resource_version="8") for _ in range(3)]
        assert server.wait_for_watches(3, WAIT)
        assert server.end_watches(grpc.StatusCode.UNAVAILABLE, "connection reset") == 3
        for stream in streams:
            end = stream.end()
            assert (end.code, end.details) == (grpc.StatusCode.UNAVAILABLE, "connection reset")
        assert server.wait_for_watches(0, WAIT)

    def test_end_watches_cleanly(self, client: Client, server: FakeServer) -> None:
        stream = client.watch(resource_version="8")
        assert server.wait_for_watches(1, WAIT)
        server.end_watches()
        assert stream.end().code is grpc.StatusCode.OK

    def test_drop_next_events(self, client: Client, server: FakeServer) -> None:
        stream = client.watch(resource_version="8")
        assert server.wait_for_watches(1, WAIT)
        server.drop_next_events(2)
        server.set_ready("gpu-0", False)  # 9: dropped
        server.set_ready("gpu-1", False)  # 10: dropped
        server.set_ready("gpu-2", False)  # 11: delivered
        event = stream.next()
        assert (event.object.object_meta.name, rv(event)) == ("gpu-2", 11)
        # The history still has them: a watch from 8 replays all three.
        assert [rv(e) for e in client.watch(resource_version="8").take(3)] == [9, 10, 11]

    def test_fail_next_lists(self, client: Client, server: FakeServer) -> None:
        server.fail_next_lists(2, grpc.StatusCode.UNAVAILABLE, "try later")
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as info:
                client.list()
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            assert info.value.details() == "try later"
        assert len(client.list().items) == 8
        assert server.calls["ListGpus"] == 3

    def test_fail_next_watches(self, client: Client, server: FakeServer) -> None:
        server.fail_next_watches(1, grpc.StatusCode.RESOURCE_EXHAUSTED)
        end = client.watch().end()
        assert end.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "injected fault" in end.details
        assert len(client.watch().take(8)) == 8
        assert server.calls["WatchGpus"] == 2

    def test_fail_next_calls_of_any_method(self, client: Client, server: FakeServer) -> None:
        server.fail_next_calls("GetGpu", 1, grpc.StatusCode.INTERNAL)
        with pytest.raises(grpc.RpcError) as info:
            client.get("gpu-0")
        assert info.value.code() is grpc.StatusCode.INTERNAL
        assert client.get("gpu-0").object_meta.name == "gpu-0"
        with pytest.raises(ValueError, match="unknown method"):
            server.fail_next_calls("Nope", 1)

    def test_ignore_resource_version(self, client: Client, server: FakeServer) -> None:
        server.set_ignore_resource_version(True)
        assert server.ignore_resource_version
        burst = client.watch(resource_version="8").take(8)
        assert {e.type for e in burst} == {"ADDED"}
        server.compact()
        assert len(client.watch(resource_version="2").take(8)) == 8  # not "too old"
        server.set_ignore_resource_version(False)
        stream = client.watch(resource_version="8")
        server.set_ready("gpu-0", False)
        assert stream.next().type == "MODIFIED"

    def test_ignore_resource_version_at_construction(self, make_client: MakeClient) -> None:
        with FakeServer(gpus=2, flip_interval=None, ignore_resource_version=True) as server:
            client = make_client(server.target)
            assert [e.type for e in client.watch(resource_version="2").take(2)] == ["ADDED"] * 2

    def test_send_raw_watch_event(self, client: Client, server: FakeServer) -> None:
        raw_watch = client.channel.unary_stream(
            "/nvidia.nvsentinel.v1alpha1.GpuService/WatchGpus",
            request_serializer=pb.WatchGpusRequest.SerializeToString,
            response_deserializer=wire_pb2.RawWatchGpusResponse.FromString,
        )
        call = raw_watch(pb.WatchGpusRequest(opts=pb.ListOptions(resource_version="8")))
        try:
            assert server.wait_for_watches(1, WAIT)
            assert server.send_raw_watch_event("ERROR", b"\xff\x00garbage") == 1
            assert server.send_raw_watch_event("SURPRISE", None) == 1
            server.set_ready("gpu-0", False)
            stream = iter(call)
            first, second, third = next(stream), next(stream), next(stream)
            assert (first.type, first.object) == ("ERROR", b"\xff\x00garbage")
            assert second.type == "SURPRISE"
            assert not second.HasField("object")
            assert third.type == "MODIFIED"
            assert pb.Gpu.FromString(third.object).object_meta.resource_version == "9"
        finally:
            call.cancel()
        assert server.wait_for_watches(0, WAIT)
        assert server.revision == 9


class TestLifecycle:
    def test_stop_frees_the_socket_and_restart_keeps_state(
        self, make_client: MakeClient, tmp_dir: Path
    ) -> None:
        path = tmp_dir / "api.sock"
        server = FakeServer(socket_path=path, flip_interval=None)
        server.start()
        try:
            client = make_client(server.target)
            server.set_ready("gpu-0", False)
            stream = client.watch(resource_version="9")
            assert server.wait_for_watches(1, WAIT)
            server.stop()
            # Like the device-apiserver, whose clients see the connection drop on shutdown.
            assert stream.end().code is grpc.StatusCode.UNAVAILABLE
            assert not path.exists()
            assert not server.is_serving
            with pytest.raises(grpc.RpcError) as info:
                client.list()
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            server.set_ready("gpu-1", False)  # the API works while stopped
            server.start()
            fresh = make_client(server.target)
            gpu_list = fresh.list()
            assert gpu_list.list_meta.resource_version == "10"
            assert gpu_list.items[0].status.conditions[0].status == "False"
            assert [rv(e) for e in fresh.watch(resource_version="8").take(2)] == [9, 10]
            server.restart()
            assert make_client(server.target).list().list_meta.resource_version == "10"
            with pytest.raises(RuntimeError, match="already serving"):
                server.start()
        finally:
            server.stop()
        server.stop()  # idempotent

    def test_default_socket_is_private_and_removed(self) -> None:
        server = FakeServer(gpus=1, flip_interval=None)
        assert server.target == f"unix://{server.socket_path}"
        assert server.socket_path.startswith("/tmp/nvfake-")
        with server:
            assert server.is_serving
            assert stat.S_ISSOCK(os.lstat(server.socket_path).st_mode)
        assert not os.path.exists(os.path.dirname(server.socket_path))

    def test_stop_joins_every_thread(self, make_client: MakeClient) -> None:
        def ours() -> list[str]:
            return [t.name for t in threading.enumerate() if "fake-server" in t.name]

        assert ours() == []
        server = FakeServer(flip_interval=0.01, compaction_interval=0.01, bookmark_interval=0.01)
        with server:
            stream = make_client(server.target).watch(allow_watch_bookmarks=True)
            stream.next_of_type("BOOKMARK")
            assert "nvinformers-fake-server-flipper" in ours()
            assert "nvinformers-fake-server-compactor" in ours()
        assert ours() == []
        assert stream.end().code is grpc.StatusCode.UNAVAILABLE

    def test_socket_mode_is_0660_and_missing_parents_are_0755(self, tmp_dir: Path) -> None:
        path = tmp_dir / "a" / "b" / "api.sock"
        with FakeServer(socket_path=path, flip_interval=None):
            assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660
            assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o755
            assert stat.S_IMODE(os.stat(path.parent.parent).st_mode) == 0o755

    def test_the_directories_it_created_are_removed_on_stop_and_made_again_on_start(
        self, tmp_dir: Path
    ) -> None:
        path = tmp_dir / "a" / "b" / "api.sock"
        server = FakeServer(socket_path=path, flip_interval=None)
        with server:
            assert path.parent.is_dir()
        assert list(tmp_dir.iterdir()) == []
        with server:  # a restart makes them again
            (path.parent / "keep").write_text("not ours")
        assert (path.parent / "keep").read_text() == "not ours"  # not empty: left in place
        assert not path.exists()

    @pytest.mark.parametrize("form", ["unix://{}", "unix:{}"])
    def test_socket_path_takes_a_unix_target(
        self, make_client: MakeClient, tmp_dir: Path, form: str
    ) -> None:
        path = tmp_dir / "d" / "api.sock"
        with FakeServer(socket_path=form.format(path), flip_interval=None, gpus=1) as server:
            assert server.socket_path == str(path)
            assert server.target == f"unix://{path}"
            assert len(make_client(server.target).list().items) == 1

    def test_a_stale_socket_is_replaced(self, make_client: MakeClient, tmp_dir: Path) -> None:
        path = tmp_dir / "stale.sock"
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()  # the file stays; nothing listens
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        with FakeServer(socket_path=path, flip_interval=None, gpus=1) as server:
            assert len(make_client(server.target).list().items) == 1

    def test_a_live_socket_is_refused(self, make_client: MakeClient, tmp_dir: Path) -> None:
        path = tmp_dir / "live.sock"
        with FakeServer(socket_path=path, flip_interval=None, gpus=1) as first:
            second = FakeServer(socket_path=path, flip_interval=None)
            with pytest.raises(FakeServerError, match="another server is listening"):
                second.start()
            assert len(make_client(first.target).list().items) == 1

    @pytest.mark.parametrize("kind", ["file", "directory", "symlink", "dangling-symlink"])
    def test_a_path_that_is_not_a_socket_is_refused_and_untouched(
        self, tmp_dir: Path, kind: str
    ) -> None:
        path = tmp_dir / "api.sock"
        target = tmp_dir / "precious"
        if kind == "file":
            path.write_text("keep me")
        elif kind == "directory":
            path.mkdir()
        elif kind == "symlink":
            target.write_text("keep me too")
            path.symlink_to(target)
        else:
            path.symlink_to(tmp_dir / "nowhere")
        server = FakeServer(socket_path=path, flip_interval=None)
        expected = "symbolic link" if "symlink" in kind else "not a socket"
        with pytest.raises(FakeServerError, match=expected):
            server.start()
        assert not server.is_serving
        if kind == "file":
            assert path.read_text() == "keep me"
        elif kind == "directory":
            assert path.is_dir()
        else:
            assert path.is_symlink()
            if kind == "symlink":
                assert target.read_text() == "keep me too"

    def test_a_path_too_long_for_a_socket_is_refused(self, tmp_dir: Path) -> None:
        path = tmp_dir / ("x" * 120)
        with pytest.raises(FakeServerError, match="too long"):
            FakeServer(socket_path=path, flip_interval=None).start()

    def test_constructor_validation(self) -> None:
        with pytest.raises(ValueError, match="gpus"):
            FakeServer(gpus=-1)
        with pytest.raises(ValueError, match="max_workers"):
            FakeServer(max_workers=0)
        with pytest.raises(ValueError, match="flip_interval"):
            FakeServer(flip_interval=-1)


class TestConcurrency:
    def test_forty_concurrent_watches_are_all_served(
        self, client: Client, server: FakeServer
    ) -> None:
        streams = [client.watch() for _ in range(40)]
        for stream in streams:
            assert len(stream.take(8)) == 8
        assert server.wait_for_watches(40, WAIT)
        server.set_ready("gpu-7", False)
        for stream in streams:
            event = stream.next()
            assert (event.type, rv(event)) == ("MODIFIED", 9)
        assert len(client.list().items) == 8  # unary calls still get a thread
        for stream in streams:
            stream.close()
        assert server.wait_for_watches(0, WAIT)

    def test_client_cancel_frees_the_server_thread(
        self, client: Client, server: FakeServer
    ) -> None:
        stream = client.watch(resource_version="8")
        assert server.wait_for_watches(1, WAIT)
        stream.close()
        assert server.wait_for_watches(0, WAIT)
        assert server.storage.tracker.watcher_count == 0

    def test_closing_the_channel_frees_the_server_thread(self, server: FakeServer) -> None:
        client = Client(server.target)
        client.watch(resource_version="8")
        assert server.wait_for_watches(1, WAIT)
        client.channel.close()
        assert server.wait_for_watches(0, WAIT)
        client.close()

    def test_beyond_max_workers_calls_are_refused_not_queued(self, make_client: MakeClient) -> None:
        with FakeServer(gpus=1, flip_interval=None, max_workers=2) as server:
            client = make_client(server.target)
            streams = [client.watch(resource_version="1") for _ in range(2)]
            assert server.wait_for_watches(2, WAIT)
            with pytest.raises(grpc.RpcError) as info:
                client.list()
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            streams[0].close()
            assert server.wait_for_watches(1, WAIT)
            assert len(client.list().items) == 1


class TestConsoleEntryPoint:
    def test_runs_until_sigterm_and_removes_the_socket(
        self, tmp_dir: Path, make_client: MakeClient
    ) -> None:
        path = tmp_dir / "cli.sock"
        argv = ["--socket", str(path), "--gpus", "3", "--flip-interval", "0", "--seed", "1"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "nvinformers.testing", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))

        reader = threading.Thread(target=pump, name="test-cli-stdout")
        reader.start()
        try:
            assert lines.get(timeout=30) == f"Fake Device API listening on {path}"
            assert lines.get(timeout=WAIT) == f"target: unix://{path}"
            assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660
            assert len(make_client(f"unix://{path}").list().items) == 3
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 143  # 128 + SIGTERM, as every CLI command
            assert lines.get(timeout=WAIT) == "Stopping server..."
            assert not path.exists()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(WAIT)
            assert proc.stderr is not None
            proc.stderr.close()
            assert proc.stdout is not None
            proc.stdout.close()

    def test_refuses_an_occupied_path(
        self, tmp_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_dir / "file"
        path.write_text("x")
        assert main_fake_server(["--socket", str(path), "--flip-interval", "0"]) == 1
        assert "not a socket" in capsys.readouterr().err
        assert path.read_text() == "x"

    def test_socket_defaults_to_the_target_environment_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("NVIDIA_DEVICE_API_TARGET", "unix:///tmp/x/api.sock")
        assert target_to_socket_path("unix:///tmp/x/api.sock") == "/tmp/x/api.sock"
        assert target_to_socket_path("unix:/tmp/y.sock") == "/tmp/y.sock"
        assert target_to_socket_path("/tmp/z.sock") == "/tmp/z.sock"
        with pytest.raises(ValueError, match="Unix sockets only"):
            target_to_socket_path("localhost:50051")
        monkeypatch.setenv("NVIDIA_DEVICE_API_TARGET", "dns:///host:1")
        assert main_fake_server([]) == 2  # a usage error, naming the variable
