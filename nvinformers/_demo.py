"""``nvinformers demo``: an embedded fake Device API server and a live view of GPU readiness.

What it shows is the library at work, not a mock-up: a real gRPC server on a real Unix socket
(:class:`nvinformers.testing.FakeServer`, flipping one GPU's ``Ready`` condition every few
seconds), a clientset, and a shared informer whose handler prints each Ready transition as the
watch delivers it, while a lister answers reads from the cache.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import IO

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.signals import SignalStop

__all__ = ["run_demo"]


def _ready(gpu: GPU) -> tuple[bool, str]:
    condition = meta.find_status_condition(gpu.status.conditions, "Ready")
    if condition is None:
        return False, "no Ready condition"
    return condition.status == meta.CONDITION_TRUE, condition.reason


def run_demo(
    *,
    duration: float | None = None,
    gpus: int = 8,
    flip_interval: float = 2.0,
    out: IO[str],
    stop: threading.Event | None = None,
) -> int:
    """Run the demo until ``stop`` is set (Ctrl-C / SIGTERM) or ``duration`` seconds have passed.

    Blocks. A stop at any moment, also during start-up, ends it cleanly and quietly: no message
    about a cache that "did not sync" because it was interrupted.

    Args:
        duration: seconds to watch after the cache synced; None: until stopped.
        gpus: fake GPUs to serve.
        flip_interval: seconds between Ready flips.
        out: where to print.
        stop: ends the demo when set; None: one of :class:`~nvinformers.signals.SignalStop`,
            installed for SIGINT/SIGTERM while the demo runs (main thread only).

    Returns:
        0, or 1 when the cache did not sync within 30 s without being stopped.
    """
    if stop is None:
        with SignalStop() as signals:
            return run_demo(
                duration=duration, gpus=gpus, flip_interval=flip_interval, out=out,
                stop=signals.event,
            )  # fmt: skip

    from nvinformers._printers import render_table
    from nvinformers.clientset import Config, new_for_config
    from nvinformers.informers import SharedInformerFactory
    from nvinformers.testing import FakeServer

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    transitions = 0
    with FakeServer(gpus=gpus, flip_interval=flip_interval) as server:
        if stop.is_set():
            return 0
        say(f"Fake Device API server listening on {server.target}")
        with new_for_config(Config(target=server.target)) as clientset:
            factory = SharedInformerFactory(clientset)
            informer = factory.device().v1alpha1().gpus()

            def on_update(old: GPU, new: GPU) -> None:
                nonlocal transitions
                was, _ = _ready(old)
                now, reason = _ready(new)
                if was != now:
                    transitions += 1
                    stamp = datetime.now().strftime("%H:%M:%S")
                    arrow = "Ready    -> NotReady" if was else "NotReady -> Ready   "
                    say(
                        f"{stamp}  {new.metadata.name:<8} {arrow}  reason={reason:<15} "
                        f"rv={new.metadata.resource_version}"
                    )

            informer.informer().add_event_handler(
                ResourceEventHandlerFuncs(on_update=on_update), name="demo"
            )
            try:
                factory.start(stop)
                started = time.monotonic()
                synced = factory.wait_for_cache_sync(stop, timeout=30.0)
                if stop.is_set():
                    return 0
                if not all(synced.values()):
                    say("informer cache did not sync within 30 s")
                    return 1
                listed = sorted(informer.lister().list(), key=lambda g: g.metadata.name)
                say(f"\nCache synced in {time.monotonic() - started:.3f} s: {len(listed)} GPUs\n")
                say(render_table(listed))
                say("\nWatching Ready transitions (Ctrl-C to stop)...")
                stop.wait(duration)
            finally:
                factory.shutdown()
    say(f"\nStopped after {transitions} Ready transitions.")
    return 0
