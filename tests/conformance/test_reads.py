"""Get and list: what the SDK reads back after writes through the stub."""

from __future__ import annotations

import pytest

from nvinformers.clientset import Clientset
from nvinformers.errors import BadRequestError, NotFoundError
from nvinformers.options import GetOptions, ListOptions
from tests.conformance.support import Writer, ready_status, rv


def gpus(clientset: Clientset):  # type: ignore[no-untyped-def]
    return clientset.device_v1alpha1().gpus()


def test_get_returns_what_was_written(clientset: Clientset, writer: Writer) -> None:
    written = writer.create("a", labels={"tier": "gold"}, uuid="GPU-0a", status=ready_status(True))
    got = gpus(clientset).get(written.object_meta.name)
    meta = got.metadata
    assert got.kind == "GPU" and got.api_version == "device.nvidia.com/v1alpha1"
    assert meta.name == written.object_meta.name
    assert meta.resource_version == written.object_meta.resource_version
    assert meta.uid == written.object_meta.uid != ""
    assert meta.labels["tier"] == "gold"
    assert got.spec.uuid == "GPU-0a"
    assert [(c.type, c.status, c.reason) for c in got.status.conditions] == [
        ("Ready", "True", "Conformance")
    ]


def test_get_of_a_missing_name_is_404_not_found(clientset: Clientset, writer: Writer) -> None:
    name = writer.name("missing")
    with pytest.raises(
        NotFoundError, match=rf'gpus\.device\.nvidia\.com "{name}" not found'
    ) as err:
        gpus(clientset).get(name)
    assert err.value.code == 404 and err.value.grpc_code == "NOT_FOUND"


def test_get_with_a_resource_version_reads_at_least_that_fresh(
    clientset: Clientset, writer: Writer
) -> None:
    first = writer.create("a")
    latest = writer.set_labels(first.object_meta.name, tier="gold")
    got = gpus(clientset).get(
        first.object_meta.name, GetOptions(resource_version=first.object_meta.resource_version)
    )
    assert rv(got) >= rv(first)
    assert rv(got) <= rv(latest)


def test_list_is_a_snapshot_carrying_its_revision(clientset: Clientset, writer: Writer) -> None:
    a = writer.create("a")
    b = writer.create("b")
    listed = gpus(clientset).list(ListOptions(label_selector=writer.selector))
    by_name = {g.metadata.name: g for g in listed.items}
    assert set(by_name) == {a.object_meta.name, b.object_meta.name}
    assert rv(by_name[a.object_meta.name]) == rv(a)
    list_rv = int(listed.metadata.resource_version)
    assert list_rv >= max(rv(a), rv(b))
    after = writer.set_labels(a.object_meta.name, tier="silver")
    assert rv(after) > list_rv


def test_revisions_are_global_and_increase_with_every_write(writer: Writer) -> None:
    a = writer.create("a")
    b = writer.create("b")
    a2 = writer.set_labels(a.object_meta.name, tier="gold")
    b2 = writer.set_ready(b.object_meta.name, True)
    revisions = [rv(a), rv(b), rv(a2), rv(b2)]
    assert revisions == sorted(revisions) and len(set(revisions)) == 4


@pytest.mark.parametrize("resource_version", ["", "0"])
def test_list_at_any_revision_returns_the_objects(
    clientset: Clientset, writer: Writer, resource_version: str
) -> None:
    a = writer.create("a")
    listed = gpus(clientset).list(
        ListOptions(label_selector=writer.selector, resource_version=resource_version)
    )
    assert [g.metadata.name for g in listed.items] == [a.object_meta.name]


LABELS = {
    "a": {"tier": "gold", "rack": "r1"},
    "b": {"tier": "silver", "rack": "r1"},
    "c": {"tier": "bronze"},
    "d": {"rack": "r2", "drained": "true"},
}
SELECTORS = [
    ("tier=gold", {"a"}),
    ("tier==gold", {"a"}),
    ("tier!=gold", {"b", "c", "d"}),
    ("tier in (gold,silver)", {"a", "b"}),
    ("tier notin (gold,silver)", {"c", "d"}),
    ("rack", {"a", "b", "d"}),
    ("!rack", {"c"}),
    ("rack=r1,tier!=silver", {"a"}),
    ("!drained,rack", {"a", "b"}),
]


def test_list_label_selectors(clientset: Clientset, writer: Writer) -> None:
    for suffix, labels in LABELS.items():
        writer.create(suffix, labels=labels)
    client = gpus(clientset)
    for selector, expected in SELECTORS:
        listed = client.list(ListOptions(label_selector=f"{writer.selector},{selector}"))
        got = {g.metadata.name.rsplit("-", 1)[-1] for g in listed.items}
        assert got == expected, selector


@pytest.mark.parametrize("selector", ["tier in (gold", "tier=gold,,", "=gold", "a b"])
def test_list_with_a_bad_label_selector_is_400_bad_request(
    clientset: Clientset, selector: str
) -> None:
    with pytest.raises(BadRequestError) as err:
        gpus(clientset).list(ListOptions(label_selector=selector))
    assert err.value.code == 400 and err.value.grpc_code == "INVALID_ARGUMENT"


def test_list_with_an_unparsable_resource_version_is_400_bad_request(clientset: Clientset) -> None:
    with pytest.raises(BadRequestError) as err:
        gpus(clientset).list(ListOptions(resource_version="not-a-revision"))
    assert err.value.grpc_code == "INVALID_ARGUMENT"
