"""The kopf example's handlers, called directly against the fake server (no cluster needed)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import grpc
import kopf
import pytest

from nvinformers.testing import FakeServer
from tests.unit.aio.aiohelpers import eventually, run, thread_names

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kopf-operator" / "kopf_operator.py"
LOG = logging.getLogger("test-kopf-example")


@pytest.fixture(scope="module")
def operator() -> ModuleType:
    # Importing registers the handlers in kopf's default registry, as `kopf run` would: once.
    name = "kopf_operator_example"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    with FakeServer(gpus=4, flip_interval=None, bookmark_interval=None, seed=5) as fake:
        monkeypatch.setenv("NVIDIA_DEVICE_API_TARGET", fake.target)
        monkeypatch.setenv("NODE_NAME", "node-1")
        yield fake


def nvinformers_threads() -> set[str]:
    """The client side's threads (the fake server's own are not the example's business)."""
    return {
        name
        for name in thread_names()
        if name.startswith("nvinformers-") and not name.startswith("nvinformers-fake-server")
    }


def test_startup_event_and_cleanup_against_the_fake_server(
    operator: ModuleType, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    threads_before = nvinformers_threads()

    async def main() -> None:
        memo = kopf.Memo()
        await operator.start_gpu_cache(memo=memo, logger=LOG)
        cache = memo[operator.MEMO_KEY]
        assert sorted(gpu.metadata.name for gpu in cache.lister.list()) == [
            "gpu-0",
            "gpu-1",
            "gpu-2",
            "gpu-3",
        ]
        assert operator.is_this_node(name="node-1")
        assert not operator.is_this_node(name="node-2")

        # The Node already says 4 GPUs: only the ready count is patched.
        body = kopf.Body(
            {
                "metadata": {
                    "name": "node-1",
                    "annotations": {operator.GPUS_ANNOTATION: "4", "other": "kept"},
                }
            }
        )
        patch = kopf.Patch()
        await operator.annotate_gpus(body=body, patch=patch, memo=memo, logger=LOG)
        assert patch == {"metadata": {"annotations": {operator.READY_GPUS_ANNOTATION: "4"}}}

        await asyncio.to_thread(server.set_ready, "gpu-2", False)
        assert await eventually(lambda: operator.gpu_annotations(cache.lister)[
            operator.READY_GPUS_ANNOTATION
        ] == "3")  # fmt: skip
        patch = kopf.Patch()
        await operator.annotate_gpus(body=body, patch=patch, memo=memo, logger=LOG)
        assert patch == {"metadata": {"annotations": {operator.READY_GPUS_ANNOTATION: "3"}}}
        # The asyncio handler logged the transition on this loop.
        assert await eventually(lambda: "GPU gpu-2 is now NOT Ready" in caplog.text)

        await operator.stop_gpu_cache(memo=memo, logger=LOG)
        assert operator.MEMO_KEY not in memo
        await operator.stop_gpu_cache(memo=memo, logger=LOG)  # nothing left: a no-op

    with caplog.at_level(logging.INFO, logger="kopf-operator"):
        run(main)
    # Cleanup joined every informer and handler thread the startup started.
    assert nvinformers_threads() - threads_before == set()


def test_startup_retries_when_the_cache_cannot_sync(
    operator: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NVIDIA_DEVICE_API_TARGET", "unix:///tmp/nvinformers-absent/device-api.sock")
    monkeypatch.setattr(operator, "SYNC_TIMEOUT", 0.2)
    threads_before = nvinformers_threads()

    async def main() -> None:
        memo = kopf.Memo()
        with pytest.raises(kopf.TemporaryError, match=r"did not sync within 0\.2 s"):
            await operator.start_gpu_cache(memo=memo, logger=LOG)
        assert operator.MEMO_KEY not in memo

    run(main)
    assert nvinformers_threads() - threads_before == set()


def test_a_startup_cancelled_while_syncing_cleans_up(
    operator: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kopf cancels a startup handler still running when the operator is told to stop.
    monkeypatch.setenv("NVIDIA_DEVICE_API_TARGET", "unix:///tmp/nvinformers-absent/device-api.sock")
    threads_before = nvinformers_threads()

    async def main() -> None:
        memo = kopf.Memo()
        startup = asyncio.create_task(operator.start_gpu_cache(memo=memo, logger=LOG))
        assert await eventually(lambda: nvinformers_threads() - threads_before != set())
        startup.cancel()
        with pytest.raises(asyncio.CancelledError):
            await startup
        assert operator.MEMO_KEY not in memo

    run(main)
    assert nvinformers_threads() - threads_before == set()


def test_an_event_before_startup_finished_is_ignored(operator: ModuleType) -> None:
    async def main() -> None:
        patch = kopf.Patch()
        body = kopf.Body({"metadata": {"name": "node-1"}})
        await operator.annotate_gpus(body=body, patch=patch, memo=kopf.Memo(), logger=LOG)
        assert not patch

    run(main)


def test_cleanup_returns_at_once_while_the_server_hangs_a_relist(
    operator: ModuleType, server: FakeServer
) -> None:
    """Issue 10, case 3: the cleanup handler's factory shutdown waited for a ListGpus the server
    never answered."""
    threads_before = nvinformers_threads()

    async def main() -> None:
        memo = kopf.Memo()
        await operator.start_gpu_cache(memo=memo, logger=LOG)
        assert await asyncio.to_thread(server.wait_for_watches, 1, 10.0)
        server.hostile.hang("ListGpus")
        server.end_watches(grpc.StatusCode.OUT_OF_RANGE)  # the informer relists: it hangs
        assert await asyncio.to_thread(server.hostile.wait_for_hung, "ListGpus", 1, 10.0)
        await asyncio.wait_for(operator.stop_gpu_cache(memo=memo, logger=LOG), 10.0)

    try:
        run(main, timeout=30.0)
        assert server.hostile.wait_for_hung("ListGpus", 0, 10.0)  # cancelled, not abandoned
    finally:
        server.hostile.release()
    assert nvinformers_threads() - threads_before == set()
