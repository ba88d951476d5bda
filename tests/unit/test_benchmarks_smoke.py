"""The benchmark suite runs: ``python -m benchmarks.run_all --smoke`` exits 0 and prints every row.

Benchmarks are not tests: nothing here asserts a timing or a target. This only keeps the scripts
from rotting (imports, servers, subprocesses, the result file), at tiny sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Every figure of the performance issue, as run_all prints it.
FIGURE_IDS = (
    "N1",
    "N2",
    "N3",
    "N4",
    "S1",
    "S2/10k",
    "S2",
    "S3",
    "S4",
    "S5/1w",
    "S5/4w",
    "S6",
    "S7/time",
    "S7/memory",
    "P1/events",
    "P1/memory",
)


@pytest.mark.timeout(110)
def test_every_benchmark_runs_at_smoke_size_and_prints_its_row() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run_all", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    printed = {line.split(",", 1)[0] for line in proc.stdout.splitlines() if "," in line}
    missing = [fid for fid in FIGURE_IDS if fid not in printed]
    assert not missing, f"rows not printed: {missing}\n{proc.stdout[-3000:]}"
    with open(os.path.join(ROOT, "benchmarks", "results-smoke.json")) as fh:
        document = json.load(fh)
    assert {row["id"] for row in document["rows"]} >= set(FIGURE_IDS)
    assert document["machine"]["grpcio"]
    assert all(row["ok"] is None for row in document["rows"])  # smoke asserts no target
