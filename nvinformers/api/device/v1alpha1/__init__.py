"""``device.nvidia.com/v1alpha1``: the GPU types, and (in ``gpu_pb2`` / ``gpu_pb2_grpc``) the
generated protobuf and gRPC code of the wire contract."""

from nvinformers.api.device.v1alpha1._types import (
    API_VERSION,
    GPU,
    GROUP,
    KIND,
    LIST_KIND,
    RESOURCE,
    VERSION,
    Condition,
    FrozenMap,
    GPUList,
    GPUSpec,
    GPUStatus,
    ListMeta,
    ObjectMeta,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "GPU",
    "KIND",
    "LIST_KIND",
    "RESOURCE",
    "VERSION",
    "Condition",
    "FrozenMap",
    "GPUList",
    "GPUSpec",
    "GPUStatus",
    "ListMeta",
    "ObjectMeta",
]
