"""nvinformers.testing._patch (merge / JSON patch on the JSON form) and _servicer.FailurePlan."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import grpc
import pytest

from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.errors import BadRequestError
from nvinformers.testing._patch import (
    JSON,
    MERGE,
    apply_json_patch,
    apply_merge_patch,
    apply_patch,
    gpu_from_json,
    gpu_to_json,
)
from nvinformers.testing._servicer import FailurePlan

WHEN = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def sample() -> pb.Gpu:
    return GPU.new(
        "gpu-0",
        uuid="GPU-1",
        resource_version="7",
        uid="u-1",
        generation=2,
        creation_timestamp=WHEN,
        labels={"rack": "a", "nvidia.com/gpu.index": "0"},
        annotations={"note": "x"},
        conditions=[
            Condition(
                type="Ready",
                status="True",
                reason="DriverReady",
                observed_generation=2,
                last_transition_time=WHEN,
            ),
            Condition(type="Healthy", status="True"),
        ],
        recommended_action="NONE",
    ).to_proto()


def patch(msg: pb.Gpu, kind: str, body: object) -> pb.Gpu:
    return apply_patch(msg, kind, json.dumps(body).encode())


class TestJsonForm:
    def test_round_trip_is_exact_including_nanoseconds(self) -> None:
        msg = sample()
        doc = gpu_to_json(msg)
        assert doc["metadata"]["labels"] == {"rack": "a", "nvidia.com/gpu.index": "0"}
        assert doc["status"]["conditions"][0]["lastTransitionTime"] == "2025-01-02T03:04:05.123456Z"
        assert gpu_from_json(doc) == msg

    @pytest.mark.parametrize(
        ("doc", "fragment"),
        [
            ({"metadata": {"name": 1}}, "metadata.name: expected str"),
            ({"metadata": {"generation": True}}, "expected an integer"),
            ({"metadata": {"labels": {"a": 1}}}, "metadata.labels.a"),
            ({"status": {"conditions": {}}}, "status.conditions: expected list"),
            ({"metadata": {"creationTimestamp": "yesterday"}}, "invalid RFC 3339"),
            ([], "object: expected dict"),
        ],
    )
    def test_bad_documents_are_bad_requests(self, doc: object, fragment: str) -> None:
        with pytest.raises(BadRequestError) as info:
            gpu_from_json(doc)
        assert fragment in str(info.value)

    def test_unknown_fields_are_dropped_as_the_device_apiserver_drops_them(self) -> None:
        doc = gpu_to_json(sample())
        doc["bogus"] = {}
        doc["spec"]["extra"] = 1
        doc["status"]["conditions"][0]["typo"] = 1
        assert gpu_from_json(doc) == sample()


class TestMergePatch:
    def test_rfc7386_basics(self) -> None:
        target = {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}
        result = apply_merge_patch(target, {"a": {"b": None, "x": 3}, "d": [9], "e": None})
        assert result == {"a": {"c": 2, "x": 3}, "d": [9]}
        assert target == {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}  # untouched

    def test_labels_added_and_removed(self) -> None:
        out = patch(sample(), MERGE, {"metadata": {"labels": {"rack": None, "tier": "gold"}}})
        assert dict(out.object_meta.labels) == {"nvidia.com/gpu.index": "0", "tier": "gold"}

    def test_conditions_list_is_replaced_whole(self) -> None:
        body = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
        out = patch(sample(), MERGE, body)
        assert [(c.type, c.status) for c in out.status.conditions] == [("Ready", "False")]
        assert out.status.recommended_action == "NONE"

    def test_recommended_action_removed_with_null(self) -> None:
        out = patch(sample(), MERGE, {"status": {"recommendedAction": None}})
        assert not out.status.HasField("recommended_action")

    def test_a_merge_patch_must_be_an_object(self) -> None:
        with pytest.raises(BadRequestError, match="must be a JSON object"):
            patch(sample(), MERGE, [1])


class TestJsonPatch:
    def test_add_replace_remove_test(self) -> None:
        ops = [
            {"op": "test", "path": "/metadata/labels/rack", "value": "a"},
            {"op": "add", "path": "/metadata/labels/nvidia.com~1model", "value": "h100"},
            {"op": "replace", "path": "/status/conditions/0/status", "value": "False"},
            {"op": "remove", "path": "/status/conditions/1"},
            {"op": "add", "path": "/status/conditions/-", "value": {"type": "X", "status": "U"}},
            {"op": "remove", "path": "/metadata/annotations/note"},
        ]
        out = patch(sample(), JSON, ops)
        assert out.object_meta.labels["nvidia.com/model"] == "h100"
        assert [(c.type, c.status) for c in out.status.conditions] == [
            ("Ready", "False"),
            ("X", "U"),
        ]
        assert "note" not in out.object_meta.annotations
        # The untouched transition time keeps its microseconds.
        assert out.status.conditions[0].last_transition_time.ToDatetime(UTC) == WHEN

    def test_move_and_copy(self) -> None:
        ops = [
            {"op": "move", "from": "/metadata/labels/rack", "path": "/metadata/labels/row"},
            {"op": "copy", "from": "/metadata/labels/row", "path": "/metadata/annotations/row"},
            {"op": "move", "from": "/status/conditions/1", "path": "/status/conditions/0"},
        ]
        out = patch(sample(), JSON, ops)
        assert dict(out.object_meta.labels) == {"row": "a", "nvidia.com/gpu.index": "0"}
        assert out.object_meta.annotations["row"] == "a"
        assert [c.type for c in out.status.conditions] == ["Healthy", "Ready"]

    def test_insert_into_an_array(self) -> None:
        doc = apply_json_patch({"a": [1, 3]}, [{"op": "add", "path": "/a/1", "value": 2}])
        assert doc == {"a": [1, 2, 3]}
        assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": 5}]) == 5

    @pytest.mark.parametrize(
        ("ops", "fragment"),
        [
            ([{"op": "test", "path": "/metadata/labels/rack", "value": "b"}], "test failed"),
            ([{"op": "replace", "path": "/metadata/labels/nope", "value": "b"}], "does not exist"),
            ([{"op": "remove", "path": "/status/conditions/5"}], "out of range"),
            ([{"op": "remove", "path": "/status/conditions/01"}], "not an array index"),
            ([{"op": "copy", "from": "/nope", "path": "/b"}], 'path "/nope" does not exist'),
            ([{"op": "move", "from": "/metadata", "path": "/metadata/x"}], "into itself"),
            ([{"op": "merge", "path": "/a"}], "unsupported op 'merge'"),
            ([{"op": "add", "path": "/metadata/labels/x"}], "needs a value"),
            ([{"op": "add", "path": "metadata", "value": 1}], 'must be empty or start with "/"'),
            ([{"op": "add", "path": "/nope/x", "value": 1}], '"nope" does not exist'),
            ([{"op": "remove", "path": ""}], "cannot remove the whole document"),
            ({"op": "add"}, "json patch: expected list"),
        ],
    )
    def test_bad_operations(self, ops: object, fragment: str) -> None:
        with pytest.raises(BadRequestError) as info:
            patch(sample(), JSON, ops)
        assert fragment in str(info.value)


class TestPatchDispatch:
    @pytest.mark.parametrize(
        "patch_type", ["merge", "json", "application/strategic-merge-patch+json", ""]
    )
    def test_only_the_media_types_are_patch_types(self, patch_type: str) -> None:
        # As the device-apiserver: "merge" and "json" (the proto comment's names) are refused.
        expected = re.escape(f"unsupported media type: patch type: {patch_type} ")
        with pytest.raises(BadRequestError, match=expected):
            apply_patch(sample(), patch_type, b"{}")

    def test_invalid_json(self) -> None:
        with pytest.raises(BadRequestError, match="not valid JSON"):
            apply_patch(sample(), MERGE, b"{nope")
        with pytest.raises(BadRequestError, match="not valid JSON"):
            apply_patch(sample(), MERGE, b"\xff")


class TestFailurePlan:
    def test_budget_is_consumed_per_call_and_per_method(self) -> None:
        plan = FailurePlan()
        plan.fail_next("ListGpus", 2, grpc.StatusCode.UNAVAILABLE)
        assert plan.pending("ListGpus") == 2
        assert plan.take("WatchGpus") is None
        first = plan.take("ListGpus")
        assert first is not None
        assert first.code is grpc.StatusCode.UNAVAILABLE
        assert "injected fault" in first.message
        assert plan.take("ListGpus") is not None
        assert plan.take("ListGpus") is None

    def test_zero_cancels_and_bad_arguments_are_refused(self) -> None:
        plan = FailurePlan()
        plan.fail_next("GetGpu", 3, grpc.StatusCode.INTERNAL, "boom")
        plan.fail_next("GetGpu", 0, grpc.StatusCode.INTERNAL)
        assert plan.take("GetGpu") is None
        with pytest.raises(ValueError, match="non-negative"):
            plan.fail_next("GetGpu", -1, grpc.StatusCode.INTERNAL)
        with pytest.raises(ValueError, match="other than OK"):
            plan.fail_next("GetGpu", 1, grpc.StatusCode.OK)
