"""controller-shim: one controller fed by the Device API and by the Kubernetes API.

The Python form of the Go SDK's "informer injection" pattern. A DaemonSet pod on each GPU node
runs two informers — GPUs from the node-local Device API (gRPC on a Unix socket) and this node's
Node object from the Kubernetes API — and one controller that both feed:

* any GPU event enqueues a request for this node (a map function: GPU → its Node);
* an event on the Node itself enqueues it too (so a label removed by hand is put back);
* the reconciler reads both caches (never the sockets) and makes the Node say what the GPUs say:
  while any GPU is not Ready, the Node carries the label ``nvidia.com/gpu.health=unhealthy`` and
  the condition ``GPUHealthy=False`` (reason ``GPUNotReady``, the GPUs in the message); once all
  are Ready again, the label is removed and the condition set to ``True``.

It is level-based and idempotent: it patches only when the Node differs from what the GPUs say,
and a failed patch is retried with backoff by the controller's workqueue. Health, readiness and
metrics are served on 127.0.0.1 by the :class:`~nvinformers.controller.Manager`, which stops
everything in order on SIGTERM.

Run it against the fake servers (see README.md), or in a cluster with the manifests in deploy/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import kubernetes

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.clientset import Config, new_for_config
from nvinformers.controller import Controller, Manager, Request, Result
from nvinformers.controller.handler import enqueue_mapped
from nvinformers.errors import is_not_found
from nvinformers.informers import SharedInformerFactory
from nvinformers.kube import KubeObject, lister_for, new_node_informer
from nvinformers.listers import GPULister, Lister
from nvinformers.signals import SignalStop

log = logging.getLogger("controller-shim")

HEALTH_LABEL = "nvidia.com/gpu.health"
UNHEALTHY = "unhealthy"
CONDITION_TYPE = "GPUHealthy"


class NodeGPUHealthReconciler:
    """Makes this node's label and condition match the readiness of its GPUs."""

    def __init__(
        self, *, gpus: GPULister, nodes: Lister[KubeObject], core_v1: Any, node_name: str
    ) -> None:
        self._gpus = gpus
        self._nodes = nodes
        self._core_v1 = core_v1
        self._node_name = node_name

    def reconcile(self, request: Request) -> Result:
        try:
            node = self._nodes.get(request.name)
        except Exception as err:
            if is_not_found(err):
                return Result()  # the Node is gone (or not cached yet): nothing to mark
            raise
        not_ready = sorted(
            gpu.metadata.name
            for gpu in self._gpus.list()
            if not meta.is_status_condition_true(gpu.status.conditions, "Ready")
        )
        healthy = not not_ready
        want_label = None if healthy else UNHEALTHY
        have_label = node.metadata.labels.get(HEALTH_LABEL)
        if have_label != want_label:
            # A JSON merge patch: null removes the label.
            body = {"metadata": {"labels": {HEALTH_LABEL: want_label}}}
            self._core_v1.patch_node(request.name, body)
            log.info(
                "node %s: %s label %s (not ready: %s)",
                request.name,
                "removed" if healthy else "set",
                HEALTH_LABEL,
                ", ".join(not_ready) or "none",
            )
        self._reconcile_condition(node, not_ready)
        return Result()

    def _reconcile_condition(self, node: KubeObject, not_ready: list[str]) -> None:
        status = "True" if not not_ready else "False"
        reason = "AllGPUsReady" if not not_ready else "GPUNotReady"
        message = "all GPUs report Ready" if not not_ready else "not ready: " + ", ".join(not_ready)
        conditions: list[dict[str, Any]] = list(node.get("status", "conditions", default=[]))
        current = next((c for c in conditions if c.get("type") == CONDITION_TYPE), None)
        if current is not None and (current.get("status"), current.get("message")) == (
            status,
            message,
        ):
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        transition = now
        if current is not None and current.get("status") == status:
            transition = current.get("lastTransitionTime", now)
        ours = {
            "type": CONDITION_TYPE,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": transition,
        }
        # The whole list, our condition replaced: correct under both JSON merge patch (lists are
        # replaced) and strategic merge patch (conditions merge by type).
        merged = [c for c in conditions if c.get("type") != CONDITION_TYPE] + [ours]
        self._core_v1.patch_node_status(node.metadata.name, {"status": {"conditions": merged}})


def _kube_api_client(url: str | None) -> kubernetes.client.ApiClient:
    if url:
        configuration = kubernetes.client.Configuration(host=url)
        return kubernetes.client.ApiClient(configuration)
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="Device API target (default: $NVIDIA_DEVICE_API_TARGET)")
    parser.add_argument(
        "--kube-api", help="Kubernetes API URL without auth (default: in-cluster or kubeconfig)"
    )
    parser.add_argument(
        "--node-name", default=os.environ.get("NODE_NAME"), help="this node (default: $NODE_NAME)"
    )
    parser.add_argument("--probe-port", type=int, default=8081, help="0 = pick a free port")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if not args.node_name:
        parser.error("--node-name or $NODE_NAME is required")
    node_name: str = args.node_name

    # From here on a SIGTERM stops cleanly at any moment, also during start-up (manager.run()
    # takes the signals over while it runs).
    with SignalStop() as signals:
        return run(args, node_name, signals.event)


def run(args: argparse.Namespace, node_name: str, stop: threading.Event) -> int:
    """Reconcile until ``stop`` is set; returns the exit code (0 after a graceful stop)."""
    api_client = _kube_api_client(args.kube_api)
    core_v1 = kubernetes.client.CoreV1Api(api_client)
    with new_for_config(Config(target=args.target)) as clientset:
        gpu_factory = SharedInformerFactory(clientset)
        gpus = gpu_factory.device().v1alpha1().gpus()
        # Only this node's Node object: the server filters, the cache holds one object.
        node_informer = new_node_informer(api_client, field_selector=f"metadata.name={node_name}")

        reconciler = NodeGPUHealthReconciler(
            gpus=gpus.lister(),
            nodes=lister_for(node_informer),
            core_v1=core_v1,
            node_name=node_name,
        )
        controller = Controller("gpu-node-health", reconciler)

        def to_this_node(gpu: GPU) -> list[Request]:
            return [Request(node_name)]

        controller.watch(gpus, handler=enqueue_mapped(to_this_node))
        controller.watch(node_informer)

        manager = Manager(port=args.probe_port)
        manager.add_informer_factory(gpu_factory)
        manager.add_informer(node_informer)
        manager.add_controller(controller)
        manager.start()
        log.info(
            "controller-shim for node %s: Device API %s, probes and metrics on %s",
            node_name,
            clientset.target,
            manager.url,
        )
        try:
            manager.run(stop)  # blocks until SIGTERM / SIGINT, then stops everything in order
        finally:
            api_client.close()
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
