"""The clientset: the entry point of the Device API client (client-go's ``versioned.Clientset``).

Example::

    from nvinformers.clientset import new_for_config_or_die

    # Target: NVIDIA_DEVICE_API_TARGET, else the default socket.
    with new_for_config_or_die() as cs:
        for gpu in cs.device_v1alpha1().gpus().list().items:
            print(gpu.metadata.name)

Constructors (as in the Go SDK):

* :func:`new_for_config` builds a channel from a :class:`Config` (lazily connecting: it succeeds
  even when the socket does not exist yet; the first call then fails with a
  ``ServiceUnavailableError`` naming the target). ``close()`` closes that channel.
* :func:`new_for_config_or_die` does the same and exits the program with a clear message on a
  bad configuration (client-go's ``NewForConfigOrDie`` panics).
* :func:`new_for_config_and_channel` uses a channel the caller built: it "takes precedence over
  the configured transport values" (target, keepalive, user agent, receive limit are ignored); the
  config supplies the logger, the metrics registry and the user interceptors. The clientset wraps
  the channel in its interceptor chain (latency logging first, then metrics, then the config's
  interceptors) and ``close()`` leaves the caller's channel open: the caller owns it.
"""

from __future__ import annotations

import threading
from typing import Protocol, Self

import grpc

from nvinformers.clientset._channel import intercept, new_channel
from nvinformers.clientset._config import Config
from nvinformers.clientset._gpus import ClientState, GPUClient, GPUInterface
from nvinformers.clientset._metrics import ClientMetrics, client_metrics

__all__ = [
    "Clientset",
    "DeviceV1alpha1Client",
    "Interface",
    "DeviceV1alpha1Interface",
    "new_for_config",
    "new_for_config_or_die",
    "new_for_config_and_channel",
]


class DeviceV1alpha1Interface(Protocol):
    """The ``device.nvidia.com/v1alpha1`` group: its typed clients."""

    def gpus(self) -> GPUInterface:
        """The GPU client."""
        ...


class Interface(Protocol):
    """What informers need of a clientset (:class:`Clientset` and the fake clientset)."""

    def device_v1alpha1(self) -> DeviceV1alpha1Interface:
        """The ``device.nvidia.com/v1alpha1`` group client."""
        ...


class DeviceV1alpha1Client:
    """The ``device.nvidia.com/v1alpha1`` group client of a :class:`Clientset`.

    Thread-safety: immutable; share it freely.
    """

    __slots__ = ("_gpus",)

    def __init__(self, gpus: GPUClient) -> None:
        self._gpus = gpus

    def gpus(self) -> GPUClient:
        """The GPU client (the same object on every call; its multicallables are built once)."""
        return self._gpus


class Clientset:
    """A client of the Device API over one gRPC channel.

    Build one with :func:`new_for_config` (or its siblings), not directly.

    Thread-safety: all methods, including ``close()``, are safe to call from any thread; the typed
    clients are shared and thread-safe.

    Properties: ``config``, ``target``, ``channel``, ``metrics``, ``closed``.
    """

    __slots__ = (
        "_channel",
        "_close_channel",
        "_config",
        "_device",
        "_lock",
        "_metrics",
        "_state",
        "_target",
    )

    def __init__(
        self,
        config: Config,
        channel: grpc.Channel,
        *,
        target: str,
        metrics: ClientMetrics,
        close_channel: grpc.Channel | None,
    ) -> None:
        """Internal: use :func:`new_for_config` or :func:`new_for_config_and_channel`.

        Args:
            config: the configuration (logger, metrics).
            channel: the intercepted channel the typed clients call through.
            target: the target named in errors and logs.
            metrics: the collectors.
            close_channel: the channel ``close()`` closes, or None when the caller owns it.
        """
        self._config = config
        self._target = target
        self._channel = channel
        self._metrics = metrics
        self._close_channel = close_channel
        self._lock = threading.Lock()
        self._state = ClientState()
        gpus = GPUClient(
            channel,
            target=target,
            logger=config.resolved_logger(),
            metrics=metrics,
            state=self._state,
        )
        self._device = DeviceV1alpha1Client(gpus)

    @property
    def config(self) -> Config:
        """The configuration the clientset was built from (never modified)."""
        return self._config

    @property
    def target(self) -> str:
        """The target the channel dials, as named in errors and logs."""
        return self._target

    @property
    def channel(self) -> grpc.Channel:
        """The intercepted gRPC channel (to call other services over the same connection)."""
        return self._channel

    @property
    def metrics(self) -> ClientMetrics:
        """The collectors this clientset records into."""
        return self._metrics

    def device_v1alpha1(self) -> DeviceV1alpha1Client:
        """The ``device.nvidia.com/v1alpha1`` group client (the same object on every call).

        Still returned after ``close()``; its calls then raise :class:`ClientsetClosedError`.
        """
        return self._device

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._state.closed

    def close(self) -> None:
        """Close the clientset. Idempotent; callable from any thread.

        Closes the channel if the clientset built it (open watches then end quietly, as after
        ``stop()``); a channel given to :func:`new_for_config_and_channel` stays open. Any later
        call through this clientset or its typed clients raises :class:`ClientsetClosedError`.
        """
        with self._lock:
            if self._state.closed:
                return
            self._state.closed = True
        if self._close_channel is not None:
            self._close_channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Clientset(target={self.target!r}{', closed' if self.closed else ''})"


