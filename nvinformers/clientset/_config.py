"""Connection configuration of the clientset: the Python peer of the Go SDK's ``nvgrpc.Config``.

A :class:`Config` is a frozen, keyword-only dataclass: it is never changed after construction, so
the clientset can never mutate the caller's configuration (the Go SDK copies it for the same
reason). Derive a changed copy with :func:`dataclasses.replace`.

Target precedence: ``Config.target`` > the ``NVIDIA_DEVICE_API_TARGET`` environment variable (the
Go SDK's) > ``NVIDIA_DEVICE_API_SOCK`` (what the newer generation of NVIDIA's server and Go client
documents) > ``unix:///var/run/nvidia-device-api/device-api.sock``. A variable that is set but
empty counts as unset. The environment is read when the target is resolved (by
:meth:`Config.resolved_target`, which ``new_for_config`` calls), not when the Config is built.

Importing this module does not import gRPC or prometheus_client (``from nvinformers import Config``
stays cheap); they are only named in type annotations.
"""

from __future__ import annotations

import logging
import math
import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nvinformers._version import __version__
from nvinformers.clientset._target import Target, parse_target

if TYPE_CHECKING:
    import grpc
    import prometheus_client

__all__ = [
    "Config",
    "TARGET_ENV_VAR",
    "SOCK_ENV_VAR",
    "DEFAULT_TARGET",
    "DEFAULT_KEEPALIVE_TIME",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH",
    "DEFAULT_LOGGER_NAME",
    "user_agent",
]

#: Environment variable overriding the default target (Go: ``NvidiaDeviceAPITargetEnvVar``).
TARGET_ENV_VAR = "NVIDIA_DEVICE_API_TARGET"
#: The newer server and Go client generation's variable (``unix:///path``), read after
#: :data:`TARGET_ENV_VAR`.
SOCK_ENV_VAR = "NVIDIA_DEVICE_API_SOCK"
#: Where the node-local Device API listens by default.
DEFAULT_TARGET = "unix:///var/run/nvidia-device-api/device-api.sock"
#: Keepalive ping interval in seconds (the Go SDK's ``DefaultKeepAliveTime``, 5 minutes).
DEFAULT_KEEPALIVE_TIME = 300.0
#: Seconds to wait for a keepalive ack before the connection is considered dead.
DEFAULT_KEEPALIVE_TIMEOUT = 20.0
#: 256 MiB. A list of 10,000 GPUs is about 5 MB; gRPC's default limit of 4 MiB would reject it.
DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = 256 * 1024 * 1024
#: Logger used when ``Config.logger`` is None.
DEFAULT_LOGGER_NAME = "nvinformers.clientset"

