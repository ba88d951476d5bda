"""The public surface of nvinformers.controller."""

from __future__ import annotations

import inspect
import subprocess
import sys

from nvinformers import controller


def test_every_exported_class_and_function_is_the_packages_own_and_documented() -> None:
    for name in controller.__all__:
        obj = getattr(controller, name)  # raises if __all__ names something that is not there
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("nvinformers.controller."), name
            assert obj.__doc__, name
    assert len(set(controller.__all__)) == len(controller.__all__)


def test_the_contract_names_are_the_reconcile_modules() -> None:
    from nvinformers.controller import _reconcile as reconcile

    assert controller.Request is reconcile.Request
    assert controller.Result is reconcile.Result
    assert controller.TerminalError is reconcile.TerminalError
    assert controller.Reconciler is reconcile.Reconciler


def test_importing_the_controller_package_does_not_load_grpc() -> None:
    code = "import sys, nvinformers.controller; sys.exit('grpc' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
