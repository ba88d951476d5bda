"""KubeObject: decoding, immutability, equality and pickling."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from nvinformers import meta
from nvinformers.cache import meta_namespace_key_func
from nvinformers.errors import MalformedObjectError
from nvinformers.kube import KubeObject
from tests.unit.kube.samples import node, raw


class TestDecoding:
    def test_header_fields_are_decoded_once_and_exposed(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        assert obj.kind == "Node"
        assert obj.api_version == "v1"
        assert obj.metadata.name == "node-1"
        assert obj.metadata.namespace == ""
        assert obj.metadata.resource_version == "42"
        assert obj.metadata.uid == "6f1a"
        assert dict(obj.metadata.labels) == {"kubernetes.io/os": "linux", "gpu": "true"}

    def test_other_metadata_fields_decode_on_demand(self) -> None:
        obj = KubeObject.from_bytes(raw(node(metadata={"finalizers": ["a"], "generation": 3})))
        m = obj.metadata
        assert dict(m.annotations) == {"note": "hi"}
        assert m.generation == 3
        assert m.finalizers == ("a",)
        assert m.creation_timestamp is not None
        assert m.creation_timestamp.year == 2026
        assert m.deletion_timestamp is None
        assert m.owner_references == ()

    def test_path_access_returns_values_or_default(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        assert obj.get("status", "conditions", 0, "type") == "Ready"
        assert obj.get("status", "conditions", -1, "status") == "False"
        assert obj.get("status", "conditions", 5) is None
        assert obj.get("spec", "missing", default="x") == "x"
        assert obj.get("kind") == "Node"
        assert obj.get() == obj.to_dict()

    def test_conditions_work_with_the_meta_helpers(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        assert meta.is_status_condition_true(obj.conditions, "Ready")
        assert meta.is_status_condition_false(obj.conditions, "DiskPressure")
        ready = meta.find_status_condition(obj.conditions, "Ready")
        assert ready is not None and ready.last_heartbeat_time is not None

    def test_namespaced_objects_key_as_namespace_slash_name(self) -> None:
        pod = KubeObject.from_dict(
            {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "team"}}
        )
        assert meta_namespace_key_func(pod) == "team/web"
        assert meta_namespace_key_func(KubeObject.from_bytes(raw(node()))) == "node-1"

    def test_kind_defaults_apply_only_when_absent(self) -> None:
        bare = b'{"metadata":{"name":"n"}}'
        obj = KubeObject.from_bytes(bare, kind="Node", api_version="v1")
        assert (obj.kind, obj.api_version) == ("Node", "v1")
        assert obj.to_bytes() == bare
        assert obj.to_dict() == {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}
        own = KubeObject.from_bytes(raw(node()), kind="Other")
        assert own.kind == "Node"

    @pytest.mark.parametrize(
        ("payload", "problem"),
        [
            (b"{not json", "malformed"),
            (b"[1, 2]", "expected a JSON object"),
            (b'{"kind": "Node"}', "no metadata"),
            (b'{"metadata": {"uid": "x"}}', "metadata.name"),
            (b'{"metadata": {"name": ""}}', "metadata.name"),
            (b'{"metadata": {"name": 7}}', "metadata.name"),
            (b'{"metadata": {"name": "n", "namespace": 1}}', "metadata.namespace"),
            (b'{"metadata": {"name": "n", "resourceVersion": 5}}', "resourceVersion"),
            (b'{"metadata": {"name": "n", "labels": {"a": 1}}}', "label value"),
            (b'{"metadata": {"name": "n", "labels": ["a"]}}', "labels"),
            (b'{"kind": 1, "metadata": {"name": "n"}}', "kind and apiVersion"),
            (b"\xff\xfe", "malformed"),
        ],
    )
    def test_malformed_objects_are_rejected_with_the_problem_named(
        self, payload: bytes, problem: str
    ) -> None:
        with pytest.raises(MalformedObjectError, match=problem):
            KubeObject.from_bytes(payload)

    def test_malformed_fields_read_later_are_named(self) -> None:
        bad_condition = {"type": "Ready", "status": "True", "observedGeneration": [1]}
        obj = KubeObject.from_bytes(
            raw(node(metadata={"generation": "x"}, status={"conditions": [bad_condition]}))
        )
        with pytest.raises(MalformedObjectError, match=r"metadata\.generation is 'x'"):
            _ = obj.metadata.generation
        with pytest.raises(MalformedObjectError, match=r"condition\.observedGeneration"):
            _ = obj.conditions

    def test_from_dict_rejects_unserializable_values(self) -> None:
        with pytest.raises(MalformedObjectError, match="JSON-serializable"):
            KubeObject.from_dict({"metadata": {"name": "n"}, "x": object()})


class TestImmutability:
    def test_attributes_cannot_be_set_or_deleted(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        with pytest.raises(AttributeError, match="immutable"):
            obj.kind = "Pod"
        with pytest.raises(AttributeError, match="immutable"):
            obj.metadata.name = "other"
        with pytest.raises(AttributeError, match="immutable"):
            del obj.metadata
        with pytest.raises(AttributeError, match="immutable"):
            obj.metadata.labels._values = ()

    def test_mappings_are_read_only(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        with pytest.raises(TypeError):
            obj.metadata.labels["gpu"] = "false"  # type: ignore[index]
        with pytest.raises(TypeError):
            obj.metadata.annotations["note"] = "x"  # type: ignore[index]

    def test_what_callers_get_is_theirs_to_change(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        mine = obj.to_dict()
        mine["metadata"]["labels"]["gpu"] = "false"
        status = obj.get("status")
        status["conditions"].clear()
        assert obj.metadata.labels["gpu"] == "true"
        assert len(obj.conditions) == 2

    def test_copies_are_the_object_itself(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        assert copy.copy(obj) is obj
        assert copy.deepcopy(obj) is obj
        assert copy.deepcopy(obj.metadata.labels) is obj.metadata.labels

    def test_constructors_cannot_be_called_directly(self) -> None:
        with pytest.raises(TypeError, match="from_bytes"):
            KubeObject()


class TestEqualityAndPickling:
    def test_equal_contents_compare_equal_whatever_the_encoding(self) -> None:
        compact = KubeObject.from_bytes(raw(node()))
        spaced = KubeObject.from_bytes(json.dumps(node(), indent=2).encode())
        assert compact == spaced
        assert compact != KubeObject.from_bytes(raw(node(metadata={"resourceVersion": "43"})))

    def test_kind_is_part_of_equality(self) -> None:
        bare = b'{"metadata":{"name":"n"}}'
        assert KubeObject.from_bytes(bare, kind="Node") != KubeObject.from_bytes(bare, kind="Pod")
        assert KubeObject.from_bytes(bare, kind="Node", api_version="v1") == KubeObject.from_bytes(
            b'{"kind":"Node","apiVersion":"v1","metadata":{"name":"n"}}'
        )

    def test_objects_are_not_hashable(self) -> None:
        with pytest.raises(TypeError):
            hash(KubeObject.from_bytes(raw(node())))

    def test_pickle_round_trips(self) -> None:
        obj = KubeObject.from_bytes(b'{"metadata":{"name":"n","labels":{"a":"b"}}}', kind="Node")
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj
        assert back.kind == "Node"
        assert back.metadata.labels == {"a": "b"}

    def test_repr_names_the_object(self) -> None:
        pod = KubeObject.from_dict(
            {"kind": "Pod", "metadata": {"name": "w", "namespace": "t", "resourceVersion": "3"}}
        )
        assert repr(pod) == "KubeObject(kind='Pod', name='w', namespace='t', resource_version='3')"
        assert "namespace='t'" in repr(pod.metadata)
