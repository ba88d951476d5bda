"""The Device API clientset: configuration, channel, typed GPU client, watch adapter.

The Python peer of client-go's generated clientset and NVIDIA's ``nvgrpc`` package::

    from nvinformers.clientset import Config, new_for_config

    with new_for_config(Config(target="unix:///run/device-api.sock")) as cs:
        gpus = cs.device_v1alpha1().gpus()
        lst = gpus.list()
        with gpus.watch(ListOptions(resource_version=lst.metadata.resource_version)) as w:
            for event in w:
                print(event.type, event.object.metadata.name)

Failures are raised as :mod:`nvinformers.errors` classes (``NotFoundError``,
``ServiceUnavailableError``, ``ExpiredError``, ...), with the ``grpc.RpcError`` as ``__cause__``.
The in-memory fake for tests is :class:`nvinformers.clientset.fake.FakeClientset`.

Names are imported lazily: ``Config`` and ``parse_target`` do not load gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nvinformers.clientset._clientset import (
        Clientset,
        DeviceV1alpha1Client,
        DeviceV1alpha1Interface,
        Interface,
        new_for_config,
        new_for_config_and_channel,
        new_for_config_or_die,
    )
    from nvinformers.clientset._config import (
        DEFAULT_TARGET,
        SOCK_ENV_VAR,
        TARGET_ENV_VAR,
        Config,
    )
    from nvinformers.clientset._gpus import ClientsetClosedError, GPUClient, GPUInterface
    from nvinformers.clientset._target import Target, parse_target
    from nvinformers.clientset._watch import GPUWatch

__all__ = [
    "Config",
    "TARGET_ENV_VAR",
    "SOCK_ENV_VAR",
    "DEFAULT_TARGET",
    "Clientset",
    "Interface",
    "DeviceV1alpha1Client",
    "DeviceV1alpha1Interface",
    "GPUClient",
    "GPUInterface",
    "GPUWatch",
    "ClientsetClosedError",
    "new_for_config",
    "new_for_config_or_die",
    "new_for_config_and_channel",
    "Target",
    "parse_target",
]

_LAZY = {
    "Config": "nvinformers.clientset._config",
    "TARGET_ENV_VAR": "nvinformers.clientset._config",
    "SOCK_ENV_VAR": "nvinformers.clientset._config",
    "DEFAULT_TARGET": "nvinformers.clientset._config",
    "Clientset": "nvinformers.clientset._clientset",
    "Interface": "nvinformers.clientset._clientset",
    "DeviceV1alpha1Client": "nvinformers.clientset._clientset",
    "DeviceV1alpha1Interface": "nvinformers.clientset._clientset",
    "new_for_config": "nvinformers.clientset._clientset",
    "new_for_config_or_die": "nvinformers.clientset._clientset",
    "new_for_config_and_channel": "nvinformers.clientset._clientset",
    "GPUClient": "nvinformers.clientset._gpus",
    "GPUInterface": "nvinformers.clientset._gpus",
    "ClientsetClosedError": "nvinformers.clientset._gpus",
    "GPUWatch": "nvinformers.clientset._watch",
    "Target": "nvinformers.clientset._target",
    "parse_target": "nvinformers.clientset._target",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nvinformers.clientset' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
