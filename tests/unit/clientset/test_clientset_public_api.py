"""The public surface of nvinformers.clientset."""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry

import nvinformers.clientset as clientset_pkg
from nvinformers.clientset import Config, Interface, new_for_config


def test_every_exported_class_and_function_is_the_packages_own_and_documented() -> None:
    expected = {
        "Config",
        "Clientset",
        "new_for_config",
        "new_for_config_or_die",
        "new_for_config_and_channel",
        "GPUClient",
        "GPUWatch",
        "parse_target",
    }
    assert expected <= set(clientset_pkg.__all__)
    for name in clientset_pkg.__all__:
        obj = getattr(clientset_pkg, name)  # raises if __all__ names something that is not there
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("nvinformers.clientset."), name
            assert obj.__doc__, name
    assert set(clientset_pkg.__all__) <= set(dir(clientset_pkg))


def test_the_real_clientset_satisfies_the_interface() -> None:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-api-")
    config = Config(
        target=f"unix://{Path(directory) / 'x.sock'}", metrics_registry=CollectorRegistry()
    )
    with new_for_config(config) as cs:
        real: Interface = cs  # checked by mypy
        assert real.device_v1alpha1().gpus() is cs.device_v1alpha1().gpus()
