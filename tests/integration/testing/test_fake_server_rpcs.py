"""FakeServer over a real Unix socket: the unary RPCs (Get, List, Create, Update, UpdateStatus,
Delete, Patch) and their Kubernetes semantics, through the raw generated stub."""

from __future__ import annotations

import json

import grpc
import pytest

from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.errors import ConflictError, NotFoundError
from nvinformers.testing import NOT_READY_RECOMMENDED_ACTION, FakeServer
from nvinformers.testing._patch import JSON, MERGE

from .conftest import Client, names


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value


def code_of(call: object) -> grpc.StatusCode:
    return rpc_error(call).code()


def new_gpu(name: str, namespace: str = "", **labels: str) -> pb.Gpu:
    return GPU.new(
        name,
        namespace=namespace,
        uuid=f"GPU-{name}",
        labels=labels,
        conditions=[Condition(type="Ready", status="True")],
    ).to_proto()


class TestReads:
    def test_default_inventory(self, client: Client) -> None:
        gpu_list = client.list()
        assert gpu_list.type_meta.kind == "GPUList"
        assert gpu_list.type_meta.api_version == "device.nvidia.com/v1alpha1"
        assert names(gpu_list.items) == [f"gpu-{i}" for i in range(8)]
        assert gpu_list.list_meta.resource_version == "8"
        for i, gpu in enumerate(gpu_list.items):
            assert gpu.type_meta.kind == "GPU"
            assert gpu.object_meta.resource_version == str(i + 1)
            assert gpu.object_meta.labels["nvidia.com/gpu.index"] == str(i)
            assert gpu.spec.uuid.startswith("GPU-")
            [ready] = gpu.status.conditions
            assert (ready.type, ready.status, ready.reason) == ("Ready", "True", "DriverReady")
            assert ready.message == "driver is posting ready status"
            assert ready.HasField("last_transition_time")
        assert len({g.spec.uuid for g in gpu_list.items}) == 8

    def test_seed_makes_uuids_reproducible(self) -> None:
        a = FakeServer(gpus=2, flip_interval=None, seed=3)
        b = FakeServer(gpus=2, flip_interval=None, seed=3)
        assert [g.spec.uuid for g in a.list_gpus().items] == [
            g.spec.uuid for g in b.list_gpus().items
        ]

    def test_get(self, client: Client, server: FakeServer) -> None:
        assert client.get("gpu-3") == server.get_gpu("gpu-3").to_proto()
        err = rpc_error(lambda: client.get("gpu-9"))
        assert err.code() is grpc.StatusCode.NOT_FOUND
        assert err.details() == 'gpus.device.nvidia.com "gpu-9" not found'

    def test_list_revision_follows_writes(self, client: Client, server: FakeServer) -> None:
        server.set_ready("gpu-0", False)
        assert client.list().list_meta.resource_version == "9" == str(server.revision)

    def test_list_label_selector(self, client: Client) -> None:
        items = client.list(label_selector="nvidia.com/gpu.index in (1,2)").items
        assert names(items) == ["gpu-1", "gpu-2"]
        assert names(client.list(label_selector="nvidia.com/gpu.index>5").items) == [
            "gpu-6",
            "gpu-7",
        ]
        assert client.list(label_selector="missing").items == []

    def test_bad_selector_is_invalid_argument_naming_it(self, client: Client) -> None:
        err = rpc_error(lambda: client.list(label_selector="a in (b"))
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == 'invalid label selector "a in (b": expected ")" at position 7'

    @pytest.mark.parametrize(
        ("opts", "fragment"),
        [
            ({"send_initial_events": True}, "sendInitialEvents is forbidden for list"),
            ({"resource_version_match": "NotOlderThan"}, "unless resourceVersion is provided"),
            ({"resource_version": "1", "resource_version_match": "Newest"}, "Unsupported value"),
            ({"resource_version": "0", "resource_version_match": "Exact"}, "forbidden for res"),
            # etcd3 storage parses the revision even though it serves the latest state.
            (
                {"resource_version": "abc"},
                'invalid resource version: resourceVersion: Invalid value: "abc"',
            ),
        ],
    )
    def test_list_option_validation(
        self, client: Client, opts: dict[str, object], fragment: str
    ) -> None:
        err = rpc_error(lambda: client.list(**opts))
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert fragment in (err.details() or "")

    def test_namespace_filters_lists(self, client: Client) -> None:
        assert {g.object_meta.namespace for g in client.list().items} == {"default"}
        request = pb.ListGpusRequest(namespace="default")
        assert len(client.stub.ListGpus(request).gpu_list.items) == 8
        request = pb.ListGpusRequest(namespace="other")
        assert len(client.stub.ListGpus(request).gpu_list.items) == 0

    def test_named_operations_look_in_the_requests_namespace(self, client: Client) -> None:
        # As the device-apiserver: "" means "default", and a GPU stored elsewhere is found only
        # by naming its namespace.
        stub = client.stub
        assert client.get("gpu-0").object_meta.namespace == "default"
        get = pb.GetGpuRequest(name="gpu-0", namespace="default")
        assert stub.GetGpu(get).gpu.object_meta.name == "gpu-0"
        elsewhere = pb.GetGpuRequest(name="gpu-0", namespace="other")
        assert code_of(lambda: stub.GetGpu(elsewhere)) is grpc.StatusCode.NOT_FOUND
        created = stub.CreateGpu(pb.CreateGpuRequest(gpu=new_gpu("gpu-o", namespace="other")))
        assert created.object_meta.namespace == "other"
        assert code_of(lambda: client.get("gpu-o")) is grpc.StatusCode.NOT_FOUND
        created.object_meta.labels["tier"] = "gold"
        assert stub.UpdateGpu(pb.UpdateGpuRequest(gpu=created)).object_meta.labels["tier"]
        misplaced = pb.Gpu()
        misplaced.CopyFrom(created)
        misplaced.object_meta.ClearField("namespace")
        assert code_of(lambda: stub.UpdateGpu(pb.UpdateGpuRequest(gpu=misplaced))) is (
            grpc.StatusCode.NOT_FOUND
        )
        assert code_of(lambda: stub.DeleteGpu(pb.DeleteGpuRequest(name="gpu-o"))) is (
            grpc.StatusCode.NOT_FOUND
        )
        stub.DeleteGpu(pb.DeleteGpuRequest(name="gpu-o", namespace="other"))

    def test_without_stamping_named_operations_ignore_namespaces(self) -> None:
        with FakeServer(gpus=1, flip_interval=None, stamp_default_namespace=False) as server:
            c = Client(server.target)
            try:
                assert c.get("gpu-0").object_meta.namespace == ""
                request = pb.GetGpuRequest(name="gpu-0", namespace="other")
                assert c.stub.GetGpu(request).gpu.object_meta.name == "gpu-0"
            finally:
                c.close()

    def test_ten_thousand_gpus_list_in_one_response(self) -> None:
        server = FakeServer(gpus=0, flip_interval=None)
        for i in range(10_000):
            server.storage.create(new_gpu(f"g-{i:05d}"))
        with server:
            c = Client(server.target)
            try:
                gpu_list = c.list()
                assert len(gpu_list.items) == 10_000
                assert gpu_list.list_meta.resource_version == "10000"
                assert gpu_list.items[-1].object_meta.name == "g-09999"
            finally:
                c.close()


