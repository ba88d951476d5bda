"""The ``nvinformers`` command: kubectl-like reads of the Device API, a fake server and a demo.

Commands::

    nvinformers get gpus [-l SELECTOR] [-o wide|json|yaml|name]
    nvinformers get gpu NAME [-o wide|json|yaml|name]
    nvinformers watch gpus [-l SELECTOR] [--resource-version RV] [--timeout SECONDS]
    nvinformers fake-server [--socket PATH] [--gpus N] [--flip-interval SECONDS] ...
    nvinformers fake-kube-apiserver [--node NAME]... [--pods N] [--kubeconfig PATH] ...
    nvinformers demo [--duration SECONDS] [--gpus N] [--flip-interval SECONDS]

Every command that talks to a server takes ``--target`` (default: ``NVIDIA_DEVICE_API_TARGET``,
then ``unix:///var/run/nvidia-device-api/device-api.sock``).

Exit codes: 0 success, 1 not found or API error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from nvinformers import meta
from nvinformers.api.device.v1alpha1.types import GPU
from nvinformers.errors import StatusError
from nvinformers.options import ListOptions

__all__ = ["main", "render_table", "to_yaml"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# ------------------------------------------------------------------------------- formatting


def _ready(gpu: GPU) -> tuple[str, str]:
    condition = meta.find_status_condition(gpu.status.conditions, "Ready")
    if condition is None:
        return "Unknown", ""
    return condition.status, condition.reason


def _age(since: datetime | None, now: datetime | None = None) -> str:
    """kubectl's short human durations: 45s, 12m, 5h, 3d."""
    if since is None:
        return "<unknown>"
    seconds = max(0, int(((now or datetime.now(UTC)) - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def render_table(gpus: Sequence[GPU], *, wide: bool = False) -> str:
    """kubectl-style table of GPUs (``NAME UUID READY REASON AGE`` [+ wide columns])."""
    headers = ["NAME", "UUID", "READY", "REASON", "AGE"]
    if wide:
        headers += ["RESOURCE-VERSION", "RECOMMENDED-ACTION", "LABELS"]
    rows = [headers]
    for gpu in gpus:
        metadata = gpu.metadata
        status, reason = _ready(gpu)
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
    lines: list[str] = []
    if isinstance(value, dict):
        if not value:
            return pad + "{}"
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{_yaml_scalar(key)}:")
                lines.append(to_yaml(item, indent + 1))
            else:
                rendered = to_yaml(item, 0) if isinstance(item, dict | list) else _yaml_scalar(item)
                lines.append(f"{pad}{_yaml_scalar(key)}: {rendered}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return pad + "[]"
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = to_yaml(item, indent + 1).split("\n")
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                rendered = to_yaml(item, 0) if isinstance(item, dict | list) else _yaml_scalar(item)
                lines.append(f"{pad}- {rendered}")
        return "\n".join(lines)
    return pad + _yaml_scalar(value)


def _print_objects(gpus: Sequence[GPU], output: str, out: IO[str], *, as_list: bool) -> None:
    if output in ("", "wide"):
        out.write(render_table(gpus, wide=output == "wide") + "\n")
    elif output == "name":
        out.writelines(f"gpu/{g.metadata.name}\n" for g in gpus)
    else:
        data: dict[str, Any]
        if as_list:
            data = {
                "apiVersion": "v1",
                "kind": "List",
                "items": [g.to_dict() for g in gpus],
            }
        else:
            data = gpus[0].to_dict()
        if output == "json":
            out.write(json.dumps(data, indent=2) + "\n")
        else:
            out.write(to_yaml(data) + "\n")


# ----------------------------------------------------------------------------------- commands


def _clientset(target: str | None) -> Any:
    from nvinformers.clientset import Config, new_for_config

    return new_for_config(Config(target=target))


def _cmd_get(args: argparse.Namespace, out: IO[str]) -> int:
    with _clientset(args.target) as cs:
        gpus = cs.device_v1alpha1().gpus()
        if args.resource in ("gpu", "gpus") and args.name:
            _print_objects([gpus.get(args.name)], args.output, out, as_list=False)
            return EXIT_OK
        if args.resource == "gpu":
            raise _UsageError("get gpu needs a NAME (or use 'get gpus' to list them)")
        result = gpus.list(ListOptions(label_selector=args.selector or ""))
        if not result.items and args.output in ("", "wide"):
            out.write("No resources found\n")
            return EXIT_OK
        _print_objects(result.items, args.output, out, as_list=True)
    return EXIT_OK


def _cmd_watch(args: argparse.Namespace, out: IO[str]) -> int:
    stop = threading.Event()
    with _clientset(args.target) as cs:
        gpus = cs.device_v1alpha1().gpus()
        options = ListOptions(
            label_selector=args.selector or "",
            resource_version=args.resource_version or "",
            allow_watch_bookmarks=False,
            timeout_seconds=args.timeout,
        )
        with gpus.watch(options) as watch:
            _stop_on_signals(stop, watch.stop)
            for event in watch:
                gpu = event.object
                status, reason = _ready(gpu)
                out.write(
                    f"{event.type.value:<9} {gpu.metadata.name:<12} "
                    f"rv={gpu.metadata.resource_version:<8} Ready={status}"
                    f"{f' ({reason})' if reason else ''}\n"
                )
                out.flush()
    return EXIT_INTERRUPTED if stop.is_set() else EXIT_OK


def _cmd_demo(args: argparse.Namespace, out: IO[str]) -> int:
    from nvinformers.demo import run_demo

    return run_demo(
        duration=args.duration,
        gpus=args.gpus,
        flip_interval=args.flip_interval,
        out=out,
    )


def _stop_on_signals(stop: threading.Event, action: Callable[[], None]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, frame: object) -> None:
        stop.set()
        action()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nvinformers",
        description="Read GPUs from the node-local NVIDIA Device API.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_target(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--target",
            help="Device API target (default: $NVIDIA_DEVICE_API_TARGET, then the node socket)",
        )

    get = sub.add_parser("get", help="list GPUs or show one")
    get.add_argument("resource", choices=["gpus", "gpu"], help="gpus | gpu")
    get.add_argument("name", nargs="?", help="GPU name")
    get.add_argument("-l", "--selector", help="label selector, e.g. 'rack=a,!drained'")
    get.add_argument(
        "-o", "--output", default="", choices=["", "wide", "json", "yaml", "name"],
        help="output format",
    )  # fmt: skip
    add_target(get)
    get.set_defaults(func=_cmd_get)

    watch = sub.add_parser("watch", help="print one line per GPU event")
    watch.add_argument("resource", choices=["gpus"])
    watch.add_argument("-l", "--selector", help="label selector")
    watch.add_argument("--resource-version", help="start after this revision ('' = current state)")
    watch.add_argument("--timeout", type=int, default=None, help="stop after SECONDS")
    add_target(watch)
    watch.set_defaults(func=_cmd_watch)

    sub.add_parser(
        "fake-server", help="serve a fake Device API on a Unix socket (see fake-server --help)"
    )

    sub.add_parser(
        "fake-kube-apiserver",
        help="serve a fake Kubernetes API with a few Nodes and write a kubeconfig for it",
    )

    demo = sub.add_parser("demo", help="embedded fake server + live GPU Ready transitions")
    demo.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    demo.add_argument("--gpus", type=int, default=8, help="number of fake GPUs (default 8)")
    demo.add_argument(
        "--flip-interval", type=float, default=2.0, help="seconds between Ready flips"
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fake-server":
        # Its options belong to the fake server's own parser (argparse cannot pass them through).
        from nvinformers.testing.server import main_fake_server

        return main_fake_server(argv[1:])
    if argv and argv[0] == "fake-kube-apiserver":
        from nvinformers.testing.kube_api.command import main_fake_kube_apiserver

        return main_fake_kube_apiserver(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    stream = out or sys.stdout
    try:
        code: int = args.func(args, stream)
        return code
    except _UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except StatusError as err:
        print(f"Error from server ({err.reason}): {err.message}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
