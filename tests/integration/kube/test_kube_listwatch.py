"""KubeListWatch over real HTTP: the official client's list function against FakeKubeAPIServer."""

from __future__ import annotations

import functools
import socket
import threading
from typing import Any, ClassVar

import pytest
from kubernetes import client

from nvinformers import errors
from nvinformers.kube import KubeListWatch, KubeWatch
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION, ListOptions
from nvinformers.testing.kube_api import FakeKubeAPIServer
from nvinformers.watch import Event, EventType

from .conftest import WAIT


def take(watch: KubeWatch, count: int) -> list[Event[Any]]:
    out = []
    for event in watch:
        out.append(event)
        if len(out) == count:
            break
    return out


def brief(events: list[Event[Any]]) -> list[str]:
    return [f"{e.type.value} {e.object.metadata.name}@{e.object.metadata.resource_version}"
            for e in events]  # fmt: skip


@pytest.fixture
def nodes(core: Any) -> KubeListWatch:
    return KubeListWatch(core.list_node, resource="nodes")


class TestList:
    def test_list_returns_objects_and_the_revision(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        server.add_node("n1", labels={"gpu": "true"}, conditions={"Ready": "True"})
        server.add_node("n2")
        result = nodes.list(ListOptions())
        assert result.metadata.resource_version == str(server.revision)
        assert [o.metadata.name for o in result.items] == ["n1", "n2"]
        first = result.items[0]
        assert (first.kind, first.api_version) == ("Node", "v1")
        assert first.metadata.labels == {"gpu": "true"}
        assert first.conditions[0].type == "Ready"
        assert first.metadata.uid == server.get_node("n1")["metadata"]["uid"]

    def test_list_sends_options_and_the_server_filters(
        self, server: FakeKubeAPIServer, core: Any
    ) -> None:
        server.add_node("n1", labels={"gpu": "true"})
        server.add_node("n2", labels={"gpu": "false"})
        lw = KubeListWatch(core.list_node, field_selector="metadata.name!=n9")
        result = lw.list(
            ListOptions(label_selector="gpu=true", resource_version="0",
                        resource_version_match="NotOlderThan")
        )  # fmt: skip
        assert [o.metadata.name for o in result.items] == ["n1"]
        request = server.last_request("list", "nodes")
        assert request is not None
        assert request.query["labelSelector"] == "gpu=true"
        assert request.query["resourceVersion"] == "0"
        assert request.query["resourceVersionMatch"] == "NotOlderThan"
        assert request.query["fieldSelector"] == "metadata.name!=n9"
        assert "watch" not in request.query

    def test_namespaced_list_functions(self, server: FakeKubeAPIServer, core: Any) -> None:
        server.add_pod("a", "team-a")
        server.add_pod("b", "team-b")
        bound = KubeListWatch(functools.partial(core.list_namespaced_pod, "team-a"))
        option = KubeListWatch(core.list_namespaced_pod, namespace="team-b")
        everywhere = KubeListWatch(core.list_pod_for_all_namespaces)
        assert [o.metadata.name for o in bound.list(ListOptions()).items] == ["a"]
        assert [o.metadata.name for o in option.list(ListOptions()).items] == ["b"]
        pods = everywhere.list(ListOptions()).items
        assert [(o.metadata.namespace, o.kind) for o in pods] == [
            ("team-a", "Pod"),
            ("team-b", "Pod"),
        ]

    def test_the_tweak_applies_to_lists_and_watches(
        self, server: FakeKubeAPIServer, core: Any
    ) -> None:
        lw = KubeListWatch(
            core.list_node,
            tweak_list_options=lambda o: ListOptions(
                label_selector="a=b",
                resource_version=o.resource_version,
                timeout_seconds=o.timeout_seconds,
            ),
        )
        lw.list(ListOptions())
        with lw.watch(ListOptions(timeout_seconds=30)):
            pass
        for verb in ("list", "watch"):
            request = server.last_request(verb, "nodes")
            assert request is not None and request.query["labelSelector"] == "a=b"


class TestWatch:
    def test_watch_delivers_changes_in_order_with_bookmarks(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        server.add_node("n1")
        rv = nodes.list(ListOptions()).metadata.resource_version
        with nodes.watch(
            ListOptions(resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=60)
        ) as watch:
            server.add_node("n2")
            server.update_node("n1", labels={"x": "y"})
            server.send_bookmarks()
            server.delete_node("n2")
            events = take(watch, 4)
        assert brief(events) == ["ADDED n2@2", "MODIFIED n1@3", "BOOKMARK @3", "DELETED n2@4"]
        assert events[1].object.metadata.labels == {"x": "y"}
        request = server.last_request("watch", "nodes")
        assert request is not None
        assert request.query["allowWatchBookmarks"] == "true"
        assert request.query["timeoutSeconds"] == "60"
        assert request.query["resourceVersion"] == rv

    def test_watch_from_zero_starts_with_the_current_state(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        server.add_node("b")
        server.add_node("a")
        with nodes.watch(ListOptions(resource_version="0", timeout_seconds=60)) as watch:
            assert brief(take(watch, 2)) == ["ADDED a@2", "ADDED b@1"]

    def test_streaming_list_ends_its_initial_events_with_a_bookmark(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        server.add_node("a")
        options = ListOptions(
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
            timeout_seconds=60,
        )
        with nodes.watch(options) as watch:
            added, bookmark = take(watch, 2)
        assert added.type is EventType.ADDED
        assert bookmark.type is EventType.BOOKMARK
        assert bookmark.object.metadata.annotations[INITIAL_EVENTS_END_ANNOTATION] == "true"
        request = server.last_request("watch", "nodes")
        assert request is not None and request.query["sendInitialEvents"] == "true"

    def test_streaming_list_without_its_preconditions_is_refused(
        self, nodes: KubeListWatch
    ) -> None:
        with pytest.raises(errors.BadRequestError) as caught:
            nodes.watch(ListOptions(send_initial_events=True, allow_watch_bookmarks=True))
        assert caught.value.code == 422

    def test_server_timeout_ends_the_stream_cleanly(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        with nodes.watch(ListOptions(resource_version=str(server.revision))) as watch:
            assert server.wait_for_watches(1)
            server.end_watches()
            assert list(watch) == []

    def test_a_compacted_revision_raises_expired_from_the_stream(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        server.add_node("a")
        server.update_node("a", labels={"v": "2"})
        server.compact()
        watch = nodes.watch(ListOptions(resource_version="1", timeout_seconds=60))
        with pytest.raises(errors.ExpiredError, match="too old resource version: 1") as caught:
            next(watch)
        assert caught.value.code == 410
        assert list(watch) == []  # the watch is closed

    def test_label_selector_transitions_arrive_as_adds_and_deletes(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        server.add_node("a", labels={"gpu": "true"})
        server.add_node("b")
        options = ListOptions(resource_version=str(server.revision), label_selector="gpu=true")
        with nodes.watch(options) as watch:
            server.update_node("a", labels={"gpu": "false"})
            server.update_node("b", labels={"gpu": "true"})
            server.update_node("a", labels={})
            server.update_node("b", labels={"gpu": "true", "x": "1"})
            events = take(watch, 3)
        assert brief(events) == ["DELETED a@3", "ADDED b@4", "MODIFIED b@6"]
        assert events[0].object.metadata.labels == {"gpu": "true"}  # the last matching state

    def test_stop_ends_a_blocked_read_promptly(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        watch = nodes.watch(ListOptions(resource_version=str(server.revision), timeout_seconds=600))
        seen: list[Event[Any]] = []
        failures: list[BaseException] = []

        def consume() -> None:
            try:
                seen.extend(watch)
            except BaseException as exc:  # recorded for the assertion below
                failures.append(exc)

        reader = threading.Thread(target=consume, name="test-watch-reader")
        reader.start()
        assert server.wait_for_watches(1)
        watch.stop()
        reader.join(WAIT)
        assert not reader.is_alive(), "stop() did not end the blocked read"
        assert failures == [] and seen == []
        watch.stop()  # idempotent

    def test_stop_before_iterating_closes_the_response(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        watch = nodes.watch(ListOptions(resource_version=str(server.revision)))
        watch.stop()
        assert list(watch) == []
        assert "stopped" in repr(watch)

    def test_many_events_per_chunk_and_partial_lines(
        self, server: FakeKubeAPIServer, nodes: KubeListWatch
    ) -> None:
        rv = str(server.revision)
        with nodes.watch(ListOptions(resource_version=rv, timeout_seconds=60)) as watch:
            assert server.wait_for_watches(1)
            server.pause_delivery()
            for i in range(300):
                server.add_node(f"n{i:03d}", annotations={"pad": "x" * 5000})
            server.resume_delivery()
            events = take(watch, 300)
        assert [e.object.metadata.name for e in events] == [f"n{i:03d}" for i in range(300)]


class TestManagedFields:
    MANAGED: ClassVar = [{"manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1",
                          "fieldsV1": {"f:status": {"f:conditions": {}}}}]  # fmt: skip

    def node(self, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"a": "b"}, "managedFields": self.MANAGED},
                "status": {"phase": "Up"}}  # fmt: skip

    @pytest.mark.parametrize("strip", [True, False])
    def test_listed_and_watched_objects_lose_them_unless_kept(
        self, server: FakeKubeAPIServer, core: Any, strip: bool
    ) -> None:
        lw = KubeListWatch(core.list_node, resource="nodes", strip_managed_fields=strip)
        server.create("nodes", self.node("n1"))
        listed = lw.list(ListOptions())
        with lw.watch(ListOptions(resource_version=listed.metadata.resource_version)) as watch:
            server.create("nodes", self.node("n2"))
            (watched,) = [e.object for e in take(watch, 1)]
        for obj in (listed.items[0], watched):
            assert obj.get("metadata", "managedFields") == (None if strip else self.MANAGED)
            assert obj.metadata.labels == {"a": "b"}
            assert obj.get("status") == {"phase": "Up"}


class TestErrors:
    @pytest.mark.parametrize(
        ("code", "reason", "cls"),
        [
            (403, "Forbidden", errors.ForbiddenError),
            (500, "InternalError", errors.InternalError),
            (429, "TooManyRequests", errors.ServiceUnavailableError),
            (410, "Expired", errors.ExpiredError),
        ],
    )
    def test_http_errors_map_to_status_errors(
        self,
        server: FakeKubeAPIServer,
        nodes: KubeListWatch,
        code: int,
        reason: str,
        cls: type[errors.StatusError],
    ) -> None:
        server.fail_next("list", code=code, reason=reason, message=f"injected {reason}")
        server.fail_next("watch", code=code, reason=reason, message=f"injected {reason}")
        with pytest.raises(cls, match=f"injected {reason}") as listed:
            nodes.list(ListOptions())
        assert (listed.value.code, listed.value.reason) == (code, reason)
        assert listed.value.resource == "nodes"
        with pytest.raises(cls):
            nodes.watch(ListOptions())
        assert nodes.list(ListOptions()).items == ()

    def test_bad_selectors_are_bad_requests(self, nodes: KubeListWatch) -> None:
        with pytest.raises(errors.BadRequestError):
            nodes.list(ListOptions(label_selector="a in (b"))

    def test_an_unreachable_server_is_unavailable_and_named(self) -> None:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = client.Configuration(host=f"http://127.0.0.1:{port}")
        config.retries = False
        with client.ApiClient(config) as api:
            lw = KubeListWatch(client.CoreV1Api(api).list_node, connect_timeout=2.0)
            with pytest.raises(errors.ServiceUnavailableError, match=f"127.0.0.1:{port}"):
                lw.list(ListOptions())
            with pytest.raises(errors.ServiceUnavailableError, match=f"127.0.0.1:{port}"):
                lw.watch(ListOptions())

    def test_invalid_timeouts_are_rejected(self, core: Any) -> None:
        with pytest.raises(ValueError, match="timeouts must be > 0"):
            KubeListWatch(core.list_node, request_timeout=0)
        with pytest.raises(ValueError, match="list method"):
            KubeListWatch("list_node")  # type: ignore[arg-type]