class TestWrites:
    def test_create_sets_server_managed_fields(self, client: Client, server: FakeServer) -> None:
        request = new_gpu("gpu-new", rack="a")
        request.object_meta.uid = "mine"
        created = client.stub.CreateGpu(pb.CreateGpuRequest(gpu=request))
        meta = created.object_meta
        assert meta.resource_version == "9"
        assert meta.uid not in ("", "mine")
        assert meta.generation == 1
        assert meta.HasField("creation_timestamp")
        assert created.type_meta.kind == "GPU"
        assert not created.HasField("status")  # a subresource: UpdateGpuStatus writes it
        assert client.get("gpu-new") == created
        assert server.revision == 9

    def test_create_errors(self, client: Client) -> None:
        err = rpc_error(lambda: client.stub.CreateGpu(pb.CreateGpuRequest(gpu=new_gpu("gpu-0"))))
        assert err.code() is grpc.StatusCode.ALREADY_EXISTS
        assert err.details() == 'gpus.device.nvidia.com "gpu-0" already exists'
        with_rv = new_gpu("gpu-x")
        with_rv.object_meta.resource_version = "3"
        assert (
            code_of(lambda: client.stub.CreateGpu(pb.CreateGpuRequest(gpu=with_rv)))
            is grpc.StatusCode.INVALID_ARGUMENT
        )
        assert (
            code_of(lambda: client.stub.CreateGpu(pb.CreateGpuRequest()))
            is grpc.StatusCode.INVALID_ARGUMENT
        )

    def test_update_changes_spec_and_labels_and_bumps_generation_on_spec_only(
        self, client: Client
    ) -> None:
        gpu = client.get("gpu-0")
        gpu.object_meta.labels["tier"] = "gold"
        gpu.status.recommended_action = "IGNORED"
        updated = client.stub.UpdateGpu(pb.UpdateGpuRequest(gpu=gpu))
        assert updated.object_meta.labels["tier"] == "gold"
        assert updated.object_meta.generation == 1
        assert updated.object_meta.resource_version == "9"
        assert not updated.status.HasField("recommended_action")
        updated.spec.uuid = "GPU-replaced"
        again = client.stub.UpdateGpu(pb.UpdateGpuRequest(gpu=updated))
        assert again.object_meta.generation == 2
        assert again.spec.uuid == "GPU-replaced"

    def test_update_status_changes_only_status(self, client: Client) -> None:
        gpu = client.get("gpu-1")
        gpu.status.conditions[0].status = "False"
        gpu.spec.uuid = "GPU-ignored"
        gpu.object_meta.labels["ignored"] = "1"
        updated = client.stub.UpdateGpuStatus(pb.UpdateGpuStatusRequest(gpu=gpu))
        assert updated.status.conditions[0].status == "False"
        assert updated.spec.uuid != "GPU-ignored"
        assert "ignored" not in updated.object_meta.labels
        assert updated.object_meta.generation == 1

    def test_missing_name_is_not_found(self, client: Client) -> None:
        ghost = new_gpu("ghost")
        stub = client.stub
        assert code_of(lambda: stub.UpdateGpu(pb.UpdateGpuRequest(gpu=ghost))) is (
            grpc.StatusCode.NOT_FOUND
        )
        assert code_of(lambda: stub.UpdateGpuStatus(pb.UpdateGpuStatusRequest(gpu=ghost))) is (
            grpc.StatusCode.NOT_FOUND
        )
        assert code_of(lambda: stub.DeleteGpu(pb.DeleteGpuRequest(name="ghost"))) is (
            grpc.StatusCode.NOT_FOUND
        )
        assert code_of(
            lambda: stub.PatchGpu(pb.PatchGpuRequest(name="ghost", patch_type=MERGE, data=b"{}"))
        ) is (grpc.StatusCode.NOT_FOUND)

    def test_stale_resource_version_is_aborted(self, client: Client, server: FakeServer) -> None:
        stale = client.get("gpu-2")
        server.set_ready("gpu-2", False)
        stale.object_meta.labels["x"] = "y"
        err = rpc_error(lambda: client.stub.UpdateGpu(pb.UpdateGpuRequest(gpu=stale)))
        assert err.code() is grpc.StatusCode.ABORTED
        assert "the object has been modified" in (err.details() or "")
        assert code_of(
            lambda: client.stub.UpdateGpuStatus(pb.UpdateGpuStatusRequest(gpu=stale))
        ) is (grpc.StatusCode.ABORTED)

    def test_delete_with_preconditions(self, client: Client, server: FakeServer) -> None:
        current = client.get("gpu-4").object_meta

        def delete(uid: str = "", rv: str = "") -> object:
            pre = pb.Preconditions()
            if uid:
                pre.uid = uid
            if rv:
                pre.resource_version = rv
            request = pb.DeleteGpuRequest(name="gpu-4", opts=pb.DeleteOptions(preconditions=pre))
            return client.stub.DeleteGpu(request)

        assert code_of(lambda: delete(uid="other")) is grpc.StatusCode.ABORTED
        assert code_of(lambda: delete(rv="1")) is grpc.StatusCode.ABORTED
        delete(uid=current.uid, rv=current.resource_version)
        assert code_of(lambda: client.get("gpu-4")) is grpc.StatusCode.NOT_FOUND
        assert server.revision == 9

    def test_merge_patch_on_labels_and_on_status(self, client: Client) -> None:
        body = {"metadata": {"labels": {"nvidia.com/gpu.index": None, "tier": "gold"}}}
        patched = client.stub.PatchGpu(
            pb.PatchGpuRequest(name="gpu-0", patch_type=MERGE, data=json.dumps(body).encode())
        )
        assert dict(patched.object_meta.labels) == {"tier": "gold"}
        status = {
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "DriverNotReady"}]
            }
        }
        patched = client.stub.PatchGpu(
            pb.PatchGpuRequest(
                name="gpu-0",
                patch_type=MERGE,
                data=json.dumps(status).encode(),
                subresources=["status"],
            )
        )
        assert [(c.type, c.status) for c in patched.status.conditions] == [("Ready", "False")]
        assert patched.object_meta.resource_version == "10"

    def test_patch_of_the_main_resource_ignores_status_and_vice_versa(self, client: Client) -> None:
        body = json.dumps(
            {"metadata": {"labels": {"a": "b"}}, "status": {"recommendedAction": "X"}}
        ).encode()
        main = client.stub.PatchGpu(pb.PatchGpuRequest(name="gpu-1", patch_type=MERGE, data=body))
        assert main.object_meta.labels["a"] == "b"
        assert not main.status.HasField("recommended_action")
        body = json.dumps(
            {"metadata": {"labels": {"c": "d"}}, "status": {"recommendedAction": "X"}}
        ).encode()
        sub = client.stub.PatchGpu(
            pb.PatchGpuRequest(name="gpu-1", patch_type=MERGE, data=body, subresources=["status"])
        )
        assert "c" not in sub.object_meta.labels
        assert sub.status.recommended_action == "X"

    def test_json_patch(self, client: Client) -> None:
        ops = [
            {"op": "replace", "path": "/spec/uuid", "value": "GPU-json"},
            {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}},
        ]
        patched = client.stub.PatchGpu(
            pb.PatchGpuRequest(name="gpu-2", patch_type=JSON, data=json.dumps(ops).encode())
        )
        assert patched.spec.uuid == "GPU-json"
        assert patched.object_meta.annotations["k"] == "v"
        assert patched.object_meta.generation == 2

    def test_patch_errors(self, client: Client) -> None:
        stub = client.stub

        def patch(patch_type: str, body: object, subresources: tuple[str, ...] = ()) -> object:
            data = json.dumps(body).encode()
            return stub.PatchGpu(
                pb.PatchGpuRequest(
                    name="gpu-0", patch_type=patch_type, data=data, subresources=subresources
                )
            )

        invalid = grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(lambda: patch("strategic", {})) is invalid
        assert code_of(lambda: patch("merge", {})) is invalid  # media types only
        assert code_of(lambda: patch(MERGE, {"spec": {"uuid": 5}})) is invalid
        assert code_of(lambda: patch(JSON, [{"op": "move", "path": "/a"}])) is invalid
        assert code_of(lambda: patch(MERGE, {}, ("scale",))) is invalid
        assert code_of(lambda: patch(MERGE, {"metadata": {"name": "other"}})) is invalid
        assert code_of(lambda: patch(MERGE, {"metadata": {"uid": "other"}})) is invalid
        assert code_of(lambda: patch(MERGE, {"metadata": {"namespace": "other"}})) is invalid
        stale = {"metadata": {"resourceVersion": "2", "labels": {"x": "y"}}}  # gpu-0 is at 1
        assert code_of(lambda: patch(MERGE, stale)) is grpc.StatusCode.ABORTED
        # Unknown fields are dropped, as the device-apiserver drops them: nothing to write.
        before = client.get("gpu-0").object_meta.resource_version
        after = patch(MERGE, {"spec": {"typo": 1}})
        assert isinstance(after, pb.Gpu) and after.object_meta.resource_version == before


