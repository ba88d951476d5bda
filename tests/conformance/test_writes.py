"""The write RPCs, through the generated stub: server-managed fields and the status code of each
failure. The SDK itself is read-only; these are the semantics its informers observe, and what
providers (and the fake server) must get right."""

from __future__ import annotations

import json
from functools import partial

import grpc
import pytest

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from tests.conformance.support import Writer, ready_status, rpc_code, rv

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def test_create_sets_the_server_managed_fields(writer: Writer) -> None:
    created = writer.create("a")
    meta = created.object_meta
    assert created.type_meta.kind == "GPU"
    assert created.type_meta.api_version == "device.nvidia.com/v1alpha1"
    assert meta.uid and meta.resource_version and meta.generation == 1
    assert meta.HasField("creation_timestamp") and meta.creation_timestamp.seconds > 0
    # A metav1.Time: whole seconds (what the device-apiserver stores and sends).
    assert meta.creation_timestamp.nanos == 0


def test_create_ignores_the_status(writer: Writer) -> None:
    msg = pb.Gpu()
    msg.object_meta.name = writer.name("a")
    msg.object_meta.labels.update({"conformance.nvinformers.io/case": writer.prefix})
    msg.spec.uuid = "GPU-a"
    msg.status.CopyFrom(ready_status(True))
    created = writer.stub.CreateGpu(pb.CreateGpuRequest(gpu=msg), timeout=30)
    writer._created.append(created.object_meta.name)
    assert list(created.status.conditions) == []  # status is written through UpdateGpuStatus


def test_generation_counts_spec_changes_only(writer: Writer) -> None:
    a = writer.create("a")
    name = a.object_meta.name
    assert writer.set_labels(name, tier="gold").object_meta.generation == 1
    assert writer.set_ready(name, True).object_meta.generation == 1
    assert writer.set_uuid(name, "GPU-changed").object_meta.generation == 2


def test_update_status_leaves_spec_and_labels_and_update_leaves_status(writer: Writer) -> None:
    a = writer.create("a", labels={"tier": "gold"}, status=ready_status(True))
    name = a.object_meta.name
    stale = writer.get(name)
    stale.object_meta.labels["tier"] = "ignored"
    stale.spec.uuid = "GPU-ignored"
    stale.status.CopyFrom(ready_status(False))
    after_status = writer.stub.UpdateGpuStatus(pb.UpdateGpuStatusRequest(gpu=stale), timeout=30)
    assert after_status.object_meta.labels["tier"] == "gold"
    assert after_status.spec.uuid == "GPU-a"
    assert after_status.status.conditions[0].status == "False"
    current = writer.get(name)
    current.status.CopyFrom(ready_status(True))
    current.object_meta.labels["tier"] = "silver"
    after_update = writer.stub.UpdateGpu(pb.UpdateGpuRequest(gpu=current), timeout=30)
    assert after_update.object_meta.labels["tier"] == "silver"
    assert after_update.status.conditions[0].status == "False"


def test_an_update_that_changes_nothing_writes_nothing(writer: Writer) -> None:
    a = writer.create("a", labels={"tier": "gold"})
    again = writer.set_labels(a.object_meta.name, tier="gold")
    assert rv(again) == rv(a)


def test_merge_patch_of_labels_and_of_the_status_subresource(writer: Writer) -> None:
    a = writer.create("a", labels={"tier": "gold", "rack": "r1"}, status=ready_status(True))
    name = a.object_meta.name
    body = {"metadata": {"labels": {"tier": "silver", "rack": None}}}
    patched = writer.stub.PatchGpu(
        pb.PatchGpuRequest(name=name, patch_type=MERGE_PATCH, data=json.dumps(body).encode()),
        timeout=30,
    )
    assert patched.object_meta.labels["tier"] == "silver"
    assert "rack" not in patched.object_meta.labels
    assert rv(patched) > rv(a)
    status = {"status": {"recommendedAction": "RESTART_DRIVER"}}
    on_status = writer.stub.PatchGpu(
        pb.PatchGpuRequest(
            name=name,
            patch_type=MERGE_PATCH,
            data=json.dumps(status).encode(),
            subresources=["status"],
        ),
        timeout=30,
    )
    assert on_status.status.recommended_action == "RESTART_DRIVER"
    assert on_status.status.conditions[0].type == "Ready"


def test_json_patch(writer: Writer) -> None:
    a = writer.create("a", labels={"tier": "gold"})
    ops = [
        {"op": "replace", "path": "/spec/uuid", "value": "GPU-patched"},
        {"op": "add", "path": "/metadata/labels/rack", "value": "r9"},
    ]
    patched = writer.stub.PatchGpu(
        pb.PatchGpuRequest(
            name=a.object_meta.name, patch_type=JSON_PATCH, data=json.dumps(ops).encode()
        ),
        timeout=30,
    )
    assert patched.spec.uuid == "GPU-patched" and patched.object_meta.labels["rack"] == "r9"
    assert patched.object_meta.generation == 2


