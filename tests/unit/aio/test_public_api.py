"""The public surface of nvinformers.aio."""

from __future__ import annotations

import nvinformers.aio


def test_every_public_name_is_importable_and_documented() -> None:
    assert nvinformers.aio.__all__ == [
        "wait_for_cache_sync",
        "informer_synced",
        "add_async_event_handler",
        "AsyncResourceEventHandler",
        "AsyncResourceEventHandlerFuncs",
        "AsyncResourceEventHandlerDetailedFuncs",
        "AsyncEventHandlerRegistration",
        "AsyncQueue",
        "AsyncController",
        "CacheSyncTimeoutError",
        "MapFunc",
    ]
    for name in nvinformers.aio.__all__:
        obj = getattr(nvinformers.aio, name)
        if name != "MapFunc":  # a type alias has no docstring of its own
            assert obj.__doc__, name
