"""Cancellation of blocking calls from another thread: what a Go ``context`` cancel does.

client-go passes a ``context.Context`` to every list and watch, and a stopped informer returns at
once because cancelling the context aborts the calls in flight. :class:`CancelToken` is the small
piece of that nvinformers needs: a one-shot signal that runs callbacks (cancel a gRPC future, stop
a watch, wake a waiting thread) the moment it fires.

Example::

    token = CancelToken()
    threading.Thread(target=lambda: gpus.list(cancel=token)).start()
    token.cancel()  # the list raises ServiceUnavailableError (CANCELLED) at once

Thread-safety: every method may be called from any thread. Callbacks run on the thread that
calls :meth:`CancelToken.cancel` (or that registers one on a token already cancelled), outside
the token's lock; one that raises is logged and the others still run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["CancelToken"]

log = logging.getLogger("nvinformers.cancel")


def _nothing() -> None:
    return None


class CancelToken:
    """A one-shot cancellation signal with callbacks (see the module docstring)."""

    __slots__ = ("_callbacks", "_event", "_lock", "_next_id")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: dict[int, Callable[[], None]] = {}  # guarded by _lock
        self._next_id = 0  # guarded by _lock

    def cancel(self) -> None:
        """Fire the token: run every registered callback once. Idempotent; does not block
        beyond what the callbacks do."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            _run(callback)

    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    @property
    def event(self) -> threading.Event:
        """A ``threading.Event`` set when the token fires (for ``Clock.wait`` and friends)."""
        return self._event

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the token fires (True) or ``timeout`` seconds pass (False)."""
        return self._event.wait(timeout)

    def add_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when the token fires; at once (on this thread) if it already has.

        Returns:
            A function that unregisters the callback (a no-op once it has run). Call it when the
            operation the callback would cancel is over, so tokens do not accumulate callbacks.
        """
        with self._lock:
            if not self._event.is_set():
                key = self._next_id
                self._next_id += 1
                self._callbacks[key] = callback

                def remove() -> None:
                    with self._lock:
                        self._callbacks.pop(key, None)

                return remove
        _run(callback)
        return _nothing

    def __repr__(self) -> str:
        return f"CancelToken({'cancelled' if self.cancelled() else 'active'})"


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # one failing callback must not keep the others from running
        log.exception("cancel callback %r raised", callback)
