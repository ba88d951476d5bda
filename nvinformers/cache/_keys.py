"""Object keys: how the cache names an object, and the tombstone a missed delete turns into.

Mirrors the key helpers of client-go ``tools/cache`` (``store.go``, ``controller.go``), each
documented below: :func:`meta_namespace_key_func`,
:func:`deletion_handling_meta_namespace_key_func`, :func:`cluster_scoped_key_func` (the name
alone, for GPUs: some servers stamp ``namespace: default`` on them) and
:func:`split_meta_namespace_key`.

A key function is any ``Callable[[Any], str]`` that is pure, fast and deterministic: the same
object must always produce the same key, or the store cannot find it again to update or delete it.

Objects are read through ``obj.metadata.name`` and ``obj.metadata.namespace``, so GPUs and
Kubernetes client models (``V1Pod`` and friends) work alike, or through the readers a class
registered with :func:`nvinformers.meta.register_header_accessors` (``GPU`` does: its
``metadata`` is a view built on every read, and the informer reads keys and revisions several
times per watch event).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nvinformers.errors import NvInformersError
from nvinformers.meta import header_accessors

__all__ = [
    "KeyFunc",
    "ExplicitKey",
    "KeyFuncError",
    "DeletedFinalStateUnknown",
    "meta_namespace_key_func",
    "deletion_handling_meta_namespace_key_func",
    "cluster_scoped_key_func",
    "split_meta_namespace_key",
    "resource_version_of",
]

T = TypeVar("T")

#: A function that computes the store key of an object (see the module docstring for the rules).
KeyFunc = Callable[[Any], str]


class ExplicitKey(str):
    """A key given directly: every key function in this module returns it unchanged.

    client-go ``cache.ExplicitKey``: lets a caller queue or delete by key when no object exists.
    """

    __slots__ = ()


class KeyFuncError(NvInformersError, ValueError):
    """An object's key cannot be computed: it has no ``metadata``, or an empty or non-string name.

    The message names the object's type and the problem, and hints at the tombstone-aware key
    function when the object is a :class:`DeletedFinalStateUnknown`.
    """


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown(Generic[T]):
    """A delete the informer noticed only on relist: the object vanished while disconnected.

    client-go ``cache.DeletedFinalStateUnknown``, with one change that removes a whole class of
    controller crashes: every delete a handler sees has a key, here or on the object itself, so a
    handler never has to guess the type to find out *what* was deleted::

        def on_delete(obj):
            key = deletion_handling_meta_namespace_key_func(obj)   # works for both forms

    Attributes:
        key: the store key the object was cached under.
        obj: the last state the cache knew, possibly stale (the object may have changed on the
            server before it was deleted), or None when that state is unknown.
    """

    key: str
    obj: T | None


def resource_version_of(obj: Any) -> Any:
    """``obj.metadata.resource_version``, or what the object's registered reader returns.

    Raises:
        AttributeError: ``obj`` has no ``metadata`` (or no resource version in it).
    """
    return header_accessors(type(obj)).resource_version(obj)


def _metadata_of(obj: Any) -> Any:
    metadata = getattr(obj, "metadata", None)
    if metadata is None:
        if isinstance(obj, DeletedFinalStateUnknown):
            raise KeyFuncError(
                f"cannot compute a key for DeletedFinalStateUnknown(key={obj.key!r}): use "
                "deletion_handling_meta_namespace_key_func, or read the tombstone's .key"
            )
        raise KeyFuncError(
            f"cannot compute a key for {type(obj).__name__} object {obj!r:.80}: it has no metadata"
        )
    return metadata


def _name_of(obj: Any, metadata: Any) -> str:
    name = getattr(metadata, "name", None)
    if not name or not isinstance(name, str):
        raise KeyFuncError(
            f"cannot compute a key for {type(obj).__name__} object {obj!r:.80}: "
            f"metadata.name is {name!r} (a non-empty string is required)"
        )
    return name


def meta_namespace_key_func(obj: Any) -> str:
    """Return ``namespace/name`` for ``obj``, or ``name`` when its namespace is empty.

    client-go ``MetaNamespaceKeyFunc``. An :class:`ExplicitKey` is returned unchanged. A
    :class:`DeletedFinalStateUnknown` is *not* unwrapped (use
    :func:`deletion_handling_meta_namespace_key_func` for delete paths). A namespace of None (as
    Kubernetes client models have for cluster-scoped objects) counts as empty.

    Thread-safety: pure; safe from any thread.

    Args:
        obj: an object with ``metadata.name`` and ``metadata.namespace``, or an ExplicitKey.

    Returns:
        The key.

    Raises:
        KeyFuncError: ``obj`` has no metadata, or an empty or non-string name.
    """
    accessors = header_accessors(type(obj))
    if accessors.direct:
        name = accessors.name(obj)
        if name and type(name) is str:
            namespace = accessors.namespace(obj)
            return f"{namespace}/{name}" if namespace else name
    if isinstance(obj, ExplicitKey):
        return str(obj)
    metadata = _metadata_of(obj)
    name = _name_of(obj, metadata)
    namespace = getattr(metadata, "namespace", None)
    if namespace:
        return f"{namespace}/{name}"
    return name


def deletion_handling_meta_namespace_key_func(obj: Any) -> str:
    """Like :func:`meta_namespace_key_func`, but a tombstone yields its recorded key.

    client-go ``DeletionHandlingMetaNamespaceKeyFunc``: use it wherever a delete notification's
    object is keyed (``on_delete`` handlers, workqueue producers).

    Thread-safety: pure; safe from any thread.

    Args:
        obj: an object, an :class:`ExplicitKey` or a :class:`DeletedFinalStateUnknown`.

    Returns:
        The key.

    Raises:
        KeyFuncError: ``obj`` is not a tombstone and has no metadata or no name.
    """
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return meta_namespace_key_func(obj)


def cluster_scoped_key_func(obj: Any) -> str:
    """Return the object's name alone, ignoring any namespace stamped on it.

    For cluster-scoped resources such as GPUs: some servers stamp ``namespace: default`` on
    objects that have no namespace, and keying by ``namespace/name`` would then make
    ``lister.get("gpu-0")`` miss. A :class:`DeletedFinalStateUnknown` yields its recorded key and
    an :class:`ExplicitKey` is returned unchanged, so this one function serves adds, updates and
    deletes.

    Thread-safety: pure; safe from any thread.

    Args:
        obj: an object with ``metadata.name``, an ExplicitKey or a DeletedFinalStateUnknown.

    Returns:
        The name (or the explicit / recorded key).

    Raises:
        KeyFuncError: ``obj`` has no metadata, or an empty or non-string name.
    """
    accessors = header_accessors(type(obj))
    if accessors.direct:
        name = accessors.name(obj)
        if name and type(name) is str:
            return name
    if isinstance(obj, ExplicitKey):
        return str(obj)
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return _name_of(obj, _metadata_of(obj))


def split_meta_namespace_key(key: str) -> tuple[str, str]:
    """Split a store key into ``(namespace, name)``.

    client-go ``SplitMetaNamespaceKey``: ``"name"`` → ``("", "name")``; ``"ns/name"`` →
    ``("ns", "name")``.

    Args:
        key: a key made by :func:`meta_namespace_key_func` or :func:`cluster_scoped_key_func`.

    Returns:
        ``(namespace, name)``; the namespace is ``""`` for cluster-scoped keys.

    Raises:
        ValueError: the key has more than one ``/``.
    """
    parts = key.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f"unexpected key format: {key!r}")
