"""Run every benchmark figure, print one row per figure, write ``benchmarks/results.json``.

Usage::

    python -m benchmarks.run_all                 # everything, full size (under 10 minutes)
    python -m benchmarks.run_all --only S1 N4    # some figures (merged into results.json)
    python -m benchmarks.run_all --smoke         # tiny sizes, a few seconds each, no targets
    python -m benchmarks.run_all --markdown      # print results.json as a Markdown table

Each figure script runs in a fresh process (:func:`benchmarks.common.run_module`), so that one
figure's threads, caches, heap and CPU pinning never affect the next. Every row prints
``id, value, baseline, ratio, target, ok``; the exit status is 0 when every asserted target is
met (always 0 for ``--smoke``, which only checks that the scripts work), 1 otherwise.

``--smoke`` writes ``benchmarks/results-smoke.json`` instead, so that a CI run never overwrites
the published figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from benchmarks.common import Row, machine_info, run_module

#: Figure script → the row ids it prints, in table order.
FIGURES: dict[str, tuple[str, ...]] = {
    "n1_latency": ("N1",),
    "n2_idle_cpu": ("N2",),
    "n3_rss": ("N3",),
    "n4_startup": ("N4",),
    "s1_event_cpu": ("S1",),
    "s2_initial_sync": ("S2/10k", "S2"),
    "s3_lister_get": ("S3",),
    "s4_lister_list": ("S4",),
    "s5_workqueue": ("S5/1w", "S5/4w"),
    "s6_memory": ("S6",),
    "s7_scaling": ("S7/time", "S7/memory"),
    "p1_kube": ("P1/events", "P1/memory"),
}

_SMOKE_WORKERS = 4
_HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = ["id", "value", "baseline", "ratio", "target", "ok"]


def _selected(only: list[str]) -> list[str]:
    if not only:
        return list(FIGURES)
    wanted = [o.upper() for o in only]
    modules = [
        module
        for module, ids in FIGURES.items()
        if any(i.upper() == w or i.upper().split("/")[0] == w for i in ids for w in wanted)
    ]
    unknown = [
        w
        for w in wanted
        if not any(
            i.upper() == w or i.upper().split("/")[0] == w for ids in FIGURES.values() for i in ids
        )
    ]
    if unknown:
        raise SystemExit(f"unknown figure id(s): {', '.join(unknown)}")
    return modules


def _print_table(rows: list[Row]) -> None:
    cells = [HEADER] + [r.cells() for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _write(
    path: str, rows: list[Row], machine: dict[str, Any], merge: bool, seconds: float
) -> None:
    previous: list[dict[str, Any]] = []
    if merge and os.path.exists(path):
        with open(path) as fh:
            previous = json.load(fh).get("rows", [])
    fresh = {r.id: {**asdict(r), "measured": machine["date"]} for r in rows}
    order = [i for ids in FIGURES.values() for i in ids]
    merged = {r["id"]: r for r in previous}
    merged.update(fresh)
    document = {
        "machine": machine,
        "seconds": round(seconds, 1),
        "rows": sorted(
            merged.values(), key=lambda r: order.index(r["id"]) if r["id"] in order else 99
        ),
    }
    with open(path, "w") as fh:
        json.dump(document, fh, indent=2)
        fh.write("\n")


def markdown(path: str) -> str:
    """The results in ``path`` as a Markdown table, with the machine they were measured on."""
    with open(path) as fh:
        document = json.load(fh)
    machine = document["machine"]
    lines = [
        f"Measured {machine['date']} on {machine['cpu_model']} ({machine['cpus']} vCPUs), "
        f"Python {machine['python']}, grpcio {machine['grpcio']}, protobuf {machine['protobuf']}; "
        f"load average {machine['loadavg']} before the run, "
        f"{machine.get('loadavg_after', '?')} after.",
        "",
        "| id | figure | value (spread) | baseline (spread) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for raw in document["rows"]:
        row = Row(**{k: v for k, v in raw.items() if k != "measured"})
        cells = row.cells()
        value = f"{cells[1]} ({row.spread})" if row.spread else cells[1]
        base = f"{cells[2]} ({row.baseline_spread})" if row.baseline_spread else cells[2]
        lines.append(
            f"| {row.id} | {row.figure} | {value} | {base} | {cells[3]} | {row.target} | "
            f"{cells[5]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; check the scripts work")
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="ID", help="figure ids (N1 S2 ...)"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print results.json as a Markdown table and exit"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(os.path.join(_HERE, "results.json")))
        return 0
    modules = _selected(args.only)
    machine = machine_info()
    print(
        f"# {machine['cpu_model']}, {machine['cpus']} CPUs, Python {machine['python']}, "
        f"grpcio {machine['grpcio']}, protobuf {machine['protobuf']}, load {machine['loadavg']}",
        flush=True,
    )
    print(", ".join(HEADER), flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    failures: list[str] = []
    # Full runs are sequential: figures must not disturb each other. Smoke runs only check that
    # the scripts work, so they run a few at a time.
    with ThreadPoolExecutor(max_workers=_SMOKE_WORKERS if args.smoke else 1) as pool:
        futures = {
            module: pool.submit(
                run_module, module, smoke=args.smoke, timeout=120 if args.smoke else 900
            )
            for module in modules
        }
        for module, future in futures.items():
            try:
                new = future.result()
            except Exception as exc:  # report and go on: one broken figure must not hide the rest
                failures.append(module)
                print(f"{module}: FAILED: {exc}", file=sys.stderr, flush=True)
                continue
            for row in new:
                print(", ".join(row.cells()), flush=True)
            rows.extend(new)
    seconds = time.monotonic() - started
    machine_after = machine_info()
    machine["loadavg_after"] = machine_after["loadavg"]
    print()
    _print_table(rows)
    print(
        f"\n{len(rows)} rows in {seconds:.0f} s; "
        f"load average before {machine['loadavg']}, after {machine_after['loadavg']}"
    )
    name = "results-smoke.json" if args.smoke else "results.json"
    _write(os.path.join(_HERE, name), rows, machine, merge=bool(args.only), seconds=seconds)
    missed = [r.id for r in rows if r.ok is False]
    if failures:
        print(f"failed to run: {', '.join(failures)}", file=sys.stderr)
        return 2
    if missed:
        print(f"targets missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
