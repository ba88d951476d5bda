"""Namespaces, events and the write rules around them, over HTTP with the official client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from nvinformers.kube import KubeListWatch
from nvinformers.options import ListOptions
from nvinformers.testing.kube_api import DEFAULT_NAMESPACES, FakeKubeAPIServer


@pytest.fixture
def seeded() -> Iterator[FakeKubeAPIServer]:
    with FakeKubeAPIServer() as running:
        yield running


@pytest.fixture
def core(seeded: FakeKubeAPIServer) -> Iterator[Any]:
    api = seeded.api_client()
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def pod(name: str, **meta: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, **meta},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }


def reason(exc: ApiException) -> tuple[int, str]:
    return exc.status, json.loads(exc.body)["reason"]


class TestNamespaces:
    def test_default_and_kube_system_exist_and_can_be_listed_got_and_watched(
        self, seeded: FakeKubeAPIServer, core: Any
    ) -> None:
        assert DEFAULT_NAMESPACES == ("default", "kube-system")
        listed = core.list_namespace()
        assert [ns.metadata.name for ns in listed.items] == ["default", "kube-system"]
        default = core.read_namespace("default")
        assert default.status.phase == "Active" and default.spec.finalizers == ["kubernetes"]
        lw = KubeListWatch(core.list_namespace)
        with lw.watch(ListOptions(resource_version=listed.metadata.resource_version)) as watch:
            assert seeded.wait_for_watches(1)
            core.create_namespace({"metadata": {"name": "gpu-operator"}})
            event = next(watch)
        assert (event.type, event.object.metadata.name) == ("ADDED", "gpu-operator")

    def test_creates_in_a_missing_namespace_are_refused(self, core: Any) -> None:
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_pod("nowhere", pod("p"))
        assert reason(caught.value) == (404, "NotFound")
        assert json.loads(caught.value.body)["message"] == 'namespaces "nowhere" not found'

    def test_deleting_a_namespace_deletes_its_objects_but_default_stays(
        self, seeded: FakeKubeAPIServer, core: Any
    ) -> None:
        core.create_namespace({"metadata": {"name": "team"}})
        core.create_namespaced_pod("team", pod("p"))
        core.create_namespaced_pod("default", pod("p"))
        core.delete_namespace("team")
        assert [p.metadata.namespace for p in core.list_pod_for_all_namespaces().items] == [
            "default"
        ]
        with pytest.raises(ApiException) as caught:
            core.delete_namespace("default")
        assert reason(caught.value) == (403, "Forbidden")


class TestEventsAndWrites:
    def test_events_are_created_with_generated_names(self, core: Any) -> None:
        event = core.create_namespaced_event(
            "default",
            {
                "metadata": {"generateName": "kopf-event-"},
                "involvedObject": {"kind": "Node", "name": "n1"},
                "reason": "Logging",
                "message": "hello",
                "type": "Normal",
            },
        )
        assert event.metadata.name.startswith("kopf-event-")
        assert len(event.metadata.name) == len("kopf-event-") + 5
        listed = core.list_namespaced_event("default", field_selector="involvedObject.name=n1")
        assert [e.reason for e in listed.items] == ["Logging"]

    def test_a_body_naming_another_namespace_is_refused(self, core: Any) -> None:
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_pod("default", pod("p", namespace="x"))
        assert reason(caught.value) == (400, "BadRequest")

    def test_a_stale_status_update_conflicts(self, seeded: FakeKubeAPIServer, core: Any) -> None:
        seeded.add_node("n1", conditions={"Ready": "True"})
        node = core.read_node("n1")
        seeded.update_node("n1", labels={"moved": "on"})
        node.status.conditions[0].status = "False"
        with pytest.raises(ApiException) as caught:
            core.replace_node_status("n1", node)
        assert reason(caught.value) == (409, "Conflict")
        assert seeded.get_node("n1")["status"]["conditions"][0]["status"] == "True"

    def test_a_patch_carrying_a_stale_resource_version_conflicts(
        self, seeded: FakeKubeAPIServer, core: Any
    ) -> None:
        seeded.add_node("n1")
        with pytest.raises(ApiException) as caught:
            core.patch_node("n1", {"metadata": {"resourceVersion": "1", "labels": {"a": "b"}}})
        assert reason(caught.value) == (409, "Conflict")
        current = seeded.get_node("n1")["metadata"]["resourceVersion"]
        patched = core.patch_node("n1", {"metadata": {"resourceVersion": current, "labels": {}}})
        assert patched.metadata.resource_version == current  # a no-op writes nothing
