"""An informer through a real outage of the fake server (reported, not part of ``make bench``).

Usage::

    python -m benchmarks.outage                 # 30 s outage
    python -m benchmarks.outage --seconds 60

A GPU informer with production settings (client-go's backoff: 0.8 s doubling to 30 s, jittered)
follows a :class:`~nvinformers.testing.FakeServer`; after one event the server stops for
``--seconds``, a GPU is deleted meanwhile, and the server comes back with its history. Prints the
list calls and watch attempts the informer made while the server was down, the calls the server
received after it came back, how long the informer took to notice, and the health reported on
each side. The log lines (one WARNING when the outage begins, one INFO when it ends) go to stderr.
Wall-clock time: about ``--seconds`` plus up to one backoff delay (up to 60 s).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable

from nvinformers.clientset import Config, new_for_config
from nvinformers.informers import SharedInformerFactory
from nvinformers.testing import FakeServer

WAIT = 180.0


def poll(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition()`` every 50 ms (a report script, not a test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="outage length (30)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with (
        FakeServer(flip_interval=None) as server,
        new_for_config(Config(target=server.target)) as clientset,
    ):
        factory = SharedInformerFactory(clientset)
        informer = factory.device().v1alpha1().gpus().informer()
        stop = threading.Event()
        factory.start(stop)
        try:
            if not all(factory.wait_for_cache_sync(stop, timeout=WAIT).values()):
                raise SystemExit("the informer did not sync")
            server.set_ready("gpu-1", False)  # one event: the watch is established and used
            if not poll(lambda: informer.get_store().get_by_key("gpu-1") is not None, WAIT):
                raise SystemExit("the informer saw no event")
            time.sleep(1.5)  # past the very-short-watch threshold: a real, established watch
            stats = informer.reflector.stats
            lists, attempts = sum(stats.lists.values()), stats.watch_attempts
            failures, calls = stats.list_failures, server.calls
            server.stop()
            began = time.monotonic()
            server.delete_gpu("gpu-3")  # while the client is away
            time.sleep(args.seconds)
            print(
                f"during {args.seconds:.0f} s down: "
                f"{sum(stats.lists.values()) - lists + stats.list_failures - failures} list calls, "
                f"{stats.watch_attempts - attempts} watch attempts; "
                f"health: {informer.health().reason}"
            )
            server.start()
            if not poll(lambda: informer.get_store().get_by_key("gpu-3") is None, WAIT):
                raise SystemExit("the informer did not see the delete")
            noticed = time.monotonic() - began - args.seconds
            if not poll(lambda: informer.health().healthy, WAIT):
                raise SystemExit("the informer did not report itself healthy")
            after = {m: server.calls[m] - calls[m] for m in ("ListGpus", "WatchGpus")}
            print(
                f"server back: caught up {noticed:.1f} s later (the next backoff attempt); "
                f"calls it received: {after}; health: {informer.health().reason}"
            )
        finally:
            factory.shutdown()


if __name__ == "__main__":
    main()