def _check_config(config: Config | None) -> Config:
    if config is None:
        return Config()
    if not isinstance(config, Config):
        raise ValueError(f"config must be an nvinformers Config, got {type(config).__name__}")
    return config


def new_for_config(config: Config | None = None) -> Clientset:
    """Build a clientset and its channel from ``config``.

    Does not connect and does not block: the channel connects on the first call, so this succeeds
    even if the server is not up yet.

    Args:
        config: the configuration; None: ``Config()`` (``NVIDIA_DEVICE_API_TARGET``, else
            ``unix:///var/run/nvidia-device-api/device-api.sock``).

    Returns:
        The clientset; close it (or use it as a context manager) to close its channel.

    Raises:
        ValueError: the configuration or the resolved target is invalid.
    """
    config = _check_config(config)
    channel = new_channel(config)  # closing it closes the channel it intercepts
    return Clientset(
        config,
        channel,
        target=config.resolved_target(),
        metrics=client_metrics(config.metrics_registry),
        close_channel=channel,
    )


def new_for_config_or_die(config: Config | None = None) -> Clientset:
    """Like :func:`new_for_config`, but exits the program on a bad configuration.

    client-go's ``NewForConfigOrDie`` panics; a Python program exits instead, with a message that
    names the problem (``SystemExit`` with a string prints it to stderr and exits with status 1).

    Raises:
        SystemExit: the configuration or the resolved target is invalid.
    """
    try:
        return new_for_config(config)
    except ValueError as exc:
        raise SystemExit(f"nvinformers: cannot create the Device API clientset: {exc}") from exc


def new_for_config_and_channel(
    config: Config | None, channel: grpc.Channel, *, target: str | None = None
) -> Clientset:
    """Build a clientset over a channel the caller built and owns.

    The channel takes precedence over the config's transport settings (target, keepalive, user
    agent, receive limit); the config supplies the logger, the metrics registry and the user
    interceptors. The clientset adds its interceptor chain on top of ``channel``, so pass a plain
    channel (one from :func:`nvinformers.clientset._channel.new_channel` is already intercepted and
    would log every call twice). ``close()`` does not close ``channel``.

    Args:
        config: the configuration; None: ``Config()``.
        channel: the gRPC channel to call through.
        target: the name used for the server in errors and logs; default: ``config.target``, else
            ``"caller-supplied channel"``.

    Raises:
        ValueError: ``config`` or ``channel`` is invalid.
    """
    config = _check_config(config)
    if channel is None or not isinstance(channel, grpc.Channel):
        raise ValueError(f"channel must be a grpc.Channel, got {type(channel).__name__}")
    name = target or config.target or "caller-supplied channel"
    metrics = client_metrics(config.metrics_registry)
    intercepted = intercept(
        channel,
        logger=config.resolved_logger(),
        target=name,
        metrics=metrics,
        unary_interceptors=config.unary_interceptors,
        stream_interceptors=config.stream_interceptors,
    )
    return Clientset(config, intercepted, target=name, metrics=metrics, close_channel=None)
