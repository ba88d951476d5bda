"""The informer's key scenarios against the server under test: initial sync, updates, deletes,
a streaming list, an idle informer's health, a delete missed while disconnected (relist
tombstone), and the server process killed and started again.

Informers run with their default settings (backoff included), as users run them, and are scoped
to the test's objects with a label selector. "Converged" means the informer's cache holds exactly
the objects the server lists, at the same resource versions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.cache import SharedIndexInformer
from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.errors import NotFoundError
from nvinformers.informers import SharedInformerFactory
from nvinformers.options import ListOptions
from tests.conformance.process import ServerProcess
from tests.conformance.relay import Relay
from tests.conformance.support import Writer, ready_status, wait_until
from tests.conformance.target import ConformanceTarget
from tests.unit.cache.recording import RecordingHandler

#: How long an informer may take to sync, or to converge after a change. Generous: against a
#: server that cannot resume watches the informer converges through relists, which back off.
CONVERGE_WAIT = 90.0

MakeFactory = Callable[..., SharedInformerFactory]
_restart_ids = itertools.count(1)


class Informed:
    """A started GPU informer over ``clientset``, scoped to ``writer``'s objects."""

    def __init__(
        self, make: MakeFactory, clientset: Clientset, writer: Writer, **kwargs: Any
    ) -> None:
        selector = writer.selector

        def scope(opts: ListOptions) -> ListOptions:
            return ListOptions(
                label_selector=selector,
                resource_version=opts.resource_version,
                resource_version_match=opts.resource_version_match,
                timeout_seconds=opts.timeout_seconds,
                allow_watch_bookmarks=opts.allow_watch_bookmarks,
                send_initial_events=opts.send_initial_events,
            )

        self.writer = writer
        self.factory = make(clientset, tweak_list_options=scope, **kwargs)
        gpus = self.factory.device().v1alpha1().gpus()
        self.informer: SharedIndexInformer[GPU] = gpus.informer()
        self.lister = gpus.lister()
        self.handler = RecordingHandler()
        self.informer.add_event_handler(self.handler, name="conformance")
        self.factory.start()

    def synced(self) -> bool:
        return all(self.factory.wait_for_cache_sync(timeout=CONVERGE_WAIT).values())

    def cached(self) -> dict[str, str]:
        return {
            g.metadata.name: g.metadata.resource_version for g in self.informer.get_indexer().list()
        }

    def on_server(self) -> dict[str, str]:
        request = pb.ListGpusRequest(opts=pb.ListOptions(label_selector=self.writer.selector))
        listed = self.writer.stub.ListGpus(request, timeout=30, wait_for_ready=True)
        return {g.object_meta.name: g.object_meta.resource_version for g in listed.gpu_list.items}

    def converged(self) -> bool:
        try:
            return self.cached() == self.on_server()
        except grpc.RpcError:
            return False

    def wait_converged(self) -> None:
        assert wait_until(self.converged, CONVERGE_WAIT, interval=0.1), (
            f"cache {self.cached()} != server {self.on_server()}; "
            f"notifications: {self.handler.snapshot()}"
        )

    def notified(self, prefix: str) -> list[str]:
        return [e for e in self.handler.snapshot() if e.startswith(prefix)]

    def wait_notified(self, predicate: Callable[[], bool]) -> bool:
        """Handlers run on their own threads: wait for a notification to have arrived."""
        return wait_until(predicate, CONVERGE_WAIT)


def deleted(informed: Informed, name: str) -> list[str]:
    """Delete notifications for ``name``: its final state, or a relist tombstone."""
    return informed.notified(f"delete {name}@") + informed.notified(f"delete tombstone:{name}@")


def test_informer_syncs_then_follows_updates_and_deletes(
    clientset: Clientset, writer: Writer, informer_factory: MakeFactory
) -> None:
    a = writer.create("a", status=ready_status(True)).object_meta.name
    b = writer.create("b").object_meta.name
    informed = Informed(informer_factory, clientset, writer)
    assert informed.synced()
    assert informed.cached() == informed.on_server()
    assert informed.handler.wait_for_count(2)  # handlers are notified on their own threads
    assert sorted(informed.handler.snapshot()) == sorted(
        f"add {n}@{informed.cached()[n]} initial" for n in (a, b)
    )
    a_final = writer.set_ready(a, False)
    writer.delete(b)
    c = writer.create("c").object_meta.name
    informed.wait_converged()
    final = f"{a}@{a_final.object_meta.resource_version}"
    assert informed.wait_notified(lambda: informed.notified(f"update {a}@")[-1].endswith(final))
    assert informed.wait_notified(lambda: bool(informed.notified(f"add {c}@")))
    assert informed.wait_notified(lambda: len(deleted(informed, b)) >= 1)
    assert len(deleted(informed, b)) == 1
    assert informed.lister.get(a).status.conditions[0].status == "False"
    with pytest.raises(NotFoundError):
        informed.lister.get(b)


