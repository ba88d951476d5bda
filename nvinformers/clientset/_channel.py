"""Building the gRPC channel to the Device API: the Python peer of the Go SDK's ``ClientConnFor``.

The channel is plaintext (``grpc.insecure_channel``; the Device API is a node-local Unix socket),
connects lazily (building it for a missing socket succeeds; the first call fails fast with
UNAVAILABLE, which the clientset reports as a ``ServiceUnavailableError`` naming the target), and
carries these options:

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

Interceptors, outermost first: the latency-logging interceptor (so its duration includes all the
others, as in Go), the metrics interceptor, then the user's interceptors in order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc

from nvinformers.clientset._config import Config
from nvinformers.clientset._interceptors import LatencyLoggingInterceptor, MetricsInterceptor
from nvinformers.clientset._metrics import ClientMetrics, client_metrics

__all__ = [
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
    channel: grpc.Channel,
    *,
    logger: logging.Logger,
    target: str,
    metrics: ClientMetrics,
    unary_interceptors: Sequence[grpc.UnaryUnaryClientInterceptor] = (),
    stream_interceptors: Sequence[grpc.UnaryStreamClientInterceptor] = (),
) -> grpc.Channel:
    """Wrap ``channel`` in the clientset's interceptor chain.

    Order, outermost first: latency logging, metrics, then ``unary_interceptors`` and
    ``stream_interceptors`` in order (an object given in both lists is applied once).

    Returns:
        The intercepted channel. Closing it closes ``channel``.
    """
    chain: list[Any] = [LatencyLoggingInterceptor(logger, target), MetricsInterceptor(metrics)]
    seen: set[int] = set()
    for interceptor in (*unary_interceptors, *stream_interceptors):
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
    return intercept(
        raw,
        logger=logger,
        target=target,
        metrics=client_metrics(config.metrics_registry),
        unary_interceptors=config.unary_interceptors,
        stream_interceptors=config.stream_interceptors,
    )
