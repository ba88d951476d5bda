"""Every predicate, on GPUs and on Kubernetes-style objects without labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.controller import CreateEvent, DeleteEvent, UpdateEvent, predicates
from nvinformers.controller.predicates import Predicate, check_predicate


def gpu(
    rv: str = "1",
    *,
    generation: int = 1,
    labels_: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> GPU:
    return GPU.new(
        "gpu-0",
        resource_version=rv,
        generation=generation,
        labels=labels_,
        annotations=annotations,
    )


@dataclass
class KubeMeta:
    """A Kubernetes client model's metadata: labels and annotations may be None."""

    name: str = "pod-0"
    namespace: str = "ns"
    resource_version: str = "1"
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


@dataclass
class KubeObject:
    metadata: KubeMeta = field(default_factory=KubeMeta)


def update(old: Any, new: Any) -> UpdateEvent[Any]:
    return UpdateEvent(old, new)


def verdicts(p: Predicate, obj: Any) -> tuple[bool, bool]:
    """(create, delete) verdicts for ``obj``."""
    return p.create(CreateEvent(obj)), p.delete(DeleteEvent(obj))


def test_resource_version_changed_drops_resyncs_only() -> None:
    p = predicates.resource_version_changed_predicate()
    obj = gpu("5")
    assert not p.update(update(obj, obj))  # a resync replays the same object
    assert not p.update(update(gpu("5"), gpu("5")))
    assert p.update(update(gpu("5"), gpu("6")))
    assert verdicts(p, obj) == (True, True)
    assert repr(p) == "resource_version_changed_predicate()"


def test_generation_changed_passes_spec_changes_only() -> None:
    p = predicates.generation_changed_predicate()
    assert not p.update(update(gpu("5", generation=2), gpu("6", generation=2)))
    assert p.update(update(gpu("5", generation=2), gpu("6", generation=3)))
    assert verdicts(p, gpu()) == (True, True)


def test_label_changed() -> None:
    p = predicates.label_changed_predicate()
    assert not p.update(update(gpu("5", labels_={"a": "1"}), gpu("6", labels_={"a": "1"})))
    assert p.update(update(gpu("5", labels_={"a": "1"}), gpu("6", labels_={"a": "2"})))
    assert p.update(update(gpu("5"), gpu("6", labels_={"a": "1"})))
    # A Kubernetes model's None labels equal an empty map.
    assert not p.update(update(KubeObject(KubeMeta(labels=None)), KubeObject(KubeMeta(labels={}))))
    assert verdicts(p, gpu()) == (True, True)


def test_annotation_changed() -> None:
    p = predicates.annotation_changed_predicate()
    assert not p.update(update(gpu("5", annotations={"x": "1"}), gpu("6", annotations={"x": "1"})))
    assert p.update(update(gpu("5", annotations={"x": "1"}), gpu("6", annotations={"x": "2"})))
    assert p.update(update(KubeObject(), KubeObject(KubeMeta(annotations={"x": "1"}))))
    assert verdicts(p, gpu()) == (True, True)


def test_changed_predicates_drop_updates_without_objects() -> None:
    for p in (
        predicates.resource_version_changed_predicate(),
        predicates.generation_changed_predicate(),
        predicates.label_changed_predicate(),
        predicates.annotation_changed_predicate(),
    ):
        assert not p.update(update(None, gpu()))


@pytest.mark.parametrize("selector", ["rack=a,!spare", labels.parse("rack=a,!spare")])
def test_label_selector_predicate(selector: str | labels.Selector) -> None:
    p = predicates.label_selector_predicate(selector)
    match, other = gpu(labels_={"rack": "a"}), gpu(labels_={"rack": "a", "spare": "1"})
    assert verdicts(p, match) == (True, True)
    assert verdicts(p, other) == (False, False)
    assert verdicts(p, gpu()) == (False, False)
    assert p.update(update(other, match))  # the new state decides
    assert not p.update(update(match, other))
    assert not p.create(CreateEvent(KubeObject()))  # labels None: no label, no match
    # A delete whose final state is unknown cannot be judged: it passes.
    assert p.delete(DeleteEvent(None, delete_state_unknown=True, tombstone_key="gpu-9"))
    assert repr(p) == f"label_selector_predicate({str(labels.parse('rack=a,!spare'))!r})"


