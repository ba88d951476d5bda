"""Predicates: which events reach a handler (controller-runtime's ``predicate``).

A predicate has three methods, one per event kind, each returning True to let the event through::

    class Predicate(Protocol):
        def create(self, event: CreateEvent) -> bool: ...
        def update(self, event: UpdateEvent) -> bool: ...
        def delete(self, event: DeleteEvent) -> bool: ...

``Controller.watch(informer, predicates=[...])`` passes an event on only when *every* predicate
accepts it. The built-ins are controller-runtime's, in snake_case:

=========================================  ====================================================
predicate                                  lets through
=========================================  ====================================================
:func:`resource_version_changed_predicate`  updates that change the resource version: drops
                                           resyncs (and the same-revision repeats a relist or
                                           an ADDED burst can produce)
:func:`generation_changed_predicate`       updates that change ``metadata.generation`` (spec
                                           changes; misses status-only and label changes)
:func:`label_changed_predicate`            updates that change the labels
:func:`annotation_changed_predicate`       updates that change the annotations
:func:`label_selector_predicate`           objects whose labels match a selector
:func:`new_predicate_funcs`                objects a filter function accepts
:class:`Funcs`                             what its optional ``create``/``update``/``delete``
                                           functions accept (a missing one accepts everything)
:func:`and_` / :func:`or_` / :func:`not_`  combinations
=========================================  ====================================================

The ``*_changed`` predicates filter updates only; creates and deletes always pass.

Deletes whose final state is unknown: a delete noticed only by a relist may come without any
last known object (:attr:`DeleteEvent.object` is None). The object-inspecting built-ins
(:func:`label_selector_predicate`, :func:`new_predicate_funcs`) let such an event through without
calling the filter: the controller cannot tell whether it matched, and a level-based reconciler
that finds the object gone is the safe side. A :class:`Funcs` ``delete`` function receives the
event and decides for itself.

Predicates run on the informer's handler thread for every event: keep them pure and fast, and
never mutate the objects (they are shared with the cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from nvinformers import labels
from nvinformers.controller._event import CreateEvent, DeleteEvent, UpdateEvent

__all__ = [
    "Predicate",
    "Funcs",
    "new_predicate_funcs",
    "resource_version_changed_predicate",
    "generation_changed_predicate",
    "label_changed_predicate",
    "annotation_changed_predicate",
    "label_selector_predicate",
    "and_",
    "or_",
    "not_",
    "check_predicate",
    "check_predicates",
]


@runtime_checkable
class Predicate(Protocol):
    """Filters events before they reach an event handler (see the module docstring)."""

    def create(self, event: CreateEvent[Any]) -> bool:
        """Return True to handle a create event."""
        ...

    def update(self, event: UpdateEvent[Any]) -> bool:
        """Return True to handle an update event."""
        ...

    def delete(self, event: DeleteEvent[Any]) -> bool:
        """Return True to handle a delete event."""
        ...


class Funcs:
    """A predicate made of optional functions (controller-runtime ``predicate.Funcs``).

    A missing function accepts every event of its kind.

    Args:
        create: decides create events.
        update: decides update events.
        delete: decides delete events.
        name: shown by ``repr`` (for logs and debugging).
    """

    __slots__ = ("_create", "_delete", "_name", "_update")

    def __init__(
        self,
        *,
        create: Callable[[CreateEvent[Any]], bool] | None = None,
        update: Callable[[UpdateEvent[Any]], bool] | None = None,
        delete: Callable[[DeleteEvent[Any]], bool] | None = None,
        name: str = "",
    ) -> None:
        self._create = create
        self._update = update
        self._delete = delete
        self._name = name

    def create(self, event: CreateEvent[Any]) -> bool:
        return True if self._create is None else bool(self._create(event))

    def update(self, event: UpdateEvent[Any]) -> bool:
        return True if self._update is None else bool(self._update(event))

    def delete(self, event: DeleteEvent[Any]) -> bool:
        return True if self._delete is None else bool(self._delete(event))

    def __repr__(self) -> str:
        if self._name:
            return self._name if self._name.endswith(")") else f"{self._name}()"
        kinds = [k for k in ("create", "update", "delete") if getattr(self, f"_{k}") is not None]
        return f"Funcs({', '.join(kinds)})"


def new_predicate_funcs(filter_func: Callable[[Any], bool]) -> Funcs:
    """A predicate that applies ``filter_func`` to the object of every event.

    controller-runtime ``NewPredicateFuncs``: creates and deletes test the object, updates test
    the new state. A delete without any known object passes without calling ``filter_func``
    (see the module docstring).

    Args:
        filter_func: ``obj -> bool``; must be pure and must not mutate ``obj``.
    """

    return _filter_funcs(
        filter_func, f"new_predicate_funcs({getattr(filter_func, '__name__', 'filter')})"
    )


def _filter_funcs(filter_func: Callable[[Any], bool], name: str) -> Funcs:
    def on_delete(event: DeleteEvent[Any]) -> bool:
        return True if event.object is None else bool(filter_func(event.object))

    return Funcs(
        create=lambda event: bool(filter_func(event.object)),
        update=lambda event: bool(filter_func(event.object_new)),
        delete=on_delete,
        name=name,
    )


def _metadata(obj: Any) -> Any:
    return getattr(obj, "metadata", None)


def _as_dict(mapping: Mapping[str, str] | None) -> dict[str, str]:
    # None (Kubernetes client models) and an empty map mean the same: no labels. Go's
    # reflect.DeepEqual tells a nil map from an empty one; nothing is gained by copying that.
    return dict(mapping) if mapping else {}


def _changed(field: Callable[[Any], object]) -> Callable[[UpdateEvent[Any]], bool]:
    """An update filter: ``field`` of the metadata differs between the old and the new state."""

    def update(event: UpdateEvent[Any]) -> bool:
        old, new = _metadata(event.object_old), _metadata(event.object_new)
        # controller-runtime: an update without old or new object is dropped.
        return old is not None and new is not None and field(old) != field(new)

    return update


_resource_version_changed = _changed(lambda m: m.resource_version)
_generation_changed = _changed(lambda m: getattr(m, "generation", None))
_labels_changed = _changed(lambda m: _as_dict(getattr(m, "labels", None)))
_annotations_changed = _changed(lambda m: _as_dict(getattr(m, "annotations", None)))


def resource_version_changed_predicate() -> Funcs:
    """Pass updates whose resource version changed: drops resyncs (controller-runtime
    ``ResourceVersionChangedPredicate``). Creates and deletes pass."""
    return Funcs(update=_resource_version_changed, name="resource_version_changed_predicate")


def generation_changed_predicate() -> Funcs:
    """Pass updates whose ``metadata.generation`` changed (``GenerationChangedPredicate``).

    The server bumps the generation on spec changes only, so this drops status-only updates,
    label and annotation changes and resyncs. Creates and deletes pass.
    """
    return Funcs(update=_generation_changed, name="generation_changed_predicate")


def label_changed_predicate() -> Funcs:
    """Pass updates whose labels changed (``LabelChangedPredicate``). Creates and deletes pass."""
    return Funcs(update=_labels_changed, name="label_changed_predicate")


def annotation_changed_predicate() -> Funcs:
    """Pass updates whose annotations changed (``AnnotationChangedPredicate``). Creates and
    deletes pass."""
    return Funcs(update=_annotations_changed, name="annotation_changed_predicate")


def label_selector_predicate(selector: labels.Selector | str) -> Funcs:
    """Pass events whose object's labels match ``selector`` (``LabelSelectorPredicate``).

    Updates test the new state only (so an object whose labels stop matching is not reported;
    combine with :func:`label_changed_predicate` through :func:`or_` to see it leave).

    Args:
        selector: a :class:`nvinformers.labels.Selector` or its text form (``"rack=a,!spare"``).

    Raises:
        nvinformers.labels.SelectorParseError: ``selector`` is text that does not parse.
        TypeError: ``selector`` is neither.
    """
    if isinstance(selector, str):
        selector = labels.parse(selector)
    elif not isinstance(selector, labels.Selector):
        raise TypeError(
            f"label_selector_predicate: expected a labels.Selector or a selector string, "
            f"got {type(selector).__name__}"
        )
    matches = selector.matches

    def match(obj: Any) -> bool:
        metadata = _metadata(obj)
        return matches(None if metadata is None else getattr(metadata, "labels", None))

    return _filter_funcs(match, f"label_selector_predicate({str(selector)!r})")


def and_(*predicates: Predicate) -> Predicate:
    """Pass an event only when every predicate passes it (none given: pass everything).

    Evaluation stops at the first predicate that rejects the event.

    Raises:
        TypeError: an argument is not a predicate.
    """
    return _combine(all, "and_", predicates)


def or_(*predicates: Predicate) -> Predicate:
    """Pass an event when at least one predicate passes it (none given: pass nothing).

    Evaluation stops at the first predicate that passes the event.

    Raises:
        TypeError: an argument is not a predicate.
    """
    return _combine(any, "or_", predicates)


def not_(predicate: Predicate) -> Predicate:
    """Pass exactly the events ``predicate`` rejects.

    Raises:
        TypeError: the argument is not a predicate.
    """
    p = check_predicate(predicate)
    return Funcs(
        create=lambda e: not p.create(e),
        update=lambda e: not p.update(e),
        delete=lambda e: not p.delete(e),
        name=f"not_({p!r})",
    )


def _combine(
    test: Callable[[Iterable[bool]], bool], name: str, predicates: Iterable[Predicate]
) -> Funcs:
    ps = tuple(check_predicate(p) for p in predicates)
    return Funcs(
        create=lambda e: test(p.create(e) for p in ps),
        update=lambda e: test(p.update(e) for p in ps),
        delete=lambda e: test(p.delete(e) for p in ps),
        name=f"{name}({', '.join(map(repr, ps))})",
    )


def check_predicate(predicate: object) -> Predicate:
    """Return ``predicate`` if it has callable ``create``, ``update`` and ``delete`` methods.

    Raises:
        TypeError: it does not; the message hints at the usual mistake of passing a predicate
            factory such as :func:`resource_version_changed_predicate` without calling it.
    """
    if isinstance(predicate, Predicate) and all(
        callable(getattr(predicate, m, None)) for m in ("create", "update", "delete")
    ):
        return predicate
    hint = ""
    if callable(predicate):
        name = getattr(predicate, "__name__", repr(predicate))
        hint = f" (did you mean {name}()?)"
    raise TypeError(
        f"{predicate!r} is not a predicate: it needs create(event), update(event) and "
        f"delete(event) methods{hint}"
    )


def check_predicates(predicates: Iterable[object]) -> tuple[Predicate, ...]:
    """Validate every predicate with :func:`check_predicate`; return them as a tuple.

    Raises:
        TypeError: an element is not a predicate, or ``predicates`` is a single predicate rather
            than an iterable of them.
    """
    if isinstance(predicates, Predicate):
        raise TypeError(
            f"predicates must be an iterable of predicates, got a single {predicates!r}: "
            "wrap it in a list"
        )
    return tuple(check_predicate(p) for p in predicates)