# Go's GOARCH spelling, so that the user agent reads like the Go SDK's on the same machine.
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def user_agent() -> str:
    """The default user agent: ``nvidia-device-api-client/<version> (<os>/<arch>)``.

    ``<os>`` is ``platform.system()`` lowercased (``linux``); ``<arch>`` is the machine name in Go's
    spelling (``amd64``, ``arm64``). gRPC appends its own ``grpc-python/...`` token on the wire.
    """
    machine = platform.machine().lower()
    arch = _GOARCH.get(machine, machine or "unknown")
    system = platform.system().lower() or "unknown"
    return f"nvidia-device-api-client/{__version__} ({system}/{arch})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """How to reach the Device API and how to instrument the connection.

    Fields given explicitly are validated when the Config is built; the environment-dependent
    target is validated by :meth:`resolved_target` (called by ``new_for_config``).

    Thread-safety: immutable; share it freely.

    Attributes:
        target: gRPC target (``unix:///path.sock``, ``/path.sock``, ``host:port``, ...; see
            :mod:`nvinformers.clientset._target`). None: ``NVIDIA_DEVICE_API_TARGET``, else
            ``NVIDIA_DEVICE_API_SOCK``, else :data:`DEFAULT_TARGET`.
        user_agent: sent as the primary user agent; None: :func:`user_agent`.
        keepalive_time: seconds between keepalive pings (sent even without active calls).
        keepalive_timeout: seconds to wait for a ping ack before the connection is dropped.
        unary_interceptors: extra unary-unary interceptors, run after (inside) the built-in
            latency-logging and metrics interceptors, in order.
        stream_interceptors: extra unary-stream interceptors, likewise.
        logger: logger for every log line of the clientset (interceptors, typed client, watches);
            None: ``logging.getLogger("nvinformers.clientset")``. (The Go SDK only passes its logger
            to the interceptors; here one logger sees everything.)
        max_receive_message_length: largest response accepted, in bytes (-1: unlimited).
        metrics_registry: prometheus registry for the client metrics; None: the global default
            ``prometheus_client.REGISTRY``. Metrics are registered once per registry, so any number
            of clientsets may share one.
        single_threaded_streams: receive watch streams on the iterating thread
            (``grpc.experimental.ChannelOptions.SingleThreadedUnaryStream``) instead of handing
            every message over from gRPC's channel thread: about 10x the event throughput.
            Ignored (with a debug log) when the installed grpcio lacks the option.

    Raises:
        ValueError: a field is invalid (empty user agent, non-positive keepalive, a malformed
            explicit target, an interceptor of the wrong kind, ...).
    """

    target: str | None = None
    user_agent: str | None = None
    keepalive_time: float = DEFAULT_KEEPALIVE_TIME
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    unary_interceptors: tuple[grpc.UnaryUnaryClientInterceptor, ...] = ()
    stream_interceptors: tuple[grpc.UnaryStreamClientInterceptor, ...] = ()
    logger: logging.Logger | None = None
    max_receive_message_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH
    metrics_registry: prometheus_client.CollectorRegistry | None = None
    single_threaded_streams: bool = True

    def __post_init__(self) -> None:
        if self.target is not None:
            if not isinstance(self.target, str):
                raise ValueError(
                    f"Config.target must be a string, got {type(self.target).__name__}"
                )
            parse_target(self.target)
        if self.user_agent is not None and (
            not isinstance(self.user_agent, str) or not self.user_agent.strip()
        ):
            raise ValueError("Config.user_agent cannot be empty (leave it None for the default)")
        if self.user_agent is not None and any(not c.isprintable() for c in self.user_agent):
            raise ValueError(f"Config.user_agent {self.user_agent!r} contains control characters")
        for field_name in ("keepalive_time", "keepalive_timeout"):
            value = getattr(self, field_name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(
                    f"Config.{field_name} must be a positive number of seconds, got {value!r}"
                )
        length = self.max_receive_message_length
        if (
            isinstance(length, bool)
            or not isinstance(length, int)
            or (length <= 0 and length != -1)
        ):
            raise ValueError(
                "Config.max_receive_message_length must be a positive number of bytes "
                f"(or -1 for unlimited), got {length!r}"
            )
        if self.logger is not None and not isinstance(self.logger, logging.Logger):
            raise ValueError(
                f"Config.logger must be a logging.Logger, got {type(self.logger).__name__}"
            )
        if not isinstance(self.unary_interceptors, tuple) or not isinstance(
            self.stream_interceptors, tuple
        ):
            raise ValueError("Config.unary_interceptors and stream_interceptors must be tuples")
        if self.unary_interceptors or self.stream_interceptors:
            import grpc as _grpc  # only when interceptors are configured: keeps Config import cheap

            for interceptor in self.unary_interceptors:
                if not isinstance(interceptor, _grpc.UnaryUnaryClientInterceptor):
                    raise ValueError(
                        f"Config.unary_interceptors: {interceptor!r} is not a "
                        "grpc.UnaryUnaryClientInterceptor"
                    )
            for stream_interceptor in self.stream_interceptors:
                if not isinstance(stream_interceptor, _grpc.UnaryStreamClientInterceptor):
                    raise ValueError(
                        f"Config.stream_interceptors: {stream_interceptor!r} is not a "
                        "grpc.UnaryStreamClientInterceptor"
                    )

    def resolved_target(self) -> str:
        """The gRPC target to dial: explicit target > ``NVIDIA_DEVICE_API_TARGET`` >
        ``NVIDIA_DEVICE_API_SOCK`` > default.

        An environment variable that is set but empty counts as unset (as in the Go SDK, whose
        ``os.Getenv`` cannot tell the two apart).

        Returns:
            The normalised target address (``unix:/p`` becomes ``unix:///p``).

        Raises:
            ValueError: the resolved target is malformed; the message says where it came from.
        """
        return self.parsed_target().address

    def parsed_target(self) -> Target:
        """Like :meth:`resolved_target`, but returns the parsed :class:`Target`."""
        if self.target is not None:
            return parse_target(self.target)
        for variable in (TARGET_ENV_VAR, SOCK_ENV_VAR):
            from_env = os.environ.get(variable, "")
            if from_env:
                try:
                    return parse_target(from_env)
                except ValueError as exc:
                    raise ValueError(f"{variable}: {exc}") from exc
        return parse_target(DEFAULT_TARGET)

    def resolved_user_agent(self) -> str:
        """``user_agent`` if set, else the default :func:`user_agent`."""
        return self.user_agent if self.user_agent is not None else user_agent()

    def resolved_logger(self) -> logging.Logger:
        """``logger`` if set, else the ``nvinformers.clientset`` logger."""
        return self.logger if self.logger is not None else logging.getLogger(DEFAULT_LOGGER_NAME)