class TestPythonApi:
    def test_object_operations(self, server: FakeServer) -> None:
        created = server.create_gpu(GPU.new("extra", uuid="GPU-e", resource_version="99"))
        assert created.metadata.resource_version == "9"
        assert server.get_gpu("extra") is created
        relabelled = server.update_gpu(
            GPU.new("extra", uuid="GPU-e", labels={"rack": "r1"}, resource_version="9")
        )
        assert relabelled.metadata.labels == {"rack": "r1"}
        assert [g.metadata.name for g in server.list_gpus("rack=r1").items] == ["extra"]
        gone = server.delete_gpu("extra")
        assert gone.metadata.resource_version == "11"
        with pytest.raises(NotFoundError):
            server.get_gpu("extra")
        with pytest.raises(ConflictError):
            server.update_gpu(GPU.new("gpu-0", resource_version="2", labels={"a": "b"}))

    def test_set_ready_and_status_updates(self, server: FakeServer) -> None:
        before = server.get_gpu("gpu-5").status.conditions[0]
        not_ready = server.set_ready("gpu-5", False)
        [cond] = not_ready.status.conditions
        assert (cond.status, cond.reason) == ("False", "DriverNotReady")
        assert not_ready.status.recommended_action == NOT_READY_RECOMMENDED_ACTION
        assert cond.last_transition_time is not None
        assert before.last_transition_time is not None
        assert cond.last_transition_time >= before.last_transition_time
        revision = server.revision
        assert server.set_ready("gpu-5", False) is server.get_gpu("gpu-5")  # no-op
        assert server.revision == revision
        ready = server.set_ready("gpu-5", True)
        assert ready.status.recommended_action == ""
        with_extra = server.update_gpu_status(
            "gpu-5", conditions=[Condition(type="Healthy", status="True")]
        )
        assert [c.type for c in with_extra.status.conditions] == ["Ready", "Healthy"]
        kept = server.update_gpu_status(
            "gpu-5", conditions=[Condition(type="Ready", status="True", reason="Other")]
        )
        assert kept.status.conditions[0].last_transition_time == (
            ready.status.conditions[0].last_transition_time
        )
        with pytest.raises(NotFoundError):
            server.set_ready("nope", True)

    def test_flip_random_gpu_toggles_ready(self, server: FakeServer) -> None:
        flipped = server.flip_random_gpu()
        assert flipped is not None
        assert flipped.metadata.resource_version == "9"
        assert flipped.status.conditions[0].status == "False"

    def test_counters(self, client: Client, server: FakeServer) -> None:
        client.list()
        client.get("gpu-0")
        assert code_of(lambda: client.get("nope")) is grpc.StatusCode.NOT_FOUND
        assert server.wait_for_calls("GetGpu", 2, 5)
        calls = server.calls
        assert calls["ListGpus"] == 1
        assert calls["GetGpu"] == 2
        assert not server.wait_for_calls("ListGpus", 2, 0.01)
        with pytest.raises(ValueError, match="unknown method"):
            server.wait_for_calls("ListPods", 1, 0)
