"""Shared machinery of the benchmark scripts: repeats, statistics, CPU pinning, result rows.

Every figure script exposes ``run(smoke: bool) -> list[Row]`` and a ``main()`` (``python -m
benchmarks.<script> [--smoke] [--json PATH]``); :mod:`benchmarks.run_all` runs each script in its
own process and collects the rows.

A :class:`Row` is one line of the results table: the figure's value, the baseline measured in the
same run, their ratio, the target and whether it is met. Values are medians of at least
:data:`REPEATS` measurements (``--smoke``: one, at tiny sizes, and no target is asserted); the
spread (min..max) is reported next to them.

CPU pinning: on a machine with two or more CPUs, servers run pinned to :data:`SERVER_CPU` and the
measured client to :data:`CLIENT_CPU`, so that the server never steals the client's core and the
client's threads do not migrate between cores mid-measurement (a migration costs a cache refill,
and cross-core thread hand-offs cost ~35 µs on a 2-vCPU VM, against a few µs on one core).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "REPEATS",
    "CLIENT_CPU",
    "SERVER_CPU",
    "Stats",
    "Row",
    "stats",
    "measure",
    "pin",
    "pinned",
    "ratio_row",
    "value_row",
    "run_module",
    "script_main",
    "machine_info",
    "child_result",
    "wait_until",
]

#: Measurements per figure (the median is reported).
REPEATS = 3

_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
#: The CPU the measured client runs on (None: no pinning, e.g. a single CPU).
CLIENT_CPU: int | None = _CPUS[0] if len(_CPUS) >= 2 else None
#: The CPU servers run on.
SERVER_CPU: int | None = _CPUS[1] if len(_CPUS) >= 2 else None


@dataclass(frozen=True)
class Stats:
    """Median and spread of repeated measurements."""

    median: float
    low: float
    high: float
    samples: tuple[float, ...]

    def spread(self, fmt: str = "{:.3g}") -> str:
        return f"{fmt.format(self.low)}..{fmt.format(self.high)}"


def stats(samples: Sequence[float]) -> Stats:
    """Median, min and max of ``samples`` (at least one)."""
    if not samples:
        raise ValueError("no samples")
    return Stats(statistics.median(samples), min(samples), max(samples), tuple(samples))


def measure(fn: Callable[[], float], repeats: int) -> Stats:
    """Call ``fn`` ``repeats`` times (a full gc before each) and summarize what it returns."""
    out = []
    for _ in range(repeats):
        gc.collect()
        out.append(fn())
    return stats(out)


def pin(cpu: int | None) -> None:
    """Pin the calling process (all its future threads) to ``cpu``; None: leave it alone."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Pin the process to ``cpu`` for the duration of the block, then restore its affinity."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is ``value / baseline``; ``target`` reads like ``"<= 2.0x"`` (compared with the
    ratio) or ``"<= 0.2 %"`` (compared with the value when there is no baseline). ``ok`` is None
    in smoke runs.
    """

    id: str
    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    spread: str = ""
    baseline_spread: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        def num(x: float | None) -> str:
            if x is None:
                return "-"
            return f"{x:.4g}"

        ok = "-" if self.ok is None else ("yes" if self.ok else "NO")
        return [
            self.id,
            f"{num(self.value)} {self.unit}".strip(),
            f"{num(self.baseline)} {self.unit}".strip() if self.baseline is not None else "-",
            "-" if self.ratio is None else f"{self.ratio:.2f}x",
            self.target,
            ok,
        ]


def _compare(value: float, op: str, limit: float) -> bool:
    return value <= limit if op == "<=" else value >= limit


def ratio_row(
    id: str,
    figure: str,
    value: Stats,
    baseline: Stats,
    *,
    unit: str,
    op: str,
    limit: float,
    baseline_label: str,
    smoke: bool,
    notes: str = "",
    extra: dict[str, Any] | None = None,
) -> Row:
    """A row whose target is a bound on ``value / baseline`` (medians of the same run)."""
    ratio = value.median / baseline.median if baseline.median else float("inf")
    return Row(
        id=id,
        figure=figure,
        value=value.median,
        unit=unit,
        baseline=baseline.median,
        baseline_label=baseline_label,
        ratio=ratio,
        target=f"{op} {limit:g}x",
        ok=None if smoke else _compare(ratio, op, limit),
        spread=value.spread(),
        baseline_spread=baseline.spread(),
        notes=notes,
        extra={"samples": value.samples, "baseline_samples": baseline.samples, **(extra or {})},
    )


def value_row(
    id: str,
    figure: str,
    value: Stats,
    *,
    unit: str,
    op: str,
    limit: float,
    smoke: bool,
    notes: str = "",
    extra: dict[str, Any] | None = None,
) -> Row:
    """A row whose target is a bound on the value itself (no baseline)."""
    return Row(
        id=id,
        figure=figure,
        value=value.median,
        unit=unit,
        target=f"{op} {limit:g} {unit}".strip(),
        ok=None if smoke else _compare(value.median, op, limit),
        spread=value.spread(),
        notes=notes,
        extra={"samples": value.samples, **(extra or {})},
    )


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` (every 2 ms) until true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.002)


# ------------------------------------------------------------------------- script protocol


def script_main(run: Callable[[bool], list[Row]], description: str) -> None:
    """The ``main()`` of a figure script: run it, print its rows, optionally write JSON."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no targets asserted")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    rows = run(args.smoke)
    for row in rows:
        print(", ".join(row.cells()), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in rows], fh)


def run_module(module: str, *, smoke: bool, timeout: float) -> list[Row]:
    """Run ``python -m benchmarks.<module>`` in a fresh process and return its rows."""
    fd, path = _tempfile()
    os.close(fd)
    try:
        cmd = [sys.executable, "-m", f"benchmarks.{module}", "--json", path]
        if smoke:
            cmd.append("--smoke")
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=_repo_root(), check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"benchmarks.{module} exited with {proc.returncode}:\n{proc.stderr[-4000:]}"
            )
        with open(path) as fh:
            return [Row(**r) for r in json.load(fh)]
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _tempfile() -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix="nvbench-", suffix=".json", dir="/tmp")


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_result(cmd: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> Any:
    """Run a child process that prints one JSON document as its last stdout line; return it."""
    proc = subprocess.run(
        list(cmd),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=_repo_root(),
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ machine info


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What the results were measured on."""
    import google.protobuf
    import grpc
    from google.protobuf.internal import api_implementation

    load = ""
    with contextlib.suppress(OSError), open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(_CPUS) or os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "grpcio": grpc.__version__,
        "protobuf": f"{google.protobuf.__version__} ({api_implementation.Type()})",
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg": load,
    }
