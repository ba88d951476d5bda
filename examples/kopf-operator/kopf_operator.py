"""kopf-operator: a kopf operator whose handlers read GPUs from an nvinformers cache.

Runs as a DaemonSet, one operator per node (the Device API is node-local). It keeps the node's
``Node`` object annotated with how many of its GPUs are Ready, reading the GPUs from a shared
informer's cache (a lister), never from the Device API socket::

    nvinformers.io/gpus: "8"
    nvinformers.io/ready-gpus: "7"

How it fits kopf's event loop (see README.md for the full threading model):

* ``@kopf.on.startup``: builds the clientset and a ``SharedInformerFactory`` (target from
  ``NVIDIA_DEVICE_API_TARGET``, else the default socket), registers an asyncio handler that logs
  GPU Ready transitions on kopf's loop, starts the informers (threads) and **awaits** their cache
  sync with :func:`nvinformers.aio.informer_synced`, which never blocks the loop. The cache goes
  into kopf's operator ``memo``, which kopf copies into every object's memo. If the cache does
  not sync in time (kopf retries the startup) or the startup is cancelled (the operator is
  stopping), it first shuts down everything it started.
* ``@kopf.on.event("nodes")`` for this node only: computes the annotations from the lister (a
  dict read, no I/O) and puts them in kopf's ``patch``, which kopf applies. No finalizer is
  involved (kopf timers and daemons would add one to the Node).
* ``@kopf.on.cleanup``: removes the asyncio handler and shuts the factory down in an executor
  (``shutdown`` joins the informer threads, so it must not run on the loop).

Run it (needs a Kubernetes cluster and a Device API server on the node)::

    NVIDIA_DEVICE_API_TARGET=unix:///var/run/nvidia-device-api/device-api.sock \\
    NODE_NAME=$(hostname) kopf run examples/kopf-operator/kopf_operator.py --standalone
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import kopf

from nvinformers import meta
from nvinformers.aio import (
    AsyncEventHandlerRegistration,
    AsyncResourceEventHandlerFuncs,
    add_async_event_handler,
    informer_synced,
)
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.informers import SharedInformerFactory
from nvinformers.listers import GPULister

log = logging.getLogger("kopf-operator")

#: Annotations this operator owns on its Node.
GPUS_ANNOTATION = "nvinformers.io/gpus"
READY_GPUS_ANNOTATION = "nvinformers.io/ready-gpus"
#: Where the GPU cache lives in kopf's memo.
MEMO_KEY = "gpu_cache"
#: Seconds the startup handler waits for the cache; then kopf retries the startup.
SYNC_TIMEOUT = float(os.environ.get("GPU_CACHE_SYNC_TIMEOUT", "60"))


@dataclass
class GPUCache:
    """Everything the startup handler built; the cleanup handler takes it apart."""

    clientset: Clientset
    factory: SharedInformerFactory
    lister: GPULister
    registration: AsyncEventHandlerRegistration


def this_node() -> str:
    """The Node this operator instance serves (``NODE_NAME`` from the downward API)."""
    return os.environ.get("NODE_NAME") or socket.gethostname()


def is_ready(gpu: GPU) -> bool:
    return meta.is_status_condition_true(gpu.status.conditions, "Ready")


def gpu_annotations(lister: GPULister) -> dict[str, str]:
    """The annotations describing this node's GPUs, read from the cache."""
    gpus = lister.list()
    return {
        GPUS_ANNOTATION: str(len(gpus)),
        READY_GPUS_ANNOTATION: str(sum(1 for gpu in gpus if is_ready(gpu))),
    }


async def log_ready_transition(old: GPU, new: GPU) -> None:
    """Runs on kopf's event loop for every GPU update (an asyncio handler)."""
    if is_ready(old) != is_ready(new):
        log.info("GPU %s is now %s", new.metadata.name, "Ready" if is_ready(new) else "NOT Ready")


@kopf.on.startup()
async def start_gpu_cache(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Start the GPU informers and wait for their cache, without blocking kopf's loop."""
    clientset = new_for_config(Config())  # NVIDIA_DEVICE_API_TARGET, else the default socket
    factory = SharedInformerFactory(clientset)
    gpus = factory.device().v1alpha1().gpus()
    informer = gpus.informer()
    registration = add_async_event_handler(
        informer,
        AsyncResourceEventHandlerFuncs(on_update=log_ready_transition),
        name="kopf-ready-log",
    )
    factory.start()
    try:
        synced = await informer_synced(informer, timeout=SYNC_TIMEOUT)
    except BaseException:  # cancelled: the operator is stopping during its startup
        await _shut_down(clientset, factory, registration)
        raise
    if not synced:
        await _shut_down(clientset, factory, registration)
        raise kopf.TemporaryError(
            f"the GPU cache did not sync within {SYNC_TIMEOUT} s (target {clientset.target})",
            delay=10,
        )
    lister = gpus.lister()
    memo[MEMO_KEY] = GPUCache(clientset, factory, lister, registration)
    logger.info("GPU cache synced from %s: %d GPU(s)", clientset.target, len(lister.list()))


@kopf.on.cleanup()
async def stop_gpu_cache(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Stop the informers; their threads are joined in an executor, off the loop."""
    cache = memo.pop(MEMO_KEY, None)
    if not isinstance(cache, GPUCache):
        return
    await _shut_down(cache.clientset, cache.factory, cache.registration)
    logger.info("GPU cache stopped")


async def _shut_down(
    clientset: Clientset,
    factory: SharedInformerFactory,
    registration: AsyncEventHandlerRegistration,
) -> None:
    await registration.aclose()
    await asyncio.get_running_loop().run_in_executor(None, factory.shutdown)
    clientset.close()


def is_this_node(name: str, **_: Any) -> bool:
    return name == this_node()


@kopf.on.event("nodes", when=is_this_node)
async def annotate_gpus(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Keep this Node's GPU annotations current; reads the cache only (no I/O)."""
    cache = memo.get(MEMO_KEY)
    if not isinstance(cache, GPUCache):
        return  # startup has not finished (kopf starts watching only after it has)
    wanted = gpu_annotations(cache.lister)
    current = body.metadata.annotations
    changed = {key: value for key, value in wanted.items() if current.get(key) != value}
    if changed:
        patch.metadata.annotations.update(changed)
        logger.info("GPU annotations: %s", changed)
