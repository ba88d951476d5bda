"""SharedIndexInformer over Kubernetes Nodes and Pods: the full informer semantics over HTTP."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from nvinformers import errors, labels
from nvinformers.cache import (
    DeletedFinalStateUnknown,
    ResourceEventHandlerFuncs,
    SharedIndexInformer,
)
from nvinformers.kube import (
    KubeObject,
    lister_for,
    new_informer,
    new_node_informer,
    new_pod_informer,
)
from nvinformers.testing.kube_api import FakeKubeAPIServer

from .conftest import FAST, WAIT, Recorder, Running, eventually


def node_informer(api: Any, **options: Any) -> tuple[SharedIndexInformer[KubeObject], Recorder]:
    options.setdefault("backoff", FAST)
    informer = new_node_informer(api, **options)
    recorder = Recorder()
    informer.add_event_handler(recorder)
    return informer, recorder


def synced(informer: SharedIndexInformer[KubeObject], running: Running) -> threading.Event:
    stop = running.start(informer)
    assert informer.wait_for_sync(WAIT)
    return stop


class TestNodeInformer:
    def test_initial_sync_updates_and_deletes_arrive_in_order(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_node("n1")
        server.add_node("n2")
        informer, recorder = node_informer(api)
        synced(informer, running)
        assert recorder.wait_for(2) == ["add n1@1", "add n2@2"]
        assert server.wait_for_watches(1)
        server.update_node("n1", conditions={"Ready": "False"})
        server.delete_node("n2")
        server.add_node("n3")
        server.update_node("n1", labels={"a": "b"})
        assert recorder.wait_for(6)[2:] == [
            "update n1@1->n1@3",
            "delete n2@4",
            "add n3@5",
            "update n1@3->n1@6",
        ]
        store = informer.get_store()
        assert sorted(store.list_keys()) == ["n1", "n3"]
        cached = store.get_by_key("n1")
        assert cached is not None and cached.metadata.labels == {"a": "b"}
        assert cached.conditions[0].status == "False"
        request = server.last_request("watch", "nodes")
        assert request is not None
        assert request.query["allowWatchBookmarks"] == "true"
        assert 300 <= int(request.query["timeoutSeconds"]) < 600
        first_list = server.last_request("list", "nodes")
        assert first_list is not None and first_list.query["resourceVersion"] == "0"

    def test_deletes_missed_during_an_expired_watch_arrive_as_tombstones(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        for name in ("n1", "n2", "n3"):
            server.add_node(name)
        informer, recorder = node_informer(api)
        synced(informer, running)
        assert server.wait_for_watches(1)
        server.update_node("n1", labels={"seen": "yes"})  # the watch delivers something
        assert recorder.wait_for(4)[3] == "update n1@1->n1@4"
        lists_before = server.request_count("list", "nodes")
        with server.hold_watch_requests():
            server.end_watches()
            assert server.wait_for_held_watches(1), "the informer did not re-watch"
            # While the informer's watch is down: changes, then the history is compacted.
            server.delete_node("n2")
            server.add_node("n4")
            server.update_node("n3", labels={"changed": "yes"})
            server.compact()
        events = recorder.wait_for(7)
        assert sorted(events[4:]) == ["add n4@6", "delete tombstone:n2", "update n3@3->n3@7"]
        (tombstone,) = recorder.deleted
        assert isinstance(tombstone, DeletedFinalStateUnknown)
        assert tombstone.key == "n2"
        assert tombstone.obj is not None and tombstone.obj.metadata.name == "n2"
        assert server.request_count("list", "nodes") == lists_before + 1
        assert informer.reflector.stats.watch_restarts.get("expired") == 1
        assert sorted(informer.get_store().list_keys()) == ["n1", "n3", "n4"]
        # The relist asked for the last revision the informer had seen (client-go's rule).
        relist = server.last_request("list", "nodes")
        assert relist is not None and relist.query["resourceVersion"] == "4"

    def test_bookmarks_advance_the_revision_without_events(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_node("n1")
        informer, recorder = node_informer(api)
        synced(informer, running)
        assert server.wait_for_watches(1)
        server.add_pod("p1")  # moves the global revision, not the nodes
        server.add_pod("p2")
        assert informer.last_sync_resource_version() == "1"
        assert server.send_bookmarks() == 1
        assert eventually(lambda: informer.last_store_sync_resource_version() == "3")
        assert informer.last_sync_resource_version() == "3"
        assert recorder.wait_for(1, timeout=0) == ["add n1@1"]
        # A re-watch resumes from the bookmark's revision, not from the list's.
        server.end_watches()
        assert eventually(lambda: server.request_count("watch", "nodes") >= 2)
        request = server.last_request("watch", "nodes")
        assert request is not None and request.query["resourceVersion"] == "3"

    def test_a_label_selector_tweak_filters_on_the_server(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_node("gpu-1", labels={"gpu": "true"})
        server.add_node("cpu-1", labels={"gpu": "false"})
        informer, recorder = node_informer(
            api, tweak_list_options=lambda o: replace(o, label_selector="gpu=true")
        )
        synced(informer, running)
        assert informer.get_store().list_keys() == ["gpu-1"]
        assert server.wait_for_watches(1)
        server.update_node("cpu-1", labels={"gpu": "true"})
        server.update_node("gpu-1", labels={"gpu": "false"})
        assert recorder.wait_for(3) == ["add gpu-1@1", "add cpu-1@3", "delete gpu-1@4"]
        assert informer.get_store().list_keys() == ["cpu-1"]
        for verb in ("list", "watch"):
            request = server.last_request(verb, "nodes")
            assert request is not None and request.query["labelSelector"] == "gpu=true"

    def test_stop_ends_a_blocked_watch_promptly(self, server: FakeKubeAPIServer, api: Any) -> None:
        informer, _ = node_informer(api)
        stop = threading.Event()
        thread = threading.Thread(target=informer.run, args=(stop,), name="test-stop-nodes")
        thread.start()
        assert informer.wait_for_sync(WAIT)
        assert server.wait_for_watches(1)  # the watch is open and idle (timeout 5-10 min)
        stop.set()
        thread.join(WAIT)
        assert not thread.is_alive(), "the informer did not stop while its watch was idle"
        assert informer.is_stopped()

    def test_a_failed_list_is_retried_and_reported(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_node("n1")
        server.fail_next("list", count=2, code=503, reason="ServiceUnavailable")
        informer, recorder = node_informer(api)
        seen: list[BaseException] = []
        informer.set_watch_error_handler(lambda _name, err: seen.append(err))
        synced(informer, running)
        assert recorder.wait_for(1) == ["add n1@1"]
        assert len(seen) == 2
        assert all(errors.is_service_unavailable(err) for err in seen)
        assert server.request_count("list", "nodes") == 3

    def test_streaming_list_syncs_without_a_list_request(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_node("n1")
        server.add_node("n2")
        informer, recorder = node_informer(api, use_watch_list=True)
        synced(informer, running)
        assert sorted(recorder.wait_for(2)) == ["add n1@1", "add n2@2"]
        server.update_node("n2", labels={"x": "y"})
        assert recorder.wait_for(3)[2] == "update n2@2->n2@3"
        assert server.request_count("list", "nodes") == 0
        first = server.requests[0]
        assert first.verb == "watch" and first.query["sendInitialEvents"] == "true"


class TestListers:
    def test_node_lister_gets_lists_with_selectors_and_reports_not_found(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_node("a", labels={"rack": "1", "gpu": "true"})
        server.add_node("b", labels={"rack": "2", "gpu": "true"})
        server.add_node("c", labels={"rack": "1"})
        informer, _ = node_informer(api)
        synced(informer, running)
        lister = lister_for(informer)
        assert lister.get("a").metadata.labels["rack"] == "1"
        assert sorted(o.metadata.name for o in lister.list()) == ["a", "b", "c"]
        assert sorted(o.metadata.name for o in lister.list("gpu=true,rack!=2")) == ["a"]
        assert sorted(o.metadata.name for o in lister.list(labels.parse("!gpu"))) == ["c"]
        with pytest.raises(errors.NotFoundError) as caught:
            lister.get("zz")
        assert str(caught.value) == 'nodes "zz" not found'
        assert caught.value.resource == "nodes" and caught.value.name == "zz"
        with pytest.raises(ValueError, match="cluster-scoped"):
            lister.namespaced("default")

    def test_pod_lister_by_namespace(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_pod("web-0", "team-a", {"app": "web"}, node_name="n1")
        server.add_pod("web-1", "team-a", {"app": "web"}, node_name="n2")
        server.add_pod("db-0", "team-b", {"app": "db"}, node_name="n1")
        informer = new_pod_informer(api, backoff=FAST)
        synced(informer, running)
        lister = lister_for(informer)
        assert lister.is_namespaced
        team_a = lister.namespaced("team-a")
        assert team_a.get("web-1").metadata.namespace == "team-a"
        assert sorted(o.metadata.name for o in team_a.list("app=web")) == ["web-0", "web-1"]
        assert lister.get("team-b/db-0").kind == "Pod"
        assert len(lister.namespaced("").list()) == 3
        assert sorted(informer.get_indexer().index_keys("namespace", "team-a")) == [
            "team-a/web-0",
            "team-a/web-1",
        ]
        with pytest.raises(errors.NotFoundError, match='pods "web-9" not found'):
            team_a.get("web-9")
        with pytest.raises(errors.NotFoundError, match='pods "db-0" not found'):
            lister.get("team-c/db-0")

    def test_node_local_pod_informer_with_a_field_selector(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_pod("a", "ns", node_name="n1")
        server.add_pod("b", "ns", node_name="n2")
        informer = new_pod_informer(
            api, namespace="ns", field_selector="spec.nodeName=n1", backoff=FAST
        )
        recorder = Recorder()
        informer.add_event_handler(recorder)
        synced(informer, running)
        assert informer.get_store().list_keys() == ["ns/a"]
        assert server.wait_for_watches(1)
        server.add_pod("c", "ns", node_name="n1")
        server.add_pod("d", "ns", node_name="n2")
        server.delete_pod("a", "ns")
        assert recorder.wait_for(3) == ["add a@1", "add c@3", "delete a@5"]
        request = server.last_request("watch", "pods")
        assert request is not None and request.path == "/api/v1/namespaces/ns/pods"

    def test_lister_for_needs_a_resource_for_foreign_informers(self, core: Any) -> None:
        informer = new_informer(core.list_node, resource="nodes", namespaced=False)
        assert lister_for(informer, "nodes").resource == "nodes"
        bare: SharedIndexInformer[KubeObject] = SharedIndexInformer(informer.reflector._lw)
        with pytest.raises(ValueError, match="pass resource="):
            lister_for(bare)
        assert lister_for(bare, "pods").is_namespaced
        with pytest.raises(ValueError, match="pass namespaced="):
            lister_for(bare, "widgets.example.com")
        assert lister_for(bare, "widgets.example.com", namespaced=True).is_namespaced


class TestHandlersSeeImmutableShared:
    def test_handlers_receive_the_cached_objects(
        self, server: FakeKubeAPIServer, api: Any, running: Running
    ) -> None:
        server.add_node("n1", labels={"a": "b"})
        informer = new_node_informer(api, backoff=FAST)
        received: list[KubeObject] = []
        done = threading.Event()

        def on_add(obj: KubeObject) -> None:
            received.append(obj)
            done.set()

        informer.add_event_handler(ResourceEventHandlerFuncs(on_add=on_add))
        synced(informer, running)
        assert done.wait(WAIT)
        assert received[0] is informer.get_store().get_by_key("n1")
        with pytest.raises(AttributeError, match="immutable"):
            received[0].metadata.name = "x"
