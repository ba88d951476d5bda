"""The fake Kubernetes API server answers discovery, version and health as the API server does."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from nvinformers.testing.kube_api import FakeKubeAPIServer

from .conftest import raw

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
# What kubectl 1.32 and client-go send for /api and /apis.
KUBECTL_ACCEPT = f"{AGGREGATED_V2},{AGGREGATED_V2BETA1},application/json"


def by_name(entries: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {entry[key]: entry for entry in entries}


class TestVersionAndHealth:
    def test_the_official_client_reads_the_version(
        self, server: FakeKubeAPIServer, api: Any
    ) -> None:
        info = client.VersionApi(api).get_code()
        assert (info.major, info.minor, info.git_version) == ("1", "32", "v1.32.0")

    def test_health_endpoints_answer_ok(self, server: FakeKubeAPIServer) -> None:
        for path in ("/healthz", "/livez", "/readyz", "/readyz/ping", "/livez?verbose"):
            code, ctype, body = raw(server, "GET", path)
            assert (code, ctype.split(";")[0]) == (200, "text/plain"), path
            assert "ok" in body


class TestLegacyDiscovery:
    def test_api_lists_the_core_version(self, server: FakeKubeAPIServer, api: Any) -> None:
        versions = client.CoreApi(api).get_api_versions()
        assert versions.versions == ["v1"]
        address = server.url.removeprefix("http://")
        assert versions.server_address_by_client_cidrs[0].server_address == address

    def test_api_v1_lists_every_resource_and_subresource(
        self, server: FakeKubeAPIServer, api: Any
    ) -> None:
        listing = client.CoreV1Api(api).get_api_resources()
        assert listing.group_version == "v1"
        resources = {r.name: r for r in listing.resources}
        assert set(resources) == {
            "namespaces", "namespaces/status", "nodes", "nodes/status", "pods", "pods/status",
            "events",
        }  # fmt: skip
        nodes = resources["nodes"]
        assert (nodes.singular_name, nodes.kind, nodes.namespaced) == ("node", "Node", False)
        assert nodes.short_names == ["no"]
        assert set(nodes.verbs) == {"create", "delete", "get", "list", "patch", "update", "watch"}
        pods = resources["pods"]
        assert (pods.namespaced, pods.categories, pods.short_names) == (True, ["all"], ["po"])
        assert resources["namespaces"].short_names == ["ns"]
        status = resources["nodes/status"]
        assert (status.kind, status.singular_name, set(status.verbs)) == (
            "Node", "", {"get", "patch", "update"},
        )  # fmt: skip

    def test_apis_has_no_groups(self, server: FakeKubeAPIServer, api: Any) -> None:
        assert client.ApisApi(api).get_api_versions().groups == []


class TestAggregatedDiscovery:
    def test_api_answers_with_the_aggregated_document_kubectl_asks_for_first(
        self, server: FakeKubeAPIServer
    ) -> None:
        code, ctype, doc = raw(server, "GET", "/api", accept=KUBECTL_ACCEPT)
        assert code == 200
        assert ctype == AGGREGATED_V2
        assert (doc["kind"], doc["apiVersion"]) == (
            "APIGroupDiscoveryList", "apidiscovery.k8s.io/v2",
        )  # fmt: skip
        (core,) = doc["items"]
        (version,) = core["versions"]
        assert (version["version"], version["freshness"]) == ("v1", "Current")
        resources = by_name(version["resources"], "resource")
        nodes = resources["nodes"]
        assert nodes["scope"] == "Cluster" and nodes["singularResource"] == "node"
        assert nodes["responseKind"] == {"group": "", "version": "v1", "kind": "Node"}
        assert nodes["subresources"][0]["subresource"] == "status"
        assert resources["pods"]["scope"] == "Namespaced"
        assert "subresources" not in resources["events"]

    def test_v2beta1_and_the_groups_document(self, server: FakeKubeAPIServer) -> None:
        code, ctype, doc = raw(server, "GET", "/apis", accept=AGGREGATED_V2BETA1)
        assert (code, ctype) == (200, AGGREGATED_V2BETA1)
        assert doc["items"] == []

    def test_clients_that_prefer_plain_json_get_the_legacy_documents(
        self, server: FakeKubeAPIServer
    ) -> None:
        accept = f"application/json,{AGGREGATED_V2}"
        code, ctype, doc = raw(server, "GET", "/api", accept=accept)
        assert (code, ctype, doc["kind"]) == (200, "application/json", "APIVersions")
        code, _, doc = raw(server, "GET", "/apis", accept="application/json;q=0.9")
        assert doc["kind"] == "APIGroupList"
