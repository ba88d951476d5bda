"""basic-client: point-in-time GPU discovery with the clientset.

The Python version of the Go SDK's quick start and ``client`` example: build a clientset, list the
GPUs, get one, and read its ``Ready`` condition with the ``meta`` helpers.

Run it against the fake server::

    nvinformers fake-server --socket /tmp/nvdapi.sock &
    NVIDIA_DEVICE_API_TARGET=unix:///tmp/nvdapi.sock python basic_client.py

Exits 1 (with the error) when the Device API cannot be reached or answers with an error.
"""

from __future__ import annotations

import argparse
import logging
import sys

from nvinformers import Config, meta
from nvinformers.clientset import new_for_config
from nvinformers.errors import StatusError

log = logging.getLogger("basic-client")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="Device API target (default: $NVIDIA_DEVICE_API_TARGET)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    try:
        with new_for_config(Config(target=args.target)) as clientset:
            gpus = clientset.device_v1alpha1().gpus()

            gpu_list = gpus.list()
            log.info("discovered GPUs count=%d target=%s", len(gpu_list.items), clientset.target)
            if not gpu_list.items:
                return 0

            first = gpus.get(gpu_list.items[0].metadata.name)
            log.info("details name=%s uuid=%s", first.metadata.name, first.spec.uuid)

            # The seed's quick start, verbatim in Python.
            for gpu in gpu_list.items:
                ready = meta.is_status_condition_true(gpu.status.conditions, "Ready")
                print(f"GPU: {gpu.metadata.name} | Ready: {ready}")
    except StatusError as err:
        log.error("Device API request failed: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
