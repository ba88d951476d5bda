"""P1: the Kubernetes API source — events/s and memory per Node against the official client.

Shape: the same informer machinery over Nodes of a Kubernetes API server
(:func:`nvinformers.kube.new_node_informer`), against the official ``kubernetes`` client's own
informer (``kubernetes.informer.SharedInformer``), same run, same local API server
(:class:`nvinformers.testing.kube_api.FakeKubeAPIServer`, in its own process and CPU), same
workload. Nodes look like kubelet-managed ones (~4.5 KB of JSON with managedFields).

* **events/s**: each informer syncs the Nodes, then the server pauses delivery, applies N Node
  status updates (heartbeats, round-robin) and releases them at wire speed (pre-serialized, written
  in large chunks); we time from the release until one handler has seen every update.
* **memory per Node**: ``tracemalloc`` growth retained once each informer has synced M Nodes, after
  a full collection, divided by M (nvinformers strips ``managedFields`` at ingest by default, as
  controller-runtime users are told to).

Targets: nvinformers events/s >= 2x the official informer's; memory per Node <= 1x.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import threading
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from kubernetes import client
from kubernetes.informer import SharedInformer

from benchmarks.common import (
    CLIENT_CPU,
    REPEATS,
    SERVER_CPU,
    Row,
    pin,
    ratio_row,
    script_main,
    stats,
)
from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.kube import new_node_informer
from nvinformers.testing.kube_api import FakeKubeAPIServer

WAIT = 600.0


def make_node(i: int, heartbeat: int = 0) -> dict[str, Any]:
    """A Node shaped like a kubelet-managed one."""
    name = f"node-{i:05d}"
    ts = f"2026-01-01T00:{heartbeat // 60 % 60:02d}:{heartbeat % 60:02d}Z"
    conditions = [
        {
            "type": t,
            "status": "False" if t != "Ready" else "True",
            "lastHeartbeatTime": ts,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": f"Kubelet{t}",
            "message": f"kubelet reports {t}",
        }
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]
    managed: list[dict[str, Any]] = [
        {
            "manager": m,
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {f"f:label-{k}": {} for k in range(8)}},
                "f:status": {"f:conditions": {f'k:{{"type":"{t}"}}': {} for t in "ABCD"}},
            },
        }
        for m in ("kubelet", "kube-controller-manager", "kubectl")
    ]
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "p4d.24xlarge",
                "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": f"us-east-1{'abc'[i % 3]}",
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": "A100-SXM4-40GB",
                "nvidia.com/gpu.count": "8",
                "node-role.kubernetes.io/worker": "",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "csi.volume.kubernetes.io/nodeid": json.dumps({"ebs.csi.aws.com": f"i-{i:017x}"}),
            },
            "managedFields": managed,
        },
        "spec": {"podCIDR": f"10.{i // 256 % 256}.{i % 256}.0/24", "providerID": f"aws:///i-{i}"},
        "status": {
            "capacity": {"cpu": "96", "memory": "1176370Mi", "pods": "110", "nvidia.com/gpu": "8"},
            "allocatable": {
                "cpu": "95",
                "memory": "1170000Mi",
                "pods": "110",
                "nvidia.com/gpu": "8",
            },
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{i // 256 % 256}.{i % 256}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"{i:032x}",
                "systemUUID": f"{i:032x}",
                "bootID": f"{i:032x}",
                "kernelVersion": "6.1.0-1234-aws",
                "osImage": "Ubuntu 22.04.4 LTS",
                "containerRuntimeVersion": "containerd://1.7.2",
                "kubeletVersion": "v1.31.0",
                "kubeProxyVersion": "v1.31.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [
                {"names": [f"registry.example.com/team/image-{k}@sha256:{k:064x}"], "sizeBytes": k}
                for k in range(6)
            ],
        },
    }


# ---------------------------------------------------------------------------- server process


def _server_main(conn: Connection, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    server = FakeKubeAPIServer(history_limit=100_000).start()
    conn.send(server.url)
    beat = 0
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "create":
                for i in range(arg):
                    server.create("nodes", make_node(i))
                conn.send(server.revision)
            elif cmd == "wait_watches":
                conn.send(server.wait_for_watches(arg, WAIT))
            elif cmd == "pause":
                server.pause_delivery()
                conn.send(None)
            elif cmd == "resume":
                server.resume_delivery()
                conn.send(None)
            elif cmd == "update":
                count, nodes = arg
                for k in range(count):
                    beat += 1
                    stamp = (
                        f"2026-01-01T{beat // 3600 % 24:02d}:{beat // 60 % 60:02d}:{beat % 60:02d}Z"
                    )

                    def bump(obj: dict[str, Any], stamp: str = stamp) -> None:
                        for cond in obj["status"]["conditions"]:
                            cond["lastHeartbeatTime"] = stamp

                    server.update("nodes", f"node-{k % nodes:05d}", mutate=bump)
                conn.send(server.revision)
            elif cmd == "end_watches":
                conn.send(server.end_watches())
            elif cmd == "stop":
                conn.send(None)
                return
    finally:
        server.stop()


class ServerProcess:
    """The fake Kubernetes API server in a child process, driven through a pipe."""

    def __init__(self, cpu: int | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_server_main, args=(child, cpu), name="nvbench-kube-api")
        self._proc.start()
        self.url: str = self._conn.recv()

    def call(self, cmd: str, arg: Any = None) -> Any:
        self._conn.send((cmd, arg))
        return self._conn.recv()

    def close(self) -> None:
        self.call("stop")
        self._proc.join()


# ------------------------------------------------------------------------------ the informers


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.target = -1
        self.done = threading.Event()

    def hit(self, *_: Any) -> None:
        self.count += 1
        if self.count == self.target:
            self.done.set()

    def expect(self, n: int) -> None:
        self.count = 0
        self.target = n
        self.done.clear()


def run_nvinformers(
    api: Any, server: ServerProcess, nodes: int, updates: int, *, strip: bool = True
) -> float:
    counter = Counter()
    informer = new_node_informer(api, name="bench-nodes", strip_managed_fields=strip)
    informer.add_event_handler(ResourceEventHandlerFuncs(on_update=counter.hit))
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), name="bench-nv")
    thread.start()
    try:
        assert informer.wait_for_sync(WAIT)
        assert server.call("wait_watches", 1)
        return _burst(server, counter, nodes, updates)
    finally:
        stop.set()
        thread.join()


def run_official(api: Any, server: ServerProcess, nodes: int, updates: int) -> float:
    counter = Counter()
    informer = SharedInformer(client.CoreV1Api(api).list_node)
    informer.add_event_handler("MODIFIED", counter.hit)
    informer.start()
    try:
        _wait(lambda: len(informer.cache.list_keys()) >= nodes)
        assert server.call("wait_watches", 1)
        return _burst(server, counter, nodes, updates)
    finally:
        stop_official(informer, server)


def _burst(server: ServerProcess, counter: Counter, nodes: int, updates: int) -> float:
    server.call("pause")
    counter.expect(updates)
    server.call("update", (updates, nodes))
    start = time.perf_counter()
    server.call("resume")
    assert counter.done.wait(WAIT), f"saw {counter.count} of {updates} updates"
    return updates / (time.perf_counter() - start)


def _wait(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    idle = threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        idle.wait(0.01)


# ------------------------------------------------------------------------------------- memory


def _traced(build: Callable[[], Any]) -> tuple[int, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, kept


def memory_per_node(api: Any, server: ServerProcess, nodes: int) -> tuple[float, float]:
    """(nvinformers, official) bytes retained per cached Node."""
    stop = threading.Event()
    holder: dict[str, Any] = {}

    def build() -> Any:
        informer = new_node_informer(api, name="mem-nodes")
        thread = threading.Thread(target=informer.run, args=(stop,), name="p1-mem-nv")
        thread.start()
        assert informer.wait_for_sync(WAIT)
        holder["thread"] = thread
        return informer

    size, informer = _traced(build)
    assert len(informer.get_store().list_keys()) == nodes
    ours = size / nodes
    stop.set()
    holder["thread"].join()
    del informer

    def build_official() -> Any:
        informer = SharedInformer(client.CoreV1Api(api).list_node)
        informer.start()
        _wait(lambda: len(informer.cache.list_keys()) >= nodes)
        return informer

    size, official = _traced(build_official)
    stop_official(official, server)
    return ours, size / nodes


def stop_official(informer: SharedInformer, server: ServerProcess) -> None:
    """Stop the official informer without tripping its stop race.

    Its ``stop()`` can hang for good: when it runs before the watch's response is assigned, it
    only sets a flag, and the thread then blocks reading a quiet stream. Ending the server-side
    watch until the thread exits avoids it.
    """
    informer._stop_event.set()
    while informer._thread is not None and informer._thread.is_alive():
        watch = informer._watch
        if watch is not None:
            watch._stop = True  # Watch.stream re-watches after a clean end unless told not to
        server.call("end_watches")
        informer._thread.join(0.2)
    informer.stop()


def _warm_up(api: Any) -> None:
    """Build the client's lazy validators and our interning tables before measuring."""
    core = client.CoreV1Api(api)
    resp = core.list_node(_preload_content=False)
    resp.read()
    resp.release_conn()
    core.list_node(limit=1)
    informer = new_node_informer(api, name="warm-up")
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), name="warm-up")
    thread.start()
    assert informer.wait_for_sync(WAIT)
    stop.set()
    thread.join()


