"""Hostile and bad input: each case gives a clear, specific error, or is logged and counted, and
none stops the informer or loses what it has cached.

Covered elsewhere, not repeated here (see the report of issue 6): garbage target strings
(tests/unit/clientset/test_clientset_target.py, including a property test), a selector the client
parses (tests/unit/test_labels.py), malformed get/list responses and the 4 MiB list at the
clientset level (tests/integration/clientset/test_clientset_unary.py), malformed watch events at
the watch-adapter level (tests/unit/clientset/test_clientset_watch_adapter.py), handler isolation
(tests/integration/informers/test_gpu_informer.py), reconcile error semantics
(tests/unit/controller/test_reconcile_loop.py). Here the same inputs hit a running informer.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers import errors
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.controller import Controller, Request, Result, TerminalError
from nvinformers.listers import GPULister
from nvinformers.options import ListOptions
from nvinformers.testing import FakeServer
from tests.integration.reliability.conftest import (
    WAIT,
    RunInformer,
    cache_matches_server,
    nvinformers_records,
)
from tests.unit.cache.recording import RecordingHandler
from tests.unit.cache.scripted import eventually

REPO = Path(__file__).resolve().parents[3]


def private_dir() -> str:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-rel-")
    os.chmod(directory, 0o755)
    return directory


def fails(informer: Any, n: int = 3) -> bool:
    return bool(informer.reflector.health.failures >= n)


# ------------------------------------------------------------------------ the endpoint itself


def test_a_missing_socket_is_named_and_the_informer_syncs_once_the_server_appears(
    run_informer: RunInformer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    directory = private_dir()
    path = os.path.join(directory, "api.sock")
    try:
        with new_for_config(Config(target=f"unix://{path}")) as cs:
            informer = run_informer(cs)
            assert eventually(lambda: fails(informer))
            health = informer.health()
            assert not health.healthy and health.reason == "not synced"
            assert "ServiceUnavailableError" in health.last_error
            assert f"unix://{path}" in health.last_error
            assert "socket may be missing or the server down" in health.last_error
            # One line per component (the reflector's warning, the clientset's first RPC
            # failure), however many retries.
            logged = nvinformers_records(caplog.records, logging.WARNING)
            assert sorted(r.name for r in logged) == [
                "nvinformers.cache.reflector",
                "nvinformers.clientset",
            ]
            with FakeServer(socket_path=path, flip_interval=None, gpus=3) as server:
                assert informer.wait_for_sync(WAIT)
                assert cache_matches_server(informer, server)
                assert eventually(lambda: informer.health().healthy)
                run_informer.stop_all()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


_LIST_SCRIPT = """
import sys
from nvinformers import errors
from nvinformers.clientset import Config, new_for_config
with new_for_config(Config(target=sys.argv[1])) as cs:
    try:
        print("listed", len(cs.device_v1alpha1().gpus().list(timeout=10).items))
    except errors.StatusError as exc:
        print(type(exc).__name__, "|", exc)
