"""The command line of ``nvinformers fake-server``: its options, checked, and the socket they
name (``--socket``, else the environment, as the clientset reads it).
"""

from __future__ import annotations

import argparse

from nvinformers.testing._socket_path import (
    DEFAULT_SOCKET_PATH,
    SOCK_ENV,
    TARGET_ENV,
    default_socket_path,
    target_to_socket_path,
)

__all__ = ["parse_command_line"]


def _positive_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _build_parser(default_max_workers: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nvinformers fake-server",
        description="Serve a fake NVIDIA Device API (GpuService) on a Unix socket until Ctrl-C "
        "or SIGTERM (exit 130 / 143). Every open watch holds one server thread; --max-workers "
        "bounds them (and every other call in flight): beyond it, calls are refused with "
        "RESOURCE_EXHAUSTED.",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help=f"socket path or unix:///path target (default: from ${TARGET_ENV}, then "
        f"${SOCK_ENV}, else {DEFAULT_SOCKET_PATH}); missing directories are created 0755 and "
        "removed again on exit",
    )
    parser.add_argument("--gpus", type=int, default=8, metavar="N", help="GPUs to create (8)")
    parser.add_argument(
        "--max-workers",
        type=_at_least_one,
        default=default_max_workers,
        metavar="N",
        help="server threads, i.e. the most watches (and calls) served at once; threads start "
        f"only as calls need them ({default_max_workers})",
    )
    parser.add_argument(
        "--flip-interval",
        type=_positive_or_zero,
        default=2.0,
        metavar="SECONDS",
        help="flip one random GPU's Ready condition this often; 0 = off (2.0)",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=_positive_or_zero,
        default=60.0,
        metavar="SECONDS",
        help="progress bookmarks on watches that allow them; 0 = off (60)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed uuids and the simulation")
    parser.add_argument(
        "--stamp-default-namespace",
        action=argparse.BooleanOptionalAction,
        default=True,
        help='store GPUs created without a namespace under "default", as the device-apiserver '
        "does (default: on)",
    )
    parser.add_argument(
        "--ignore-resource-version",
        action="store_true",
        help="start every watch with an ADDED burst, like some server builds",
    )
    return parser


def parse_command_line(argv: list[str] | None, *, default_max_workers: int) -> argparse.Namespace:
    """The options of ``nvinformers fake-server``, ``socket`` resolved to a path.

    Args:
        argv: the command line (None: ``sys.argv[1:]``).
        default_max_workers: the ``--max-workers`` default (the server's).

    Raises:
        SystemExit: ``--help`` or a usage error, already printed (code 0 or 2).
    """
    parser = _build_parser(default_max_workers)
    args = parser.parse_args(argv)
    try:
        path = args.socket or default_socket_path()
    except ValueError as exc:
        parser.error(str(exc))
    if args.gpus < 0:
        parser.error(f"--gpus must be non-negative, got {args.gpus}")
    if path.startswith("unix:"):
        try:
            path = target_to_socket_path(path)
        except ValueError as exc:
            parser.error(f"--socket: {exc}")
    args.socket = path
    return args
