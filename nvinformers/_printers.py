"""How the ``nvinformers`` command prints GPUs: kubectl's table, ``-o wide|json|yaml|name``.

Pure functions of the objects they are given (no I/O beyond the stream passed in); the command line
and the demo share them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU

__all__ = [
    "OUTPUT_FORMATS",
    "ready_condition",
    "human_duration",
    "render_table",
    "to_yaml",
    "print_gpus",
    "print_watch_event",
]

#: The ``-o`` values (the default, a table, has no name, as in kubectl).
OUTPUT_FORMATS = ("wide", "json", "yaml", "name")


def ready_condition(gpu: GPU) -> tuple[str, str]:
    """The status and reason of ``gpu``'s Ready condition (``"Unknown", ""`` without one)."""
    condition = meta.find_status_condition(gpu.status.conditions, "Ready")
    if condition is None:
        return "Unknown", ""
    return condition.status, condition.reason


def human_duration(seconds: float) -> str:
    """apimachinery's ``HumanDuration``: about two significant figures."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = divmod(hours // 24, 365)
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def _age(since: datetime | None, now: datetime | None = None) -> str:
    """kubectl's AGE column: :func:`human_duration` since ``since``, ``<unknown>`` without it."""
    if since is None:
        return "<unknown>"
    return human_duration(((now or datetime.now(UTC)) - since).total_seconds())


def render_table(gpus: Sequence[GPU], *, wide: bool = False) -> str:
    """kubectl-style table of GPUs (``NAME UUID READY REASON AGE`` [+ wide columns])."""
    headers = ["NAME", "UUID", "READY", "REASON", "AGE"]
    if wide:
        headers += ["RESOURCE-VERSION", "RECOMMENDED-ACTION", "LABELS"]
    rows = [headers]
    for gpu in gpus:
        metadata = gpu.metadata
        status, reason = ready_condition(gpu)
        row = [
            metadata.name,
            gpu.spec.uuid,
            status,
            reason or "-",
            _age(metadata.creation_timestamp),
        ]
        if wide:
            labels = ",".join(f"{k}={v}" for k, v in sorted(metadata.labels.items())) or "<none>"
            row += [
                metadata.resource_version,
                gpu.status.recommended_action or "-",
                labels,
            ]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    plain = (
        text
        and text.strip() == text
        and not any(c in text for c in ":#{}[],&*!|>'\"%@`\n")
        and text.lower() not in {"true", "false", "yes", "no", "null", "on", "off", "~"}
        and not text[0].isdigit()
        and not text.startswith("-")
    )
    return text if plain else json.dumps(text)


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for JSON-like data (dicts, lists, str, numbers, bools, None)."""
    pad = "  " * indent
    if not isinstance(value, dict | list):
        return pad + _yaml_scalar(value)
    if not value:
        return pad + ("{}" if isinstance(value, dict) else "[]")
    is_dict = isinstance(value, dict)
    lines: list[str] = []
    for key, item in value.items() if isinstance(value, dict) else enumerate(value):
        head = f"{pad}{_yaml_scalar(key)}:" if is_dict else f"{pad}-"
        if not (isinstance(item, dict | list) and item):
            lines.append(f"{head} {to_yaml(item)}")
        elif is_dict:
            lines += [head, to_yaml(item, indent + 1)]
        else:  # the first line of a nested list item follows its dash
            first, *rest = to_yaml(item, indent + 1).split("\n")
            lines += [f"{head} {first.lstrip()}", *rest]
    return "\n".join(lines)


def print_gpus(gpus: Sequence[GPU], output: str | None, out: IO[str], *, as_list: bool) -> None:
    """Print ``gpus`` in kubectl's format ``output`` (None: the table) to ``out``.

    Args:
        gpus: what to print; with ``as_list`` False exactly one GPU.
        output: None, or one of :data:`OUTPUT_FORMATS`.
        out: the stream to write to.
        as_list: json/yaml print a ``kind: List`` (kubectl's ``get`` of a collection) rather
            than the object itself.
    """
    if output in (None, "wide"):
        out.write(render_table(gpus, wide=output == "wide") + "\n")
    elif output == "name":
        out.writelines(f"gpu/{g.metadata.name}\n" for g in gpus)
    else:
        data: dict[str, Any]
        if as_list:
            data = {"apiVersion": "v1", "kind": "List", "items": [g.to_dict() for g in gpus]}
        else:
            data = gpus[0].to_dict()
        _print_data(data, output, out)


def _print_data(data: dict[str, Any], output: str | None, out: IO[str]) -> None:
    if output == "json":
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write(to_yaml(data) + "\n")


def print_watch_event(event_type: str, gpu: GPU, output: str | None, out: IO[str]) -> None:
    """Print one watch event as ``nvinformers watch gpus`` does, and flush.

    The default is one line per event (type, name, revision, Ready); ``-o json`` / ``-o yaml``
    print the object after the change (as ``kubectl get -w -o json`` does; YAML documents are
    separated by ``---``), ``-o name`` prints ``gpu/NAME``, ``-o wide`` adds the reason and the
    recommended action to the line.
    """
    if output in (None, "wide"):
        status, reason = ready_condition(gpu)
        line = (
            f"{event_type:<9} {gpu.metadata.name:<12} rv={gpu.metadata.resource_version:<8} "
            f"Ready={status}{f' ({reason})' if reason else ''}"
        )
        if output == "wide":
            line += f" action={gpu.status.recommended_action or '-'}"
        out.write(line + "\n")
    elif output == "name":
        out.write(f"gpu/{gpu.metadata.name}\n")
    else:
        if output == "yaml":
            out.write("---\n")  # one YAML document per event
        _print_data(gpu.to_dict(), output, out)
    out.flush()
