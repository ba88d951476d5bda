"""The package's public surface and its import boundary."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

from nvinformers import workqueue


def test_every_public_name_is_defined_in_the_package_and_documented() -> None:
    for name in workqueue.__all__:
        obj = getattr(workqueue, name)
        assert obj.__module__.startswith("nvinformers.workqueue."), name
        assert inspect.getdoc(obj), name


def test_layers_wrap_each_other() -> None:
    assert issubclass(workqueue.RateLimitingQueue, workqueue.DelayingQueue)
    assert issubclass(workqueue.DelayingQueue, workqueue.Queue)


def test_importing_the_workqueue_loads_nothing_else_from_the_package_but_the_clock() -> None:
    code = (
        "import json, sys, nvinformers.workqueue\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('nvinformers', 'grpc'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    loaded = json.loads(out)
    assert "grpc" not in loaded
    others = [m for m in loaded if not m.startswith("nvinformers.workqueue")]
    assert others == [
        "nvinformers",
        "nvinformers._version",
        "nvinformers.clock",
    ]  # the root: a leaf
