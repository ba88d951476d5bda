"""One-shot signals with callbacks: :class:`Latch`, and the :class:`CancelToken` built on it.

A :class:`Latch` is set once and runs callbacks the moment it is: the Python peer of a Go channel
closed once, which a ``threading.Event`` is not (an event wakes the threads waiting on it, but
cannot wake an asyncio loop or run someone else's next step). Uses:

* :class:`CancelToken`, what a Go ``context`` cancel does: firing it runs callbacks that cancel a
  gRPC call or stop a watch in flight, so a stopped informer returns at once::

    token = CancelToken()
    threading.Thread(target=lambda: gpus.list(cancel=token)).start()
    token.cancel()  # the list raises ServiceUnavailableError (CANCELLED) at once

* the sync signal of informers and handler registrations (``sync_done()``, client-go's
  ``HasSyncedChecker().Done()``), which :mod:`nvinformers.cache._wait` waits on.

Thread-safety: every method may be called from any thread. Callbacks run on the thread that sets
the latch (or that registers one on a latch already set), outside the latch's lock; one that
raises is logged and the others still run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Latch", "CancelToken"]


def _nothing() -> None:
    return None


class Latch:
    """A one-shot signal with callbacks (see the module docstring)."""

    __slots__ = ("_callbacks", "_event", "_lock", "_next_id")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: dict[int, Callable[[], None]] = {}  # guarded by _lock
        self._next_id = 0  # guarded by _lock

    def set(self) -> None:
        """Set the latch: run every registered callback once. Idempotent; does not block beyond
        what the callbacks do."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            _run(callback)

    def is_set(self) -> bool:
        """True once :meth:`set` was called."""
        return self._event.is_set()

    @property
    def event(self) -> threading.Event:
        """A ``threading.Event`` set with the latch (for ``Clock.wait`` and friends)."""
        return self._event

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the latch is set (True) or ``timeout`` seconds pass (False)."""
        return self._event.wait(timeout)

    def add_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when the latch is set; at once (on this thread) if it already is.

        Returns:
            A function that unregisters the callback (a no-op once it has run). Call it when the
            callback is no longer wanted, so that latches do not accumulate callbacks.
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
        return f"{type(self).__name__}({'set' if self.is_set() else 'unset'})"


class CancelToken(Latch):
    """A cancellation signal with callbacks: a :class:`Latch` that is cancelled when set."""

    __slots__ = ()

    def cancel(self) -> None:
        """Fire the token (:meth:`Latch.set`): run every registered callback once. Idempotent."""
        self.set()

    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.is_set()

    def __repr__(self) -> str:
        return f"CancelToken({'cancelled' if self.cancelled() else 'active'})"


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # one failing callback must not keep the others from running
        # Imported here: nvinformers.signals builds on the latch and is imported at the CLI's
        # start-up, while a signal still has its default effect, so it imports as little as it can.
        import logging

        logging.getLogger("nvinformers.cancel").exception("callback %r raised", callback)
