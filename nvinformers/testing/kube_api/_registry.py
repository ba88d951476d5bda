"""The verbs of the fake Kubernetes API server over its store: what get, create, update (PUT and
PATCH), delete and selectors mean, shared by the HTTP handlers and the Python object API.

Like the API server's registry: it keys objects by scope, enforces the write rules of
:mod:`.objects` (server-set metadata, the status subresource, preconditions, no-op writes),
admits creates only into existing namespaces, deletes a namespace with its objects, and retries
an update computed from a stale read (``GuaranteedUpdate``), so callers' code (a test's
``mutate``, a patch) runs outside the store's lock.

Thread-safety: every method is thread-safe (the tracker serializes writes).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import re
from collections.abc import Callable
from typing import Any, Final

from nvinformers import labels
from nvinformers.testing.kube_api._errors import (
    FakeKubeAPIError,
    already_exists,
    bad_request,
    conflict,
    not_found,
)
from nvinformers.testing.kube_api._objects import (
    Record,
    encode,
    keep_server_fields,
    prepare_create,
    split_status,
)
from nvinformers.testing.kube_api._resources import Resource
from nvinformers.testing.tracker import (
    Key,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectTracker,
    StaleRevisionError,
)

__all__ = ["Registry", "Matcher", "Change"]

# The API server refuses to delete these.
_UNDELETABLE: Final = frozenset({"default", "kube-system", "kube-public"})
_FIELD_TERM: Final = re.compile(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)")

#: A compiled label and field selector.
Matcher = Callable[[Record], bool]
#: How a write changes an object: a new dict from a fresh copy of the stored one.
Change = Callable[[dict[str, Any]], dict[str, Any]]


class Registry:
    """The verbs over one :class:`~nvinformers.testing.tracker.ObjectTracker` of
    :class:`~.objects.Record`."""

    def __init__(self, tracker: ObjectTracker[Record]) -> None:
        self.tracker = tracker

    @staticmethod
    def key(res: Resource, namespace: str, name: str) -> Key:
        if res.namespaced and not namespace:
            raise bad_request(f"{res.plural} are namespaced: a namespace is required")
        return (res.plural, namespace if res.namespaced else "", name)

    def get(self, res: Resource, namespace: str, name: str) -> Record:
        try:
            return self.tracker.get(self.key(res, namespace, name))
        except ObjectNotFoundError:
            raise not_found(res.plural, name) from None

    def create(self, res: Resource, namespace: str, obj: Any, *, admit: bool) -> Record:
        namespace, name, prepared = prepare_create(res, namespace, obj)
        if admit and res.namespaced:
            # NamespaceLifecycle admission: no objects in a namespace that does not exist.
            try:
                self.tracker.get(("namespaces", "", namespace))
            except ObjectNotFoundError:
                raise not_found("namespaces", namespace) from None
        key = self.key(res, namespace, name)
        try:
            return self.tracker.create(key, lambda rev: encode(res, namespace, prepared, rev))
        except ObjectExistsError:
            raise already_exists(res.plural, name) from None

    def update(
        self, res: Resource, namespace: str, name: str, subresource: str | None, change: Change
    ) -> Record:
        """GuaranteedUpdate: read, compute the new state outside the lock, write if the object
        is still the one read, else retry on the newer one.

        ``subresource``: None applies ``change`` as is (the test API); ``""`` and ``"status"``
        apply the status subresource rule. A ``metadata.resourceVersion`` in the changed object
        that differs from the stored one is a precondition: 409 StaleRevisionError.
        """
        key = self.key(res, namespace, name)
        while True:
            current = self.get(res, namespace, name)
            before = current.body()
            desired = change(current.body())
            if not isinstance(desired, dict) or not isinstance(desired.get("metadata"), dict):
                raise bad_request("the object must be a JSON object with metadata")
            wanted = str(desired["metadata"].get("resourceVersion") or "")
            if wanted and wanted != str(current.revision):
                raise conflict(res.plural, name)
            if subresource is not None:
                desired = split_status(current.body(), desired, status=subresource == "status")
            keep_server_fields(name, key[1], before, desired)
            if desired == before:
                return current  # a write that changes nothing writes nothing
            try:
                return self.tracker.update(
                    key, functools.partial(encode, res, key[1], desired), revision=current.revision
                )
            except StaleRevisionError:
                continue  # written in between: compute again from the newer object
            except ObjectNotFoundError:
                raise not_found(res.plural, name) from None

    def delete(self, res: Resource, namespace: str, name: str) -> Record:
        key = self.key(res, namespace, name)
        if res.plural == "namespaces":
            if name in _UNDELETABLE:
                raise FakeKubeAPIError(
                    403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not '
                    "be deleted", name=name, kind="namespaces",
                )  # fmt: skip
            self.get(res, "", name)
            # The namespace controller's work, done at once: its objects go first.
            for plural in ("pods", "events"):
                for child in self.tracker.keys(plural):
                    if child[1] == name:
                        with contextlib.suppress(ObjectNotFoundError):
                            self.tracker.delete(child)
        try:
            return self.tracker.delete(key)
        except ObjectNotFoundError:
            raise not_found(res.plural, name) from None

    def matcher(self, res: Resource, label_selector: str, field_selector: str) -> Matcher | None:
        try:
            selector = labels.parse(label_selector) if label_selector else None
        except ValueError as exc:
            raise bad_request(f"unable to parse requirement: {exc}") from exc
        wanted: builtins.list[tuple[str, str, bool]] = []
        for term in filter(None, (t.strip() for t in field_selector.split(","))):
            match = _FIELD_TERM.fullmatch(term)
            if match is None:
                raise bad_request(f"invalid field selector: {term!r}")
            field, op, value = match.groups()
            if field not in res.fields:
                raise bad_request(f'field label not supported: "{field}"')
            wanted.append((field, value, op != "!="))
        if selector is None and not wanted:
            return None
        matches = selector.matches if selector is not None else None

        def filt(record: Record) -> bool:
            if matches is not None and not matches(record.labels):
                return False
            fields = record.fields
            return all((fields.get(f, "") == v) is eq for f, v, eq in wanted)

        return filt

    def list(
        self, res: Resource, namespace: str, label_selector: str, field_selector: str
    ) -> tuple[builtins.list[Record], int]:
        """The matching objects, sorted by key, and the revision they were read at."""
        matches = self.matcher(res, label_selector, field_selector)
        return self.tracker.list(res.plural, namespace, matches)