"""


def _list_as_unprivileged(target: str) -> str:
    """List from a child process that file permissions apply to, and return what it printed.

    As root, file modes do not stop ``connect()``: the child then runs as root without
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (dropped from its bounding set by ``setpriv``),
    so the mode of a root-owned socket applies to it like to any other user.
    """
    command = [sys.executable, "-c", _LIST_SCRIPT, target]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip(
                "running as root without setpriv: cannot drop CAP_DAC_OVERRIDE, so no socket "
                "mode can refuse this process (the PERMISSION_DENIED mapping is tested below)"
            )
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_socket_without_permission_says_permission_denied_and_names_the_target() -> None:
    directory = private_dir()
    try:
        with FakeServer(
            socket_path=os.path.join(directory, "api.sock"), flip_interval=None, gpus=2
        ) as server:
            os.chmod(server.socket_path, 0o000)
            denied = _list_as_unprivileged(server.target)
            assert denied.startswith("ServiceUnavailableError |"), denied
            assert server.target in denied
            assert "Permission denied" in denied
            os.chmod(server.socket_path, 0o660)  # the same child, allowed: it was the mode
            assert _list_as_unprivileged(server.target) == "listed 2"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_permission_denied_status_is_forbidden_and_the_informer_retries(
    server: FakeServer, clientset: Clientset, run_informer: RunInformer
) -> None:
    server.fail_next_lists(1, grpc.StatusCode.PERMISSION_DENIED, "RBAC: gpus is not allowed")
    with pytest.raises(errors.ForbiddenError, match="forbidden: RBAC: gpus is not allowed") as info:
        clientset.device_v1alpha1().gpus().list()
    assert info.value.code == 403 and info.value.grpc_code == "PERMISSION_DENIED"
    server.fail_next_lists(3, grpc.StatusCode.PERMISSION_DENIED, "RBAC: gpus is not allowed")
    informer = run_informer(clientset)
    assert informer.wait_for_sync(WAIT)
    assert "ForbiddenError" in informer.health().last_error
    assert server.calls["ListGpus"] == 1 + 4


@pytest.mark.parametrize("kind", ["regular-file", "directory"])
def test_a_path_that_is_not_a_socket_is_refused_naming_the_target(
    run_informer: RunInformer, kind: str
) -> None:
    directory = private_dir()
    path = os.path.join(directory, "api.sock")
    if kind == "regular-file":
        Path(path).write_text("not a socket")
    else:
        os.mkdir(path)
    try:
        with new_for_config(Config(target=f"unix://{path}")) as cs:
            with pytest.raises(errors.ServiceUnavailableError) as info:
                cs.device_v1alpha1().gpus().list(timeout=5)
            assert f"unix://{path}" in str(info.value)
            assert "Connection refused" in str(info.value)
            informer = run_informer(cs)
            assert eventually(lambda: fails(informer))
            assert informer.health().reason == "not synced"
            run_informer.stop_all()
        assert os.path.exists(path)  # untouched
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_server_that_does_not_implement_the_service_is_method_not_supported(
    run_informer: RunInformer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    directory = private_dir()
    target = f"unix://{os.path.join(directory, 'api.sock')}"
    bare = grpc.server(ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-bare-grpc"))
    bare.add_insecure_port(target)  # no service registered: every call is UNIMPLEMENTED
    bare.start()
    try:
        with new_for_config(Config(target=target, metrics_registry=CollectorRegistry())) as cs:
            with pytest.raises(errors.MethodNotSupportedError) as info:
                cs.device_v1alpha1().gpus().list()
            message = str(info.value)
            assert "/nvidia.nvsentinel.v1alpha1.GpuService/ListGpus (UNIMPLEMENTED)" in message
            assert "another version of the API" in message
            assert info.value.code == 405
            informer = run_informer(cs)
            assert eventually(lambda: fails(informer))
            health = informer.health()
            assert health.reason == "not synced" and "MethodNotSupportedError" in health.last_error
            # The clientset's first failure (one streak for the direct call and the informer's
            # retries) and the reflector's warning: nothing per retry.
            logged = nvinformers_records(caplog.records, logging.WARNING)
            assert sorted(r.name for r in logged) == [
                "nvinformers.cache.reflector",
                "nvinformers.clientset",
            ], [r.getMessage() for r in logged]
            run_informer.stop_all()
    finally:
        bare.stop(None).wait(WAIT)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_selector_the_server_rejects_is_a_bad_request_naming_it(
    server: FakeServer, clientset: Clientset, run_informer: RunInformer
) -> None:
    with pytest.raises(errors.BadRequestError, match=r'"rack in \(a": expected "\)"'):
        clientset.device_v1alpha1().gpus().list(ListOptions(label_selector="rack in (a"))

    def tweak(options: ListOptions) -> ListOptions:
        return ListOptions(
            label_selector="rack in (a",
            resource_version=options.resource_version,
            allow_watch_bookmarks=options.allow_watch_bookmarks,
            timeout_seconds=options.timeout_seconds,
        )

    informer = run_informer(clientset, tweak_list_options=tweak)
    assert eventually(lambda: fails(informer))
    health = informer.health()
    assert health.reason == "not synced"
    assert "BadRequestError" in health.last_error and "rack in (a" in health.last_error


# ------------------------------------------------------------------ what the server sends


Synced = tuple[Any, RecordingHandler, CollectorRegistry]


@pytest.fixture
def synced(server: FakeServer, clientset: Clientset, run_informer: RunInformer) -> Synced:
    """A synced informer with a recording handler, whose watch has delivered one event."""
    handler, registry = RecordingHandler(), CollectorRegistry()
    informer = run_informer(clientset, (handler,), registry=registry)
    assert informer.wait_for_sync(WAIT)
    assert server.wait_for_watches(1, WAIT)
    server.set_ready("gpu-0", False)  # one event: the watch is established and not "short"
    assert handler.wait_for_count(9)
    return informer, handler, registry


def _nameless(rv: str) -> bytes:
    return GPU.new("", resource_version=rv, uuid="GPU-x").to_bytes()


@pytest.mark.parametrize(
    ("event_type", "payload", "reason", "error"),
    [
        ("ADDED", None, "malformed", "watch event ADDED without an object"),
        ("ADDED", b"", "malformed", "watch event ADDED object without metadata.name"),
        ("MODIFIED", _nameless("99"), "malformed", "MODIFIED object without metadata.name"),
        ("DELETED", b"\xff\xff\xff", "malformed", "malformed GPU object"),
        ("ERROR", b"", "error", "in-band ERROR watch event"),
    ],
    ids=["no-object", "no-metadata", "no-name", "undecodable", "in-band-error"],
)
def test_a_malformed_event_is_counted_and_relisted_without_losing_the_cache(
    server: FakeServer,
    synced: Synced,
    event_type: str,
    payload: bytes | None,
    reason: str,
    error: str,
) -> None:
    informer, handler, _ = synced
    cached = len(informer.get_indexer().list())
    lists = server.calls["ListGpus"]
    assert server.send_raw_watch_event(event_type, payload) == 1
    assert eventually(lambda: server.calls["ListGpus"] == lists + 1)  # relist, once
    assert informer.reflector.stats.watch_restarts.get(reason) == 1
    assert error in informer.reflector.health.last_error
    assert len(informer.get_indexer().list()) == cached
    assert server.wait_for_watches(1, WAIT)
    server.set_ready("gpu-1", False)
    assert eventually(lambda: cache_matches_server(informer, server))
    # The relist found nothing new: the handler saw only the real change.
    assert handler.wait_for_count(10)
    assert handler.snapshot()[9].startswith("update gpu-1@")
    assert len(handler.snapshot()) == 10


def test_an_unknown_event_type_is_skipped_and_warned_once(
    server: FakeServer, synced: Synced, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    informer, handler, _ = synced
    calls = server.calls
    bogus = server.get_gpu("gpu-2").to_bytes()
    for _ in range(3):
        server.send_raw_watch_event("REPLACED", bogus)
    server.set_ready("gpu-1", False)
    assert handler.wait_for_count(10)
    assert eventually(lambda: cache_matches_server(informer, server))
    assert server.calls == calls  # the same watch carried on: no relist, no re-watch
    warned = [r for r in caplog.records if "unknown type" in r.getMessage()]
    assert len(warned) == 1 and "'REPLACED'" in warned[0].getMessage()


def test_a_duplicate_added_is_not_delivered_again(server: FakeServer, synced: Synced) -> None:
    informer, handler, _ = synced
    calls = server.calls
    added = informer.reflector.stats.events.get("ADDED", 0)
    server.send_raw_watch_event("ADDED", server.get_gpu("gpu-2").to_bytes())
    server.set_ready("gpu-1", False)  # in stream order after the duplicate
    assert handler.wait_for_count(10)
    assert informer.reflector.stats.events.get("ADDED", 0) == added + 1  # received...
    assert handler.snapshot()[9].startswith("update gpu-1@")  # ...but not delivered
    assert len(handler.snapshot()) == 10
    assert cache_matches_server(informer, server) and server.calls == calls


def test_an_event_older_than_the_cached_object_is_dropped_and_counted(
    server: FakeServer, synced: Synced, clientset: Clientset
) -> None:
    informer, handler, registry = synced
    old = server.get_gpu("gpu-4")
    server.set_ready("gpu-4", False)
    assert handler.wait_for_count(10)
    server.send_raw_watch_event("MODIFIED", old.to_bytes())
    server.send_raw_watch_event("DELETED", old.to_bytes())  # a stale delete must not delete
    server.set_ready("gpu-5", False)
    assert handler.wait_for_count(11)
    assert handler.snapshot()[10].startswith("update gpu-5@")
    assert len(handler.snapshot()) == 11
    assert eventually(lambda: informer.stale_events_dropped == 2)
    assert cache_matches_server(informer, server)
    assert (
        registry.get_sample_value(
            "nvinformers_informer_stale_events_dropped_total", {"informer": "gpus"}
        )
        == 2.0
    )


def test_a_server_that_ignores_the_revision_cannot_hide_a_delete(
    server: FakeServer, synced: Synced
) -> None:
    """Some server builds start every watch with an ADDED burst of their current state (the
    contract's "ignores the requested revision"). A re-watch after a restart then carries no
    trace of what was deleted meanwhile; the reflector must notice the replay and relist.
    (Regression test: issue 6 found such deletes staying in the cache for good.)"""
    informer, handler, _ = synced
    lists = server.calls["ListGpus"]
    server.set_ignore_resource_version(True)
    server.stop()
    server.delete_gpu("gpu-3")  # while the client is away
    server.start()
    assert eventually(lambda: cache_matches_server(informer, server))
    assert informer.reflector.stats.watch_restarts.get("replayed", 0) >= 1
    assert server.calls["ListGpus"] > lists
    assert eventually(
        lambda: any(e.startswith("delete tombstone:gpu-3@") for e in handler.snapshot())
    )
    server.set_ready("gpu-1", False)  # and it keeps following the server
    assert eventually(lambda: cache_matches_server(informer, server))


# ------------------------------------------------------------------------------- sizes


def test_a_list_above_the_receive_limit_says_which_option_to_raise(
    run_informer: RunInformer,
) -> None:
    with FakeServer(flip_interval=None, bookmark_interval=None, gpus=100) as server:
        config = Config(
            target=server.target,
            max_receive_message_length=16 * 1024,
            metrics_registry=CollectorRegistry(),
        )
        with new_for_config(config) as cs:
            informer = run_informer(cs)
            assert eventually(lambda: fails(informer))
            health = informer.health()
            assert health.reason == "not synced"
            assert "InternalError" in health.last_error
            assert "RESOURCE_EXHAUSTED" in health.last_error
            assert "Config.max_receive_message_length" in health.last_error
            run_informer.stop_all()


def test_a_relist_that_grew_too_large_keeps_the_cache_and_recovers_when_it_shrinks(
    run_informer: RunInformer,
) -> None:
    with FakeServer(flip_interval=None, bookmark_interval=None, gpus=40) as server:
        config = Config(
            target=server.target,
            max_receive_message_length=16 * 1024,  # 40 GPUs fit, 140 do not
            metrics_registry=CollectorRegistry(),
        )
        with new_for_config(config) as cs:
            informer = run_informer(cs, outage_grace=0.1)
            assert informer.wait_for_sync(WAIT)
            assert server.wait_for_watches(1, WAIT)
            extra = [f"gpu-x{i:03d}" for i in range(100)]
            for name in extra:  # small watch events: the cache follows
                server.create_gpu(GPU.new(name, uuid=f"GPU-{name}"))
            assert eventually(lambda: cache_matches_server(informer, server))
            server.end_watches(grpc.StatusCode.INTERNAL)  # forces a relist, which is too big
            assert eventually(lambda: fails(informer))
            assert len(informer.get_indexer().list()) == 140  # nothing lost
            assert eventually(lambda: not informer.health().healthy)
            assert "max_receive_message_length" in informer.health().reason
            for name in extra:
                server.delete_gpu(name)
            assert eventually(lambda: cache_matches_server(informer, server))
            assert eventually(lambda: informer.health().healthy)
            run_informer.stop_all()


# --------------------------------------------------------------------------- user code


class Raising:
    """A handler that raises on every notification."""

    def __init__(self) -> None:
        self.calls = 0

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self.calls += 1
        raise RuntimeError("handler bug")

    def on_update(self, old: Any, new: Any) -> None:
        self.calls += 1
        raise RuntimeError("handler bug")

    def on_delete(self, obj: Any) -> None:
        self.calls += 1
        raise RuntimeError("handler bug")


def test_a_raising_handler_is_counted_and_logged_at_a_bounded_rate(
    server: FakeServer,
    clientset: Clientset,
    run_informer: RunInformer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nvinformers")
    raising, good, registry = Raising(), RecordingHandler(), CollectorRegistry()
    informer = run_informer(clientset, (raising, good), registry=registry)
    assert informer.wait_for_sync(WAIT)
    assert server.wait_for_watches(1, WAIT)
    for round_ in range(5):
        for i in range(8):
            server.set_ready(f"gpu-{i}", round_ % 2 == 1)
    assert good.wait_for_count(8 + 40)
    assert eventually(lambda: raising.calls == 48)
    bad = informer.handlers()[0]
    assert eventually(lambda: bad.errors == 48)
    assert (
        registry.get_sample_value(
            "nvinformers_informer_handler_errors_total",
            {"informer": "gpus", "handler": "handler-0"},
        )
        == 48.0
    )
    errors_logged = [r for r in caplog.records if r.name == "nvinformers.cache.handlers"]
    assert len(errors_logged) == 1  # one traceback per 10 s, the rest counted
    assert cache_matches_server(informer, server) and informer.health().healthy


def test_a_blocked_handler_shows_its_backlog_and_blocks_nobody(
    server: FakeServer, clientset: Clientset, run_informer: RunInformer
) -> None:
    gate = threading.Event()
    blocked, good, registry = RecordingHandler(gate=gate), RecordingHandler(), CollectorRegistry()
    informer = run_informer(clientset, (blocked, good), registry=registry)
    try:
        assert informer.wait_for_sync(WAIT)
        assert server.wait_for_watches(1, WAIT)
        for i in range(8):
            server.set_ready(f"gpu-{i}", False)
        assert good.wait_for_count(16)
        assert eventually(lambda: cache_matches_server(informer, server))
        labels = {"informer": "gpus", "handler": "handler-0"}
        # 16 notifications, all waiting (the one being delivered included).
        assert eventually(
            lambda: (
                registry.get_sample_value("nvinformers_informer_handler_backlog", labels) == 16.0
            )
        )
        assert informer.health().healthy
        assert blocked.snapshot() == []
    finally:
        gate.set()
    assert blocked.wait_for_count(16)
    assert eventually(lambda: informer.handlers()[0].backlog == 0)


def test_a_raising_reconciler_is_retried_and_spares_the_rest(
    server: FakeServer, clientset: Clientset, run_informer: RunInformer
) -> None:
    informer = run_informer(clientset)
    lister = GPULister(informer.get_indexer())
    broken = threading.Event()
    broken.set()
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def reconcile(request: Request) -> Result:
        with lock:
            seen[request.name] = seen.get(request.name, 0) + 1
        if request.name == "gpu-3" and broken.is_set():
            raise RuntimeError("transient failure")
        if request.name == "gpu-4":
            raise TerminalError("this GPU cannot be handled")
        lister.get(request.name)
        return Result()

    registry = CollectorRegistry()
    controller = Controller("hostile", reconcile, registry=registry)
    controller.watch(informer)
    stop = controller.start()
    try:
        assert controller.wait_for_started(WAIT)
        assert eventually(lambda: len(seen) == 8)
        assert eventually(lambda: seen["gpu-3"] >= 3)  # retried with backoff
        assert controller.queue.num_requeues(Request("gpu-3")) >= 2
        broken.clear()
        assert eventually(lambda: controller.queue.num_requeues(Request("gpu-3")) == 0)
        assert seen["gpu-4"] == 1  # terminal: not retried
        assert all(seen[f"gpu-{i}"] == 1 for i in (0, 1, 2, 5, 6, 7))
        assert cache_matches_server(informer, server) and informer.health().healthy
        assert (
            registry.get_sample_value(
                "controller_runtime_terminal_reconcile_errors_total", {"controller": "hostile"}
            )
            == 1.0
        )
    finally:
        stop.set()
        assert controller.stop(WAIT)
