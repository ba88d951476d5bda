"""KubeObject: decoding, immutability, labels, equality, pickling, lists, managedFields."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from nvinformers import labels, meta
from nvinformers.cache import meta_namespace_key_func
from nvinformers.errors import MalformedObjectError
from nvinformers.kube import EMPTY_LABELS, KubeObject, Labels, parse_list, strip_managed_fields


def node(name: str = "node-1", **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "uid": "6f1a",
        "resourceVersion": "42",
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "labels": {"kubernetes.io/os": "linux", "gpu": "true"},
        "annotations": {"note": "hi"},
    }
    metadata.update(extra.pop("metadata", {}))
    obj: dict[str, Any] = {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {"podCIDR": "10.0.0.0/24"},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-02T03:04:05Z"},
                {"type": "DiskPressure", "status": "False"},
            ]
        },
    }
    obj.update(extra)
    return obj


def raw(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


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
            (b"\xff\xfe", "malformed"),
        ],
    )
    def test_malformed_objects_are_rejected_with_the_problem_named(
        self, payload: bytes, problem: str
    ) -> None:
        with pytest.raises(MalformedObjectError, match=problem):
            KubeObject.from_bytes(payload)

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


class TestLabels:
    def test_mapping_behaviour(self) -> None:
        lbls = Labels.of({"b": "2", "a": "1"})
        assert list(lbls) == ["b", "a"]
        assert len(lbls) == 2
        assert lbls["a"] == "1"
        assert lbls.get("zz") is None
        assert lbls.get("zz", "d") == "d"
        assert "b" in lbls and "zz" not in lbls
        assert dict(lbls.items()) == {"a": "1", "b": "2"}
        assert lbls == {"a": "1", "b": "2"}
        assert lbls != {"a": "1"}
        assert repr(lbls) == "Labels({'b': '2', 'a': '1'})"
        with pytest.raises(KeyError):
            lbls["zz"]

    def test_same_key_sets_share_one_key_table(self) -> None:
        one = KubeObject.from_bytes(raw(node("n1")))
        two = KubeObject.from_bytes(raw(node("n2")))
        assert one.metadata.labels._schema is two.metadata.labels._schema
        assert one.metadata.labels == two.metadata.labels

    def test_label_values_are_interned(self) -> None:
        one = KubeObject.from_bytes(raw(node("n1")))
        two = KubeObject.from_bytes(raw(node("n2")))
        assert one.metadata.labels["kubernetes.io/os"] is two.metadata.labels["kubernetes.io/os"]

    def test_empty_labels_are_shared(self) -> None:
        obj = KubeObject.from_bytes(b'{"metadata":{"name":"n"}}')
        assert obj.metadata.labels is EMPTY_LABELS
        assert Labels.of({}) is EMPTY_LABELS
        assert obj.metadata.labels == {}

    def test_selectors_match_labels(self) -> None:
        obj = KubeObject.from_bytes(raw(node()))
        assert labels.parse("gpu=true,kubernetes.io/os in (linux)").matches(obj.metadata.labels)
        assert not labels.parse("gpu!=true").matches(obj.metadata.labels)
        assert labels.parse("!missing").matches(obj.metadata.labels)

    def test_labels_pickle_and_build_from_a_mapping(self) -> None:
        lbls = Labels({"x": "y"})
        assert pickle.loads(pickle.dumps(lbls)) == {"x": "y"}
        assert lbls.to_dict() == {"x": "y"}


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


MANAGED = [{"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {}}}]


class TestManagedFields:
    def test_list_items_keep_their_slice_of_the_body_and_get_the_kind(self) -> None:
        body = (
            b'{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"9"},'
            b'"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"},"spec":{}}]}'
        )
        result = parse_list(body)
        assert result.metadata.resource_version == "9"
        assert result.kind == "NodeList"
        assert [o.to_bytes() for o in result.items] == [
            b'{"metadata":{"name":"a"}}',
            b'{"metadata":{"name":"b"},"spec":{}}',
        ]
        assert {(o.kind, o.api_version) for o in result.items} == {("Node", "v1")}

    @pytest.mark.parametrize("indent", [None, 2])
    @pytest.mark.parametrize("position", ["last", "first", "middle", "only"])
    def test_managed_fields_are_cut_from_the_bytes(self, indent: int | None, position: str) -> None:
        metadata: dict[str, Any] = {}
        if position == "first":
            metadata = {"managedFields": MANAGED, "name": "n", "labels": {"a": "b"}}
        elif position == "middle":
            metadata = {"name": "n", "managedFields": MANAGED, "labels": {"a": "b"}}
        elif position == "last":
            metadata = {"name": "n", "labels": {"a": "b"}, "managedFields": MANAGED}
        else:
            metadata = {"managedFields": MANAGED}
        obj = {"kind": "Node", "apiVersion": "v1", "metadata": metadata, "spec": {"x": 1}}
        text = json.dumps(obj, indent=indent)
        body = '{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":[' + text + "]}"
        if position == "only":
            with pytest.raises(MalformedObjectError, match=r"metadata\.name"):
                parse_list(body.encode())
            return
        (item,) = parse_list(body.encode()).items
        expected = {k: v for k, v in metadata.items() if k != "managedFields"}
        assert item.to_dict() == {**obj, "metadata": expected}
        assert b"managedFields" not in item.to_bytes()
        (kept,) = parse_list(body.encode(), strip=False).items
        assert kept.to_dict() == obj

    @pytest.mark.parametrize(
        "obj",
        [
            # the API server's layout, metadata last
            {
                "kind": "Node",
                "apiVersion": "v1",
                "metadata": {"name": "n", "managedFields": MANAGED},
            },
            # the next top-level key is a managedFields entry key: the layout shortcut declines
            {"metadata": {"name": "n", "managedFields": MANAGED}, "time": {"a": 1}},
            {"metadata": {"name": "n", "managedFields": MANAGED}, "f:x": 1, "spec": {}},
            # decoys that must not be taken for metadata.managedFields
            {
                "metadata": {
                    "name": "n",
                    "labels": {"managedFields": "x"},
                    "annotations": {"a": ',"managedFields":[1]},"spec":'},
                    "managedFields": MANAGED,
                },
                "spec": {"b": 2},
            },
            # spec before metadata: the first occurrence is spec's
            {
                "spec": {"x": 1, "managedFields": MANAGED},
                "metadata": {"name": "n", "managedFields": MANAGED},
            },
            {"metadata": {"name": "n", "managedFields": []}, "status": {}},
        ],
    )
    def test_managed_fields_cut_in_every_layout(self, obj: dict[str, Any]) -> None:
        text = json.dumps(obj, separators=(",", ":"))
        (item,) = parse_list(('{"kind":"NodeList","items":[' + text + "]}").encode()).items
        expected = json.loads(text)
        del expected["metadata"]["managedFields"]
        decoded = item.to_dict()
        decoded.pop("kind", None)
        decoded.pop("apiVersion", None)
        expected.pop("kind", None)
        expected.pop("apiVersion", None)
        assert decoded == expected

    def test_a_nested_field_of_the_same_name_is_not_mistaken_for_metadata_s(self) -> None:
        obj = {
            "kind": "Widget",
            "apiVersion": "x/v1",
            "spec": {"managedFields": [{"manager": "decoy"}]},
            "metadata": {"name": "n", "managedFields": MANAGED},
        }
        body = '{"kind":"WidgetList","items":[' + json.dumps(obj, separators=(",", ":")) + "]}"
        (item,) = parse_list(body.encode()).items
        assert item.get("spec") == {"managedFields": [{"manager": "decoy"}]}
        assert item.get("metadata", "managedFields") is None

    def test_non_ascii_bodies_slice_correctly(self) -> None:
        obj = {"metadata": {"name": "n", "annotations": {"note": "héllo ✓"}}, "spec": {}}
        body = '{"kind":"NodeList","items":[' + json.dumps(obj, ensure_ascii=False) + "]}"
        (item,) = parse_list(body.encode()).items
        assert item.metadata.annotations["note"] == "héllo ✓"
        assert item.to_dict()["spec"] == {}

    def test_strip_managed_fields_as_a_transform(self) -> None:
        full = KubeObject.from_dict(node(metadata={"managedFields": MANAGED}))
        stripped = strip_managed_fields(full)
        assert stripped.get("metadata", "managedFields") is None
        assert stripped.metadata.labels == full.metadata.labels
        lean = KubeObject.from_dict(node())
        assert strip_managed_fields(lean) is lean

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"[]",
            b'{"items": [1, 2]}',
            b'{"items": [{"metadata": {"name": "a"}} {"metadata": {"name": "b"}}]}',
            b'{"kind": "NodeList" "items": []}',
            b'{"kind": 5, "items": []}',
            b'{"metadata": [], "items": []}',
            b'{"items": [',
        ],
    )
    def test_malformed_lists_are_rejected(self, body: bytes) -> None:
        with pytest.raises(MalformedObjectError):
            parse_list(body)

    def test_empty_list_and_whitespace(self) -> None:
        result = parse_list(b' { "kind" : "PodList" , "items" : [ ] , "metadata" : { } } ')
        assert result.items == ()
        assert result.kind == "PodList"
