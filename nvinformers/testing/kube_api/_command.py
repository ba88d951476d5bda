"""``nvinformers fake-kube-apiserver``: a fake Kubernetes API server with a few Nodes, and a
kubeconfig for it, so kubectl, kopf and the examples run without a cluster.

What it does: starts a :class:`~.server.FakeKubeAPIServer` on loopback, adds the Nodes (Ready,
with the labels, addresses and node info a kubelet reports) and optionally Pods, writes a
kubeconfig whose current context is the server, prints its path, and then plays the kubelet's
part: every ``--heartbeat`` seconds it renews each Node's Ready heartbeat (a Node event, which
event-driven operators such as the kopf example react to). SIGINT or SIGTERM stops it and
removes the kubeconfig it wrote.

Threads: the heartbeat runs on ``nvinformers-fake-kube-heartbeat`` and waits on the stop event
between beats; it is joined before the server stops.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from nvinformers.signals import SignalStop
from nvinformers.testing.kube_api._registry import now
from nvinformers.testing.kube_api._resources import SERVER_VERSION
from nvinformers.testing.kube_api._server import FakeKubeAPIServer

__all__ = ["main_fake_kube_apiserver", "add_kubelet_node", "DEFAULT_NODES"]

DEFAULT_NODES = ("node-1", "node-2", "node-3")
_GPUS_PER_NODE = "8"


def _default_kubeconfig() -> Path:
    return Path(tempfile.gettempdir()) / "nvinformers-fake-kube.kubeconfig"


def add_kubelet_node(server: FakeKubeAPIServer, name: str, index: int) -> dict[str, Any]:
    """Add a Node as a kubelet registers one: Ready, hostname/os/arch labels, an InternalIP,
    node info and 8 allocatable ``nvidia.com/gpu``. Returns the stored Node."""
    stamp = now()
    machine = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.nodes.nvinformers.fake")
    resources = {"cpu": "16", "memory": "65536Mi", "pods": "110", "nvidia.com/gpu": _GPUS_PER_NODE}
    status = {
        "conditions": [
            {
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ],
        "addresses": [
            {"type": "InternalIP", "address": f"10.0.0.{index + 1}"},
            {"type": "Hostname", "address": name},
        ],
        "capacity": resources,
        "allocatable": resources,
        "nodeInfo": {
            "kubeletVersion": SERVER_VERSION, "kubeProxyVersion": SERVER_VERSION,
            "osImage": "nvinformers fake node", "kernelVersion": "6.8.0",
            "containerRuntimeVersion": "fake://1.0", "operatingSystem": "linux",
            "architecture": "amd64", "machineID": machine.hex, "systemUUID": str(machine),
            "bootID": str(uuid.uuid5(machine, "boot")),
        },
    }  # fmt: skip
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "nvidia.com/gpu.present": "true",
    }
    return server.add_node(name, labels, status=status)


def _heartbeat(
    server: FakeKubeAPIServer, names: list[str], interval: float, stop: threading.Event
) -> None:
    def beat(node: dict[str, Any]) -> None:
        for cond in node.get("status", {}).get("conditions", []):
            if cond.get("type") == "Ready":
                cond["lastHeartbeatTime"] = now()

    while not stop.wait(interval):
        for name in names:
            try:
                server.update_node(name, mutate=beat)
            except Exception as exc:  # a Node deleted by hand: keep beating for the others
                print(f"heartbeat for {name} skipped: {exc}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nvinformers fake-kube-apiserver",
        description="Serve a fake Kubernetes API on loopback with a few Nodes, and write a "
        "kubeconfig for kubectl, kopf and the examples.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--kubeconfig", type=Path, default=None,
        help=f"where to write the kubeconfig (default: {_default_kubeconfig()}); an existing "
        "file is replaced only if a fake server wrote it",
    )  # fmt: skip
    parser.add_argument(
        "--node", action="append", dest="nodes", metavar="NAME",
        help=f"add a Node (repeatable; default: {', '.join(DEFAULT_NODES)})",
    )  # fmt: skip
    parser.add_argument(
        "--pods", type=int, default=0, help="Pods per Node, in namespace default (default 0)"
    )
    parser.add_argument(
        "--heartbeat", type=float, default=10.0,
        help="seconds between the Nodes' Ready heartbeats, like a kubelet's (0: none)",
    )  # fmt: skip
    return parser


def main_fake_kube_apiserver(
    argv: list[str] | None = None, *, stop: SignalStop | None = None
) -> int:
    """Run the command until SIGINT or SIGTERM; returns the exit code.

    Prints ``Fake Kubernetes API listening on <url>`` and ``kubeconfig: <path>`` once serving
    (stdout, flushed). Blocks until stopped.

    Args:
        argv: the command line (default ``sys.argv[1:]``).
        stop: the caller's signal handling (the ``nvinformers`` command's); None: a
            :class:`~nvinformers.signals.SignalStop` installed for the call (main thread only).

    Returns:
        130 after SIGINT, 143 after SIGTERM, 0 when ``stop.event`` was set otherwise, 1 when the
        server cannot start or the kubeconfig cannot be written (the reason on stderr), 2 on a
        usage error.
    """
    if stop is None:
        with SignalStop() as own:
            return main_fake_kube_apiserver(argv, stop=own)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.pods < 0:
            parser.error(f"--pods must be non-negative, got {args.pods}")
        if args.heartbeat < 0:
            parser.error(f"--heartbeat must be non-negative, got {args.heartbeat}")
    except SystemExit as exc:  # --help or a usage error, already printed
        return exc.code if isinstance(exc.code, int) else 2
    nodes: list[str] = args.nodes or list(DEFAULT_NODES)
    kubeconfig: Path = args.kubeconfig or _default_kubeconfig()
    server = FakeKubeAPIServer(host=args.host, port=args.port)
    heartbeat: threading.Thread | None = None
    written = False
    try:
        for index, name in enumerate(nodes):
            add_kubelet_node(server, name, index)
            for pod in range(args.pods):
                server.add_pod(f"gpu-workload-{name}-{pod}", node_name=name)
        try:
            server.start()
            server.write_kubeconfig(kubeconfig)
            written = True
        except OSError as exc:  # the port is taken, the kubeconfig is not ours...
            if stop.stopped:
                return stop.exit_code or 0
            print(f"nvinformers fake-kube-apiserver: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"Fake Kubernetes API listening on {server.url}", flush=True)
        print(f"kubeconfig: {kubeconfig}", flush=True)
        print(f"nodes: {' '.join(nodes)}", flush=True)
        print(f"use it with: export KUBECONFIG={kubeconfig}", flush=True)
        if args.heartbeat:
            heartbeat = threading.Thread(
                target=_heartbeat, args=(server, nodes, args.heartbeat, stop.event),
                name="nvinformers-fake-kube-heartbeat", daemon=True,
            )  # fmt: skip
            heartbeat.start()
        stop.event.wait()
        print("Stopping server...", flush=True)
        return stop.exit_code or 0
    finally:
        stop.event.set()
        if heartbeat is not None:
            heartbeat.join()
        server.stop()
        if written:
            kubeconfig.unlink(missing_ok=True)
