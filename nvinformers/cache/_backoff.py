"""Jittered exponential backoff with reset, as client-go's reflector uses it.

client-go (``reflector.go``): initial 800 ms, doubling, capped at 30 s, jitter 1.0 (each delay is
drawn from ``[d, 2d)``), and reset to the initial delay once 2 minutes have passed without backing
off. Against a server that stays down this settles at one attempt every 30-60 s (~0.02-0.03 QPS).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from nvinformers.clock import REAL_CLOCK, Clock

__all__ = ["BackoffConfig", "Backoff", "DEFAULT_BACKOFF"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffConfig:
    """Parameters of :class:`Backoff` (client-go's defaults)."""

    initial: float = 0.8
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0
    reset_after: float = 120.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial:
            raise ValueError(f"backoff needs 0 < initial <= cap, got {self.initial}, {self.cap}")
        if self.factor < 1 or self.jitter < 0 or self.reset_after <= 0:
            raise ValueError("backoff needs factor >= 1, jitter >= 0 and reset_after > 0")


DEFAULT_BACKOFF = BackoffConfig()


class Backoff:
    """Hands out successive delays; resets after ``reset_after`` seconds without a request.

    Thread-safety: safe to share, though a reflector is its only user.
    """

    def __init__(
        self,
        config: BackoffConfig = DEFAULT_BACKOFF,
        *,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._current = config.initial  # guarded by _lock: the un-jittered next delay
        self._last: float | None = None  # guarded by _lock: clock time of the last next_delay()

    @property
    def config(self) -> BackoffConfig:
        return self._config

    def next_delay(self) -> float:
        """The delay to wait now, in seconds; grows the delay for the next call."""
        cfg = self._config
        with self._lock:
            now = self._clock.now()
            if self._last is not None and now - self._last >= cfg.reset_after:
                self._current = cfg.initial
            self._last = now
            delay = self._current
            self._current = min(self._current * cfg.factor, cfg.cap)
        if cfg.jitter > 0:
            delay += self._rng.random() * cfg.jitter * delay
        return delay

    def reset(self) -> None:
        """Start again from the initial delay."""
        with self._lock:
            self._current = self._config.initial
            self._last = None