def test_label_selector_predicate_rejects_bad_selectors() -> None:
    with pytest.raises(labels.SelectorParseError):
        predicates.label_selector_predicate("rack in (a")
    with pytest.raises(TypeError, match=r"expected a labels\.Selector"):
        predicates.label_selector_predicate({"rack": "a"})  # type: ignore[arg-type]


def test_new_predicate_funcs_filters_every_kind_by_object() -> None:
    seen: list[Any] = []

    def is_ready(obj: GPU) -> bool:
        seen.append(obj)
        return bool(obj.metadata.labels.get("ready") == "true")

    p = predicates.new_predicate_funcs(is_ready)
    ready, not_ready = gpu(labels_={"ready": "true"}), gpu()
    assert verdicts(p, ready) == (True, True)
    assert verdicts(p, not_ready) == (False, False)
    assert p.update(update(not_ready, ready))
    assert not p.update(update(ready, not_ready))
    seen.clear()
    assert p.delete(DeleteEvent(None, delete_state_unknown=True, tombstone_key="gpu-9"))
    assert seen == []  # the filter is not called without an object
    assert repr(p) == "new_predicate_funcs(is_ready)"


def test_funcs_default_to_accepting() -> None:
    p = predicates.Funcs(update=lambda e: e.object_old is not e.object_new)
    obj = gpu()
    assert verdicts(p, obj) == (True, True)
    assert not p.update(update(obj, obj))
    assert p.update(update(obj, gpu("2")))
    assert repr(p) == "Funcs(update)"
    deny = predicates.Funcs(create=lambda e: False, delete=lambda e: False)
    assert verdicts(deny, obj) == (False, False)
    assert deny.update(update(obj, obj))


def test_and_or_not() -> None:
    yes = predicates.Funcs()
    no = predicates.Funcs(
        create=lambda e: False, update=lambda e: False, delete=lambda e: False, name="no"
    )
    obj = gpu()
    ev_u = update(obj, obj)
    assert verdicts(predicates.and_(yes, yes), obj) == (True, True)
    assert verdicts(predicates.and_(yes, no), obj) == (False, False)
    assert not predicates.and_(yes, no).update(ev_u)
    assert verdicts(predicates.and_(), obj) == (True, True)
    assert verdicts(predicates.or_(no, yes), obj) == (True, True)
    assert verdicts(predicates.or_(no, no), obj) == (False, False)
    assert predicates.or_(no, yes).update(ev_u)
    assert verdicts(predicates.or_(), obj) == (False, False)
    assert verdicts(predicates.not_(no), obj) == (True, True)
    assert not predicates.not_(yes).update(ev_u)
    assert repr(predicates.and_(no, predicates.not_(no))) == "and_(no(), not_(no()))"


def test_combinators_short_circuit() -> None:
    calls: list[str] = []

    def recording(name: str, verdict: bool) -> predicates.Funcs:
        def decide(event: Any) -> bool:
            calls.append(name)
            return verdict

        return predicates.Funcs(create=decide)

    predicates.and_(recording("a", False), recording("b", True)).create(CreateEvent(gpu()))
    predicates.or_(recording("c", True), recording("d", True)).create(CreateEvent(gpu()))
    assert calls == ["a", "c"]


def test_predicate_checks_name_the_mistake() -> None:
    with pytest.raises(TypeError, match=r"did you mean label_changed_predicate\(\)\?"):
        check_predicate(predicates.label_changed_predicate)
    with pytest.raises(TypeError, match="needs create"):
        predicates.and_(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs create"):
        predicates.not_("rack=a")  # type: ignore[arg-type]
