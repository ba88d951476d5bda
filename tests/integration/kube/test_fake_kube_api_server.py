"""FakeKubeAPIServer speaks the Kubernetes API well enough for the official client and informer."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.informer import SharedInformer

from nvinformers.kube import KubeListWatch
from nvinformers.options import ListOptions
from nvinformers.testing.kube_api import FakeKubeAPIError, FakeKubeAPIServer

from .conftest import WAIT, eventually, raw


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


class TestObjectsOverHTTP:
    def test_get_create_delete_and_not_found(self, server: FakeKubeAPIServer, core: Any) -> None:
        server.add_node("n1", labels={"a": "b"}, conditions={"Ready": "True"})
        node = core.read_node("n1")
        assert node.metadata.labels == {"a": "b"}
        assert node.status.conditions[0].type == "Ready"
        created = core.create_node({"metadata": {"name": "n2"}})
        assert created.metadata.resource_version == "2"
        with pytest.raises(ApiException) as exists:
            core.create_node({"metadata": {"name": "n2"}})
        assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"
        core.delete_node("n2")
        with pytest.raises(ApiException) as missing:
            core.read_node("n2")
        assert missing.value.status == 404
        assert status_of(missing.value)["message"] == 'nodes "n2" not found'

    def test_patches_change_labels_and_conditions(
        self, server: FakeKubeAPIServer, core: Any
    ) -> None:
        server.add_node("n1", labels={"a": "b"}, conditions={"Ready": "True", "Disk": "False"})
        patched = core.patch_node("n1", {"metadata": {"labels": {"c": "d", "a": None}}})
        assert patched.metadata.labels == {"c": "d"}
        # status changes through the main resource are ignored (the Node strategy)
        core.patch_node("n1", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
        assert server.get_node("n1")["status"]["conditions"][0]["status"] == "True"
        # strategic merge on the status subresource merges conditions by type
        updated = core.patch_node_status(
            "n1", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
        )
        assert [(c.type, c.status) for c in updated.status.conditions] == [
            ("Ready", "False"),
            ("Disk", "False"),
        ]
        # metadata changes through the status subresource are ignored
        core.patch_node_status("n1", {"metadata": {"labels": {"x": "y"}}})
        assert server.get_node("n1")["metadata"]["labels"] == {"c": "d"}
        request = server.last_request("patch", "nodes")
        assert request is not None and request.subresource == "status"

    def test_merge_patch_replaces_lists(self, server: FakeKubeAPIServer, core: Any) -> None:
        server.add_node("n1", conditions={"Ready": "True", "Disk": "False"})
        core.patch_node_status(
            "n1",
            {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            _content_type="application/merge-patch+json",
        )
        assert [c["type"] for c in server.get_node("n1")["status"]["conditions"]] == ["Ready"]

    def test_json_patch_applies_and_a_failed_test_is_422(
        self, server: FakeKubeAPIServer, core: Any
    ) -> None:
        server.add_node("n1", labels={"a": "b"})
        patched = core.patch_node("n1", [{"op": "add", "path": "/metadata/labels/c", "value": "d"}])
        assert patched.metadata.labels == {"a": "b", "c": "d"}
        with pytest.raises(ApiException) as failed:
            core.patch_node("n1", [{"op": "test", "path": "/metadata/labels/a", "value": "x"}])
        assert failed.value.status == 422 and status_of(failed.value)["reason"] == "Invalid"
        assert server.get_node("n1")["metadata"]["labels"] == {"a": "b", "c": "d"}

    def test_unsupported_patch_types_are_refused(
        self, server: FakeKubeAPIServer, core: Any
    ) -> None:
        server.add_node("n1")
        with pytest.raises(ApiException) as caught:
            core.patch_node("n1", {"metadata": {}}, _content_type="application/apply-patch+yaml")
        assert caught.value.status == 415

    def test_put_checks_the_resource_version(self, server: FakeKubeAPIServer, core: Any) -> None:
        server.add_node("n1")
        node = core.read_node("n1")
        node.metadata.labels = {"new": "label"}
        replaced = core.replace_node("n1", node)
        assert replaced.metadata.labels == {"new": "label"}
        node.metadata.labels = {"stale": "write"}
        with pytest.raises(ApiException) as caught:
            core.replace_node("n1", node)  # still carries the old resourceVersion
        assert caught.value.status == 409 and status_of(caught.value)["reason"] == "Conflict"

    def test_a_no_op_write_makes_no_revision(self, server: FakeKubeAPIServer, core: Any) -> None:
        server.add_node("n1", labels={"a": "b"})
        core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
        server.update_node("n1", labels={"a": "b"})
        assert server.revision == 1

    def test_unknown_paths_and_verbs(self, server: FakeKubeAPIServer, api: Any) -> None:
        with pytest.raises(ApiException) as caught:
            client.CoreV1Api(api).list_service_for_all_namespaces()
        assert caught.value.status == 404
        assert status_of(caught.value)["message"] == (
            "the server could not find the requested resource"
        )
        with pytest.raises(ApiException) as bad:
            client.CoreV1Api(api).list_node(field_selector="status.phase=Running")
        assert bad.value.status == 400 and "field label not supported" in bad.value.body
        code, _, status = raw(server, "DELETE", "/api/v1/nodes")
        assert (code, status["reason"]) == (405, "MethodNotAllowed")

    def test_python_api_errors(self, server: FakeKubeAPIServer) -> None:
        with pytest.raises(FakeKubeAPIError) as caught:
            server.delete_node("ghost")
        assert caught.value.code == 404
        server.add_node("n1")
        with pytest.raises(FakeKubeAPIError, match="already exists"):
            server.add_node("n1")
        with pytest.raises(FakeKubeAPIError, match=r"metadata\.labels"):
            server.update_node("n1", mutate=lambda o: o["metadata"].update(labels={"a": 1}))
        with pytest.raises(ValueError, match="unknown resource"):
            server.get("services", "x")
        assert server.list_nodes() == [server.get_node("n1")]


class TestHistory:
    def test_dropped_events_are_lost_on_the_wire_but_replayed_later(
        self, server: FakeKubeAPIServer, core: Any
    ) -> None:
        server.add_node("n1")
        lw = KubeListWatch(core.list_node)
        with lw.watch(ListOptions(resource_version="1", timeout_seconds=60)) as live:
            assert server.wait_for_watches(1)
            server.drop_next_events(1)
            server.update_node("n1", labels={"lost": "yes"})
            server.add_node("n2")
            event = next(iter(live))
            assert event.object.metadata.name == "n2"
        with lw.watch(ListOptions(resource_version="1", timeout_seconds=60)) as replay:
            names = [next(replay).object.metadata.resource_version for _ in range(2)]
        assert names == ["2", "3"]

    def test_history_is_bounded(self) -> None:
        with FakeKubeAPIServer(history_limit=3, namespaces=()) as small:
            small.add_node("n")
            for i in range(6):
                small.update_node("n", labels={"i": str(i)})
            assert small.revision == 7
            # trimmed back to the newest 3 changes when 6 had accumulated
            assert small.compacted_revision == 3
            assert small.compact(5) == 5
            assert small.compact(2) == 5  # never goes back

    def test_periodic_bookmarks(self, core: Any) -> None:
        with FakeKubeAPIServer(bookmark_interval=0.01) as ticking:
            api = ticking.api_client()
            try:
                lw = KubeListWatch(client.CoreV1Api(api).list_node)
                options = ListOptions(allow_watch_bookmarks=True, resource_version="0")
                with lw.watch(options) as watch:
                    event = next(watch)
                assert event.type == "BOOKMARK"
            finally:
                api.close()


class TestOfficialInformer:
    def test_the_official_shared_informer_runs_against_the_fake(
        self, server: FakeKubeAPIServer, core: Any
    ) -> None:
        server.add_node("n1")
        informer = SharedInformer(core.list_node)
        seen = threading.Event()
        informer.add_event_handler("MODIFIED", lambda obj: seen.set())
        informer.start()
        try:
            assert eventually(lambda: informer.cache.list_keys() == ["n1"])
            assert server.wait_for_watches(1)
            server.update_node("n1", labels={"a": "b"})
            assert seen.wait(WAIT)
        finally:
            informer._stop_event.set()
            watch = informer._watch
            if watch is not None:
                watch._stop = True  # its stop() alone can miss a watch still being opened
            server.end_watches()
            informer.stop()
