"""The N3/N4 baseline client: only gRPC and the generated messages, no nvinformers.

Run as a script (``python benchmarks/rawclient.py list|watch TARGET``), so that nothing but
``grpc``, ``protobuf`` and the generated ``gpu_pb2`` module is imported (the module is loaded from
its file, bypassing the ``nvinformers`` package):

* ``list``: one ``ListGpus`` call, then print ``listed N`` and exit (N4: start → list done).
* ``watch``: open a ``WatchGpus`` stream, read the initial ADDED events, print ``watching N`` and
  keep the stream open until killed (N3: the RSS of a process holding one raw watch).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading

import grpc

_HERE = os.path.dirname(os.path.abspath(__file__))
_PB2 = os.path.join(_HERE, os.pardir, "nvinformers", "api", "device", "v1alpha1", "gpu_pb2.py")
_SERVICE = "/nvidia.nvsentinel.v1alpha1.GpuService/"


def _load_pb2() -> object:
    spec = importlib.util.spec_from_file_location("gpu_pb2", os.path.normpath(_PB2))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    mode, target = sys.argv[1], sys.argv[2]
    pb: object = _load_pb2()
    channel = grpc.insecure_channel(target)
    if mode == "list":
        list_gpus = channel.unary_unary(
            _SERVICE + "ListGpus",
            request_serializer=pb.ListGpusRequest.SerializeToString,  # type: ignore[attr-defined]
            response_deserializer=pb.ListGpusResponse.FromString,  # type: ignore[attr-defined]
        )
        response = list_gpus(pb.ListGpusRequest())  # type: ignore[attr-defined]
        print(f"listed {len(response.gpu_list.items)}", flush=True)
        channel.close()
        return 0
    watch_gpus = channel.unary_stream(
        _SERVICE + "WatchGpus",
        request_serializer=pb.WatchGpusRequest.SerializeToString,  # type: ignore[attr-defined]
        response_deserializer=pb.WatchGpusResponse.FromString,  # type: ignore[attr-defined]
    )
    request = pb.WatchGpusRequest(opts=pb.ListOptions(watch=True))  # type: ignore[attr-defined]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    for seen, _event in enumerate(watch_gpus(request), 1):
        if seen == count:
            print(f"watching {seen}", flush=True)
            threading.Event().wait()  # hold the stream open until killed
    return 0


if __name__ == "__main__":
    sys.exit(main())
