"""gRPC server reflection for the fake Device API server, when ``grpcio-reflection`` is installed.

With reflection, ``grpcurl -plaintext -unix <socket> list`` and ``describe`` work against
:class:`~nvinformers.testing.FakeServer` without the ``.proto`` files. The package comes with the
``testing`` extra (``pip install 'nvinformers[testing]'``; the ``dev`` extra includes it); the
fake server works the same without it, only unreflected.

Thread-safety: call before the server starts.
"""

from __future__ import annotations

import logging

import grpc

__all__ = ["enable_reflection"]

log = logging.getLogger("nvinformers.testing")


def enable_reflection(server: grpc.Server, *service_names: str) -> bool:
    """Serve ``grpc.reflection.v1alpha.ServerReflection`` for ``service_names`` on ``server``.

    Returns:
        True when reflection is served, False when ``grpcio-reflection`` is not installed.
    """
    try:
        from grpc_reflection.v1alpha import reflection
    except ImportError:
        log.debug("grpcio-reflection is not installed: the fake server serves no reflection")
        return False
    reflection.enable_server_reflection((*service_names, reflection.SERVICE_NAME), server)
    return True