def test_informer_syncs_through_a_streaming_list(
    clientset: Clientset, writer: Writer, informer_factory: MakeFactory
) -> None:
    a = writer.create("a").object_meta.name
    writer.create("b")
    informed = Informed(informer_factory, clientset, writer, use_watch_list=True)
    assert informed.synced()
    assert informed.cached() == informed.on_server()
    writer.set_labels(a, tier="gold")
    informed.wait_converged()


#: A short inactivity timeout, so that an idle watch is checked within seconds.
IDLE_INACTIVITY = 2.0


def test_an_idle_informer_stays_healthy(
    clientset: Clientset, writer: Writer, informer_factory: MakeFactory
) -> None:
    """Nothing changes after the sync. A server that sends progress bookmarks to idle watches
    keeps the watch alive with them; one that does not (the device-apiserver) leaves it silent,
    and each silent period is checked with a relist, which finds the cache current. Either way
    the informer stays healthy, as a liveness probe on an idle node needs it to."""
    writer.create("a")
    informed = Informed(
        informer_factory, clientset, writer, watch_inactivity_timeout=IDLE_INACTIVITY
    )
    assert informed.synced()
    reflector = informed.informer.reflector

    def explained_thrice_while_healthy() -> bool:
        health = informed.informer.health()
        assert health.healthy, health
        checks = reflector.stats.progress_checks
        assert set(checks) <= {"current"}, checks
        return reflector.stats.events.get("BOOKMARK", 0) + checks.get("current", 0) >= 3

    assert wait_until(explained_thrice_while_healthy, CONVERGE_WAIT)
    assert informed.cached() == informed.on_server()


def test_a_delete_missed_while_disconnected_arrives_as_a_tombstone_after_a_relist(
    conformance: ConformanceTarget, writer: Writer, informer_factory: MakeFactory
) -> None:
    a = writer.create("a").object_meta.name
    b = writer.create("b").object_meta.name
    with (
        Relay(conformance.target) as relay,
        new_for_config(Config(target=relay.target, metrics_registry=CollectorRegistry())) as cs,
    ):
        informed = Informed(informer_factory, cs, writer)
        assert informed.synced()
        last = int(informed.informer.last_sync_resource_version())
        relay.cut()  # the informer loses its watch and cannot reconnect
        writer.delete(b)
        writer.set_labels(a, tier="gold")
        conformance.expire(writer, last, a)  # its revision is gone: it has to relist
        a_final = writer.get(a)
        relay.restore()
        informed.wait_converged()
        assert informed.wait_notified(lambda: bool(informed.notified(f"delete tombstone:{b}@"))), (
            informed.handler.snapshot()
        )
        assert informed.lister.get(a).metadata.resource_version == (
            a_final.object_meta.resource_version
        )


@pytest.fixture
def restart_writer(conformance: ConformanceTarget, restartable: ServerProcess) -> Iterator[Writer]:
    channel = grpc.insecure_channel(restartable.target)
    w = Writer(channel, conformance.run_id, f"rs{next(_restart_ids)}")
    yield w
    if restartable.running:
        w.cleanup()
    channel.close()


def test_informer_converges_after_the_server_process_is_killed_and_restarted(
    restartable: ServerProcess, restart_writer: Writer, informer_factory: MakeFactory
) -> None:
    writer = restart_writer
    a = writer.create("a").object_meta.name
    b = writer.create("b").object_meta.name
    with new_for_config(
        Config(target=restartable.target, metrics_registry=CollectorRegistry())
    ) as cs:
        informed = Informed(informer_factory, cs, writer)
        assert informed.synced()
        writer.set_labels(a, tier="before")  # the informer has seen events on its watch
        informed.wait_converged()
        restartable.kill()
        restartable.start()
        # The server may have kept its state (persistent storage) or lost it (in memory).
        if writer.exists(b):
            writer.delete(b)
        if writer.exists(a):
            writer.set_labels(a, tier="after")
        else:
            writer.create("a", labels={"tier": "after"})
        c = writer.create("c").object_meta.name
        informed.wait_converged()
        assert informed.lister.get(a).metadata.labels["tier"] == "after"
        assert informed.lister.get(c)
        with pytest.raises(NotFoundError):
            informed.lister.get(b)
        assert informed.wait_notified(lambda: len(deleted(informed, b)) >= 1)
        assert len(deleted(informed, b)) == 1
