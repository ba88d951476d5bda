"""client-go's ``tools/cache`` in Python: stores, indexers, the reflector and shared informers.

This package knows nothing of gRPC: it consumes the list-watch protocol of
:mod:`nvinformers.cache._listwatch`, so the same machinery caches GPUs from the Device API and
objects from the Kubernetes API.
"""

from nvinformers.cache._backoff import Backoff, BackoffConfig
from nvinformers.cache._fifo import DeltaType, RealFIFO, TransformFunc
from nvinformers.cache._handlers import (
    FilteringResourceEventHandler,
    ResourceEventHandler,
    ResourceEventHandlerDetailedFuncs,
    ResourceEventHandlerFuncs,
    deleted_key_and_object,
)
from nvinformers.cache._listwatch import (
    CancellableLister,
    ListerWatcher,
    ListResult,
    ListWatch,
    TweakListOptionsFunc,
)
from nvinformers.cache._processor import (
    InformerStoppedError,
    ResourceEventHandlerRegistration,
)
from nvinformers.cache._reflector import Reflector, ReflectorStats
from nvinformers.cache._reflector_errors import VeryShortWatchError
from nvinformers.cache._reflector_health import InformerHealth, LinkReport, ReflectorHealth
from nvinformers.cache._shared_informer import SharedIndexInformer
from nvinformers.cache._store import (
    DeletedFinalStateUnknown,
    ExplicitKey,
    Indexer,
    KeyedIndexer,
    KeyFunc,
    KeyFuncError,
    Store,
    cluster_scoped_key_func,
    deletion_handling_meta_namespace_key_func,
    meta_namespace_key_func,
    new_indexer,
    new_store,
    split_meta_namespace_key,
)
from nvinformers.cache._thread_safe_store import (
    NAMESPACE_INDEX,
    IndexConflictError,
    Indexers,
    IndexFunc,
    ThreadSafeStore,
    meta_namespace_index_func,
)
from nvinformers.cache._wait import wait_for_cache_sync

__all__ = [
    # stores and indexes
    "Store",
    "Indexer",
    "KeyedIndexer",
    "ThreadSafeStore",
    "new_store",
    "new_indexer",
    "Indexers",
    "IndexFunc",
    "IndexConflictError",
    "NAMESPACE_INDEX",
    "meta_namespace_index_func",
    # keys
    "KeyFunc",
    "KeyFuncError",
    "ExplicitKey",
    "DeletedFinalStateUnknown",
    "meta_namespace_key_func",
    "deletion_handling_meta_namespace_key_func",
    "cluster_scoped_key_func",
    "split_meta_namespace_key",
    # list-watch, reflector, queue
    "ListerWatcher",
    "CancellableLister",
    "ListResult",
    "ListWatch",
    "TweakListOptionsFunc",
    "TransformFunc",
    "Reflector",
    "ReflectorStats",
    "ReflectorHealth",
    "LinkReport",
    "VeryShortWatchError",
    "RealFIFO",
    "DeltaType",
    "Backoff",
    "BackoffConfig",
    # informers and handlers
    "SharedIndexInformer",
    "ResourceEventHandlerRegistration",
    "InformerHealth",
    "InformerStoppedError",
    "ResourceEventHandler",
    "ResourceEventHandlerFuncs",
    "ResourceEventHandlerDetailedFuncs",
    "FilteringResourceEventHandler",
    "deleted_key_and_object",
    "wait_for_cache_sync",
]