def run(smoke: bool) -> list[Row]:
    logging.getLogger("kubernetes.informer").setLevel(logging.CRITICAL)  # its stop() logs errors
    nodes = 50 if smoke else 1_000
    updates = 200 if smoke else 10_000
    mem_nodes = 100 if smoke else 3_000
    repeats = 1 if smoke else REPEATS
    server = ServerProcess(SERVER_CPU)
    pin(CLIENT_CPU)
    api = client.ApiClient(client.Configuration(host=server.url))
    try:
        server.call("create", mem_nodes)
        _warm_up(api)
        mem = [memory_per_node(api, server, mem_nodes) for _ in range(repeats)]
        ours_rate: list[float] = []
        base_rate: list[float] = []
        for i in range(repeats):
            pair: list[tuple[list[float], Callable[..., float]]] = [
                (base_rate, run_official),
                (ours_rate, run_nvinformers),
            ]
            for out, fn in pair if i % 2 == 0 else reversed(pair):
                out.append(fn(api, server, min(nodes, mem_nodes), updates))
    finally:
        api.close()
        server.close()
    return [
        ratio_row(
            "P1/events",
            f"Kubernetes Nodes: update events/s through informer + 1 handler ({updates:,})",
            stats(ours_rate),
            stats(base_rate),
            unit="events/s",
            op=">=",
            limit=2.0,
            baseline_label="official kubernetes.informer.SharedInformer, same server",
            smoke=smoke,
        ),
        ratio_row(
            "P1/memory",
            f"Kubernetes Nodes: memory per cached Node ({mem_nodes:,} Nodes)",
            stats([m[0] for m in mem]),
            stats([m[1] for m in mem]),
            unit="B/Node",
            op="<=",
            limit=1.0,
            baseline_label="official kubernetes.informer.SharedInformer (V1Node models)",
            smoke=smoke,
        ),
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