# -- the status code of each failure -----------------------------------------------------------

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_create_of_an_existing_name_is_already_exists(writer: Writer) -> None:
    a = writer.create("a")
    again = pb.Gpu()
    again.object_meta.name = a.object_meta.name
    code = rpc_code(lambda: writer.stub.CreateGpu(pb.CreateGpuRequest(gpu=again), timeout=30))
    assert code is grpc.StatusCode.ALREADY_EXISTS


def test_create_without_a_name_is_invalid_argument(writer: Writer) -> None:
    assert rpc_code(lambda: writer.stub.CreateGpu(pb.CreateGpuRequest(gpu=pb.Gpu()))) is INVALID


def test_writes_to_a_missing_name_are_not_found(writer: Writer) -> None:
    ghost = pb.Gpu()
    ghost.object_meta.name = writer.name("ghost")
    stub = writer.stub
    calls = {
        "UpdateGpu": lambda: stub.UpdateGpu(pb.UpdateGpuRequest(gpu=ghost)),
        "UpdateGpuStatus": lambda: stub.UpdateGpuStatus(pb.UpdateGpuStatusRequest(gpu=ghost)),
        "DeleteGpu": lambda: stub.DeleteGpu(pb.DeleteGpuRequest(name=ghost.object_meta.name)),
        "PatchGpu": lambda: stub.PatchGpu(
            pb.PatchGpuRequest(name=ghost.object_meta.name, patch_type=MERGE_PATCH, data=b"{}")
        ),
    }
    codes = {method: rpc_code(call) for method, call in calls.items()}
    assert codes == dict.fromkeys(calls, grpc.StatusCode.NOT_FOUND)


def test_a_stale_resource_version_is_aborted(writer: Writer) -> None:
    a = writer.create("a")
    writer.set_labels(a.object_meta.name, tier="gold")
    stale = pb.Gpu()
    stale.CopyFrom(a)
    stale.object_meta.labels["tier"] = "silver"
    stub = writer.stub
    assert rpc_code(lambda: stub.UpdateGpu(pb.UpdateGpuRequest(gpu=stale))) is (
        grpc.StatusCode.ABORTED
    )
    stale.status.CopyFrom(ready_status(True))
    assert rpc_code(lambda: stub.UpdateGpuStatus(pb.UpdateGpuStatusRequest(gpu=stale))) is (
        grpc.StatusCode.ABORTED
    )


def test_failed_delete_preconditions_are_aborted(writer: Writer) -> None:
    a = writer.create("a")
    writer.set_labels(a.object_meta.name, tier="gold")
    name, stub = a.object_meta.name, writer.stub
    for pre in (
        pb.Preconditions(uid="00000000-0000-0000-0000-000000000000"),
        pb.Preconditions(resource_version=a.object_meta.resource_version),
    ):
        request = pb.DeleteGpuRequest(name=name, opts=pb.DeleteOptions(preconditions=pre))
        assert rpc_code(partial(stub.DeleteGpu, request)) is grpc.StatusCode.ABORTED
    assert writer.exists(name)


def test_an_update_changing_the_uid_is_invalid_argument(writer: Writer) -> None:
    a = writer.create("a")
    changed = writer.get(a.object_meta.name)
    changed.object_meta.uid = "00000000-0000-0000-0000-000000000000"
    changed.object_meta.labels["tier"] = "gold"
    assert rpc_code(lambda: writer.stub.UpdateGpu(pb.UpdateGpuRequest(gpu=changed))) is INVALID


@pytest.mark.parametrize(
    ("patch_type", "data"),
    [
        ("merge", b"{}"),  # the short names are not patch types: media types are
        ("application/strategic-merge-patch+json", b"{}"),
        (MERGE_PATCH, b"{not json"),
        (JSON_PATCH, b'{"op": "add"}'),
    ],
    ids=["short-name", "strategic", "bad-merge-body", "bad-json-patch-body"],
)
def test_bad_patches_are_invalid_argument(writer: Writer, patch_type: str, data: bytes) -> None:
    a = writer.create("a")
    request = pb.PatchGpuRequest(name=a.object_meta.name, patch_type=patch_type, data=data)
    assert rpc_code(lambda: writer.stub.PatchGpu(request)) is INVALID


def test_a_patch_changing_the_uid_is_invalid_argument(writer: Writer) -> None:
    a = writer.create("a")
    body = json.dumps({"metadata": {"uid": "00000000-0000-0000-0000-000000000000"}}).encode()
    request = pb.PatchGpuRequest(name=a.object_meta.name, patch_type=MERGE_PATCH, data=body)
    assert rpc_code(lambda: writer.stub.PatchGpu(request)) is INVALID
