"""The fake clientset: tracker revisions, list/get/watch semantics, replay, actions, reactors."""

from __future__ import annotations

import threading

import pytest

from nvinformers import errors
from nvinformers.api.device.v1alpha1 import GPU, GPUList
from nvinformers.clientset.fake import Action, FakeClientset
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION, GetOptions, ListOptions
from nvinformers.watch import Event

WAIT = 10.0


def gpu(name: str, rv: str = "", **labels: str) -> GPU:
    return GPU.new(name, uuid=f"GPU-{name}", resource_version=rv, labels=labels or None)


def summary(events: list[Event[GPU]]) -> list[tuple[str, str, str]]:
    return [
        (e.type.value, e.object.metadata.name, e.object.metadata.resource_version) for e in events
    ]


def take(watch: object, n: int) -> list[Event[GPU]]:
    iterator = iter(watch)  # type: ignore[call-overload]
    return [next(iterator) for _ in range(n)]


def test_initial_objects_get_revisions_and_given_ones_are_replaced() -> None:
    cs = FakeClientset(gpu("gpu-0", rv="100"), gpu("gpu-1"))
    gpus = cs.device_v1alpha1().gpus()
    assert gpus.get("gpu-0").metadata.resource_version == "1"
    assert gpus.get("gpu-1").metadata.resource_version == "2"
    lst = gpus.list()
    assert isinstance(lst, GPUList)
    assert [g.metadata.name for g in lst.items] == ["gpu-0", "gpu-1"]
    assert lst.metadata.resource_version == "2"


def test_tracker_writes_bump_the_revision() -> None:
    cs = FakeClientset()
    tracker = cs.tracker
    assert tracker.resource_version == "0"
    assert tracker.add(gpu("gpu-0")).metadata.resource_version == "1"
    updated = tracker.update(gpu("gpu-0", rack="b"))
    assert updated.metadata.resource_version == "2"
    assert tracker.get("gpu-0") == updated
    deleted = tracker.delete("gpu-0")
    assert deleted.metadata.resource_version == "3"
    assert deleted.metadata.labels == {"rack": "b"}
    assert tracker.list().items == ()
    assert tracker.list().metadata.resource_version == "3"


