"""The package's public surface and its import boundary."""

from __future__ import annotations

import json
import subprocess
import sys

from nvinformers import workqueue


def test_public_names() -> None:
    assert set(workqueue.__all__) == {
        "Queue",
        "DelayingQueue",
        "RateLimitingQueue",
        "RateLimiter",
        "ItemExponentialFailureRateLimiter",
        "BucketRateLimiter",
        "ItemFastSlowRateLimiter",
        "MaxOfRateLimiter",
        "WithMaxWaitRateLimiter",
        "default_controller_rate_limiter",
        "Clock",
        "RealClock",
        "FakeClock",
    }
    for name in workqueue.__all__:
        assert getattr(workqueue, name) is not None


def test_layers_wrap_each_other() -> None:
    assert issubclass(workqueue.RateLimitingQueue, workqueue.DelayingQueue)
    assert issubclass(workqueue.DelayingQueue, workqueue.Queue)


def test_importing_the_workqueue_loads_nothing_else_from_the_package() -> None:
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
    assert [m for m in loaded if not m.startswith("nvinformers.workqueue")] == ["nvinformers"]
