"""gRPC server reflection on FakeServer, read by a real reflection client; and FakeServer without
the optional ``grpcio-reflection`` package."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from nvinformers.testing import FakeServer

SERVICE = "nvidia.nvsentinel.v1alpha1.GpuService"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


def test_reflection_lists_and_describes_the_gpu_service() -> None:
    with (
        FakeServer(flip_interval=None, gpus=1) as server,
        grpc.insecure_channel(server.target) as channel,
    ):
        database = ProtoReflectionDescriptorDatabase(channel)
        assert set(database.get_services()) == {SERVICE, REFLECTION}
        service = DescriptorPool(database).FindServiceByName(SERVICE)
        methods = {m.name: m for m in service.methods}
        assert {"GetGpu", "ListGpus", "WatchGpus", "PatchGpu"} <= set(methods)
        assert (
            methods["ListGpus"].input_type.full_name == "nvidia.nvsentinel.v1alpha1.ListGpusRequest"
        )
        assert methods["WatchGpus"].server_streaming


def test_without_grpcio_reflection_the_fake_server_serves_unreflected() -> None:
    # The one thing a test cannot cause otherwise: the optional package being absent.
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["grpc_reflection"] = None  # as if not installed
        import grpc
        from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb, gpu_pb2_grpc
        from nvinformers.testing import FakeServer
        with FakeServer(flip_interval=None, gpus=2) as server:
            with grpc.insecure_channel(server.target) as channel:
                stub = gpu_pb2_grpc.GpuServiceStub(channel)
                print(len(stub.ListGpus(pb.ListGpusRequest()).gpu_list.items))
                probe = channel.stream_stream("/{REFLECTION}/ServerReflectionInfo")
                try:
                    list(probe(iter([b""])))
                except grpc.RpcError as err:
                    print(err.code().name)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "UNIMPLEMENTED"]