def test_tracker_errors() -> None:
    cs = FakeClientset(gpu("gpu-0"))
    with pytest.raises(errors.AlreadyExistsError, match='"gpu-0" already exists'):
        cs.tracker.add(gpu("gpu-0"))
    with pytest.raises(errors.NotFoundError, match=r'gpus\.device\.nvidia\.com "gpu-9" not found'):
        cs.tracker.update(gpu("gpu-9"))
    with pytest.raises(errors.NotFoundError):
        cs.tracker.delete("gpu-9")
    with pytest.raises(errors.NotFoundError):
        cs.device_v1alpha1().gpus().get("gpu-9")
    with pytest.raises(ValueError, match=r"needs metadata.name"):
        cs.tracker.add(gpu(""))
    with pytest.raises(ValueError, match="stores GPUs"):
        cs.tracker.add("gpu-0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        cs.device_v1alpha1().gpus().get("")


def test_list_honours_label_selectors() -> None:
    cs = FakeClientset(gpu("gpu-0", rack="a"), gpu("gpu-1", rack="b"), gpu("gpu-2"))
    gpus = cs.device_v1alpha1().gpus()

    def names(selector: str) -> list[str]:
        return [g.metadata.name for g in gpus.list(ListOptions(label_selector=selector)).items]

    assert names("rack=a") == ["gpu-0"]
    assert names("rack!=a") == ["gpu-1", "gpu-2"]
    assert names("rack") == ["gpu-0", "gpu-1"]
    assert names("!rack") == ["gpu-2"]
    with pytest.raises(errors.BadRequestError):
        gpus.list(ListOptions(label_selector="rack in (a"))


def test_watch_from_zero_sends_added_for_current_objects_then_live_events() -> None:
    cs = FakeClientset(gpu("gpu-0"), gpu("gpu-1"))
    with cs.device_v1alpha1().gpus().watch(ListOptions(resource_version="0")) as watch:
        assert summary(take(watch, 2)) == [("ADDED", "gpu-0", "1"), ("ADDED", "gpu-1", "2")]
        cs.tracker.update(gpu("gpu-1", rack="x"))
        cs.tracker.add(gpu("gpu-2"))
        cs.tracker.delete("gpu-0")
        assert summary(take(watch, 3)) == [
            ("MODIFIED", "gpu-1", "3"),
            ("ADDED", "gpu-2", "4"),
            ("DELETED", "gpu-0", "5"),
        ]
        assert watch.resource_version == "5"  # type: ignore[attr-defined]


def test_watch_from_a_revision_replays_the_writes_made_after_the_list() -> None:
    # client-go's fake loses these: writes between an informer's LIST and its WATCH.
    cs = FakeClientset(gpu("gpu-0"))
    gpus = cs.device_v1alpha1().gpus()
    listed = gpus.list()
    cs.tracker.update(gpu("gpu-0", rack="a"))
    cs.tracker.add(gpu("gpu-1"))
    with gpus.watch(ListOptions(resource_version=listed.metadata.resource_version)) as watch:
        assert summary(take(watch, 2)) == [("MODIFIED", "gpu-0", "2"), ("ADDED", "gpu-1", "3")]
        cs.tracker.delete("gpu-1")
        assert summary(take(watch, 1)) == [("DELETED", "gpu-1", "4")]


def test_watch_with_a_selector_sees_objects_enter_and_leave_the_selection() -> None:
    cs = FakeClientset(gpu("gpu-0", rack="a"), gpu("gpu-1", rack="b"))
    opts = ListOptions(resource_version="2", label_selector="rack=a")
    with cs.device_v1alpha1().gpus().watch(opts) as watch:
        cs.tracker.update(gpu("gpu-1", rack="a"))  # enters: ADDED
        cs.tracker.update(gpu("gpu-0", rack="b"))  # leaves: DELETED (last visible state)
        cs.tracker.update(gpu("gpu-0", rack="c"))  # outside: nothing
        cs.tracker.update(gpu("gpu-1", rack="a", zone="z"))  # inside: MODIFIED
        events = take(watch, 3)
    assert summary(events) == [
        ("ADDED", "gpu-1", "3"),
        ("DELETED", "gpu-0", "4"),
        ("MODIFIED", "gpu-1", "6"),
    ]
    assert events[1].object.metadata.labels == {"rack": "a"}


def test_streaming_list_ends_initial_events_with_an_annotated_bookmark() -> None:
    cs = FakeClientset(gpu("gpu-0"), gpu("gpu-1"))
    opts = ListOptions(
        send_initial_events=True,
        allow_watch_bookmarks=True,
        resource_version_match="NotOlderThan",
    )
    with cs.device_v1alpha1().gpus().watch(opts) as watch:
        events = take(watch, 3)
    assert summary(events) == [
        ("ADDED", "gpu-0", "1"),
        ("ADDED", "gpu-1", "2"),
        ("BOOKMARK", "", "2"),
    ]
    assert events[2].object.metadata.annotations[INITIAL_EVENTS_END_ANNOTATION] == "true"


def test_bookmarks_only_for_watches_that_asked() -> None:
    cs = FakeClientset(gpu("gpu-0"))
    gpus = cs.device_v1alpha1().gpus()
    with (
        gpus.watch(ListOptions(resource_version="1", allow_watch_bookmarks=True)) as asked,
        gpus.watch(ListOptions(resource_version="1")) as plain,
    ):
        assert cs.tracker.send_bookmarks() == 1
        cs.tracker.add(gpu("gpu-1"))
        assert summary(take(asked, 2)) == [("BOOKMARK", "", "1"), ("ADDED", "gpu-1", "2")]
        assert summary(take(plain, 1)) == [("ADDED", "gpu-1", "2")]


def test_watch_errors_arrive_on_the_first_next() -> None:
    cs = FakeClientset(*(gpu(f"gpu-{i}") for i in range(5)), history_limit=2)
    gpus = cs.device_v1alpha1().gpus()
    with pytest.raises(errors.ExpiredError, match="too old resource version"):
        next(iter(gpus.watch(ListOptions(resource_version="1"))))
    assert summary(take(gpus.watch(ListOptions(resource_version="3")), 2)) == [
        ("ADDED", "gpu-3", "4"),
        ("ADDED", "gpu-4", "5"),
    ]
    with pytest.raises(errors.BadRequestError, match="invalid resource version"):
        next(iter(gpus.watch(ListOptions(resource_version="abc"))))
    with pytest.raises(errors.BadRequestError):
        next(iter(gpus.watch(ListOptions(resource_version="0", label_selector="=="))))
    cs.tracker.compact()
    with pytest.raises(errors.ExpiredError):
        next(iter(gpus.watch(ListOptions(resource_version="4"))))


def test_close_watches_ends_cleanly_after_queued_events_or_with_an_error() -> None:
    cs = FakeClientset()
    gpus = cs.device_v1alpha1().gpus()
    clean = gpus.watch(ListOptions(resource_version="0"))
    cs.tracker.add(gpu("gpu-0"))
    assert cs.tracker.close_watches() == 1
    assert summary(list(clean)) == [("ADDED", "gpu-0", "1")]
    failing = gpus.watch(ListOptions(resource_version="1"))
    cs.tracker.close_watches(errors.ServiceUnavailableError("server went away"))
    with pytest.raises(errors.ServiceUnavailableError):
        next(iter(failing))
    assert next(iter(failing), None) is None
    assert cs.tracker.open_watches == 0


def test_timeout_seconds_ends_the_watch_cleanly() -> None:
    cs = FakeClientset(gpu("gpu-0"))
    watch = cs.device_v1alpha1().gpus().watch(ListOptions(resource_version="1", timeout_seconds=0))
    assert list(watch) == []


def test_stop_from_another_thread_ends_a_blocked_next() -> None:
    cs = FakeClientset()
    watch = cs.device_v1alpha1().gpus().watch(ListOptions(resource_version="0"))
    ended = threading.Event()
    results: list[object] = []

    def consume() -> None:
        results.extend(watch)
        ended.set()

    thread = threading.Thread(target=consume, name="test-fake-watch-consumer")
    thread.start()
    watch.stop()
    watch.stop()
    assert ended.wait(WAIT)
    thread.join(WAIT)
    assert results == []
    assert cs.tracker.open_watches == 0


def test_actions_are_recorded() -> None:
    cs = FakeClientset(gpu("gpu-0"))
    gpus = cs.device_v1alpha1().gpus()
    gpus.get("gpu-0", GetOptions(resource_version="1"))
    gpus.list(ListOptions(label_selector="a=b"))
    gpus.watch(ListOptions(resource_version="1")).stop()
    with pytest.raises(errors.MethodNotSupportedError, match="read-only"):
        gpus.create(gpu("gpu-1"))
    with pytest.raises(errors.MethodNotSupportedError):
        gpus.delete("gpu-0")
    assert cs.actions() == [
        Action(verb="get", name="gpu-0", options=GetOptions(resource_version="1")),
        Action(verb="list", options=ListOptions(label_selector="a=b")),
        Action(verb="watch", options=ListOptions(resource_version="1")),
        Action(verb="create"),
        Action(verb="delete"),
    ]
    cs.clear_actions()
    assert cs.actions() == []


def test_reactors_run_before_the_tracker() -> None:
    cs = FakeClientset(gpu("gpu-0"))
    gpus = cs.device_v1alpha1().gpus()
    failures = iter([True, False])

    def flaky_list(action: Action) -> tuple[bool, object]:
        if next(failures):
            raise errors.ServiceUnavailableError("injected")
        return False, None

    cs.prepend_reactor("list", flaky_list)
    with pytest.raises(errors.ServiceUnavailableError, match="injected"):
        gpus.list()
    assert len(gpus.list().items) == 1  # declined: the tracker answers

    canned = gpu("gpu-x")
    cs.prepend_reactor("*", lambda action: (action.verb == "get", canned))
    assert gpus.get("gpu-0") is canned
    cs.prepend_reactor("get", lambda action: (True, "not a gpu"))
    with pytest.raises(TypeError, match="a get reaction must return a GPU"):
        gpus.get("gpu-0")


def test_concurrent_writers_and_a_watcher_lose_nothing() -> None:
    cs = FakeClientset()
    gpus = cs.device_v1alpha1().gpus()
    watch = gpus.watch(ListOptions(resource_version="0"))

    def writer(prefix: str) -> None:
        for i in range(50):
            cs.tracker.add(gpu(f"{prefix}-{i}"))

    threads = [threading.Thread(target=writer, args=(p,), name=f"test-writer-{p}") for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    events = take(watch, 200)
    watch.stop()
    revisions = [int(e.object.metadata.resource_version) for e in events]
    assert revisions == list(range(1, 201))  # every write, in revision order


def test_close_ends_open_watches() -> None:
    with FakeClientset(gpu("gpu-0")) as cs:
        watch = cs.device_v1alpha1().gpus().watch(ListOptions(resource_version="1"))
    assert cs.closed
    assert list(watch) == []
    assert cs.channel is None and cs.target == "fake"


def test_the_fake_satisfies_the_clientset_interface() -> None:
    from nvinformers.clientset import Interface

    fake: Interface = FakeClientset(gpu("gpu-0"))  # checked by mypy
    assert fake.device_v1alpha1().gpus().get("gpu-0").metadata.name == "gpu-0"
