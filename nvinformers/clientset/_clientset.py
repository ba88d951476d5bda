"""The clientset: the entry point of the Device API client (client-go's ``versioned.Clientset``;
an example is in :mod:`nvinformers.clientset`).

Constructors (as in the Go SDK):

* :func:`new_for_config` builds a channel from a :class:`Config` (lazily connecting: it succeeds
  even when the socket does not exist yet; the first call then fails with a
  ``ServiceUnavailableError`` naming the target). ``close()`` closes that channel.
* :func:`new_for_config_or_die` does the same and exits the program with a clear message on a
  bad configuration (client-go's ``NewForConfigOrDie`` panics).
* :func:`new_for_config_and_channel` uses a channel the caller built: it "takes precedence over
  the configured transport values" (target, keepalive, user agent, receive limit are ignored); the
  config supplies the logger, the metrics registry and the user interceptors. The clientset wraps
  the channel in its interceptor chain (latency logging first, so that its duration includes
  the others as in Go; then metrics; then the config's interceptors in order) and ``close()``
  leaves the caller's channel open: the caller owns it.
* :func:`new_channel` builds the channel alone (the Go SDK's ``ClientConnFor``).

The channel is plaintext (``grpc.insecure_channel``; the Device API is a node-local Unix socket),
connects lazily (see :func:`new_for_config`) and carries these options:

=====================================================  =======================================
option                                                 why
=====================================================  =======================================
``grpc.primary_user_agent``                            ``nvidia-device-api-client/<v> (os/arch)``
``grpc.keepalive_time_ms`` / ``_timeout_ms``           5 min / 20 s, as in the Go SDK
``grpc.keepalive_permit_without_calls = 1``            ping an idle connection too
``grpc.http2.max_pings_without_data = 0``              otherwise gRPC core stops pinging after two
                                                       pings without data, and idle keepalives
                                                       are never actually sent
``grpc.max_receive_message_length``                    256 MiB: a 10,000-GPU list is ~5 MB
``grpc.max_reconnect_backoff_ms``                      5 s (gRPC's default: 120 s): after a
                                                       long outage of the node-local server,
                                                       notice it is back within seconds (the
                                                       informers back off on their own)
``SingleThreadedUnaryStream`` (experimental)           receive stream messages on the iterating
                                                       thread: ~10k → 100k+ events/s
=====================================================  =======================================
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol, Self

import grpc

from nvinformers.clientset._config import Config
from nvinformers.clientset._gpus import GPUClient, GPUInterface
from nvinformers.clientset._interceptors import LatencyLoggingInterceptor, MetricsInterceptor
from nvinformers.clientset._metrics import ClientMetrics, client_metrics

__all__ = [
    "Clientset",
    "DeviceV1alpha1Client",
    "Interface",
    "DeviceV1alpha1Interface",
    "new_for_config",
    "new_for_config_or_die",
    "new_for_config_and_channel",
    "new_channel",
    "channel_options",
    "intercept",
    "single_threaded_stream_option",
    "MAX_RECONNECT_BACKOFF_MS",
]

#: The channel's longest wait between reconnection attempts. gRPC's default (120 s) is meant for
#: remote servers; a restarted node-local server should be noticed within seconds: after a
#: 60 s outage the default made the first call succeed ~11 s after the server was back.
MAX_RECONNECT_BACKOFF_MS = 5000


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
        "_closed",
        "_config",
        "_device",
        "_lock",
        "_metrics",
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
        self._closed = threading.Event()  # set once, under _lock
        gpus = GPUClient(
            channel,
            target=target,
            logger=config.resolved_logger(),
            metrics=metrics,
            closed=self._closed,
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
        return self._closed.is_set()

    def close(self) -> None:
        """Close the clientset. Idempotent; callable from any thread.

        Closes the channel if the clientset built it (open watches then end quietly, as after
        ``stop()``); a channel given to :func:`new_for_config_and_channel` stays open. Any later
        call through this clientset or its typed clients raises :class:`ClientsetClosedError`.
        """
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
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
    channel (one from :func:`new_channel` is already intercepted and
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
    intercepted = intercept(channel, config, target=name, metrics=metrics)
    return Clientset(config, intercepted, target=name, metrics=metrics, close_channel=None)


def single_threaded_stream_option() -> str | None:
    """The key of gRPC's experimental single-threaded unary-stream option, or None if absent."""
    try:
        from grpc import experimental
    except ImportError:  # pragma: no cover - every supported grpcio has the module
        return None
    options = getattr(experimental, "ChannelOptions", None)
    key = getattr(options, "SingleThreadedUnaryStream", None)
    return key if isinstance(key, str) else None


def channel_options(
    config: Config, *, logger: logging.Logger | None = None
) -> list[tuple[str, Any]]:
    """The channel options :func:`new_channel` uses for ``config`` (see the module docstring).

    Args:
        config: the configuration.
        logger: where to note (at debug) that the single-threaded stream option is unavailable;
            None: the config's logger.
    """
    options: list[tuple[str, Any]] = [
        ("grpc.primary_user_agent", config.resolved_user_agent()),
        ("grpc.keepalive_time_ms", max(1, round(config.keepalive_time * 1000))),
        ("grpc.keepalive_timeout_ms", max(1, round(config.keepalive_timeout * 1000))),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", config.max_receive_message_length),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]
    if config.single_threaded_streams:
        key = single_threaded_stream_option()
        if key is not None:
            options.append((key, 1))
        else:
            (logger or config.resolved_logger()).debug(
                "grpc.experimental.ChannelOptions.SingleThreadedUnaryStream is not available in "
                "grpcio %s; watch streams use the default multi-threaded receive path",
                grpc.__version__,
            )
    return options


def intercept(
    channel: grpc.Channel, config: Config, *, target: str, metrics: ClientMetrics
) -> grpc.Channel:
    """Wrap ``channel`` in the clientset's interceptor chain.

    Order, outermost first: latency logging (to the config's logger, naming ``target``), metrics,
    then the config's ``unary_interceptors`` and ``stream_interceptors`` in order (an object given
    in both lists is applied once).

    Returns:
        The intercepted channel. Closing it closes ``channel``.
    """
    latency = LatencyLoggingInterceptor(config.resolved_logger(), target)
    chain: list[Any] = [latency, MetricsInterceptor(metrics)]
    seen: set[int] = set()
    for interceptor in (*config.unary_interceptors, *config.stream_interceptors):
        if id(interceptor) not in seen:
            seen.add(id(interceptor))
            chain.append(interceptor)
    return grpc.intercept_channel(channel, *chain)


def new_channel(config: Config | None = None) -> grpc.Channel:
    """Build the intercepted, lazily connecting channel for ``config``.

    Never blocks and never connects: the first RPC does.

    Args:
        config: the configuration (None: ``Config()``, i.e. environment or default target).

    Returns:
        A ``grpc.Channel``; the caller owns it and must ``close()`` it.

    Raises:
        ValueError: the resolved target is malformed.
    """
    config = Config() if config is None else config
    target = config.resolved_target()
    logger = config.resolved_logger()
    raw = grpc.insecure_channel(target, options=channel_options(config, logger=logger))
    return intercept(raw, config, target=target, metrics=client_metrics(config.metrics_registry))
