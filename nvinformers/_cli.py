"""The ``nvinformers`` command: kubectl-like reads of the Device API, a fake server and a demo.

Commands::

    nvinformers get gpus [-l SELECTOR] [-o wide|json|yaml|name]
    nvinformers get gpu NAME            (also: get gpu/NAME, get gpus NAME)
    nvinformers watch gpus [-l SELECTOR] [--resource-version RV] [--timeout SECONDS]
                           [-o wide|json|yaml|name]
    nvinformers fake-server [--socket PATH] [--gpus N] [--max-workers N] ...
    nvinformers fake-kube-apiserver [--node NAME]... [--pods N] [--kubeconfig PATH] ...
    nvinformers demo [--duration SECONDS] [--gpus N] [--flip-interval SECONDS]
    nvinformers --version

``get`` and ``watch`` take ``--target`` (default: ``$NVIDIA_DEVICE_API_TARGET``, then
``$NVIDIA_DEVICE_API_SOCK``, then ``unix:///var/run/nvidia-device-api/device-api.sock``),
``--request-timeout`` (kubectl's flag: how long one call may take, ``30s`` by default, ``0`` for
no limit; for ``watch`` it bounds the initial list, not the open stream) and ``-v`` (``-v`` logs
every call, ``-vv`` debug).

Exit codes: 0 success; 1 not found, API error, refused connection or request timeout; 2 usage
error; 130 on SIGINT and 143 on SIGTERM, whatever the command was doing (see
:mod:`nvinformers.signals`).

Output: errors are one line each on stderr, written by the command (kubectl's wording where
kubectl has one). The library's own log records go to stderr from WARNING up, except the
clientset's per-call lines, which would repeat the command's error line; ``-v`` shows them.

Start-up order matters for signals: this module imports nothing heavy at import time, and
:func:`main` installs the signal handlers before it imports gRPC, protobuf or the fake server, so
a Ctrl-C during those imports exits 130 like any other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

from nvinformers.errors import NvInformersError
from nvinformers.signals import Interrupted, SignalStop

if TYPE_CHECKING:
    import argparse

    from nvinformers.clientset import Clientset
    from nvinformers.errors import StatusError

__all__ = ["main", "parse_duration"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: kubectl's ``--request-timeout`` default here (kubectl's own default is no limit; a node
#: agent's CLI should not hang on a wedged server).
DEFAULT_REQUEST_TIMEOUT = "30s"

_RESOURCES = ("gpus", "gpu")
# The modules each command needs, imported while a signal may still interrupt (see main()).
_COMMAND_MODULES = {
    "get": ("nvinformers.clientset", "nvinformers._printers"),
    "watch": ("nvinformers.clientset", "nvinformers._printers"),
    "demo": ("nvinformers._demo", "nvinformers.informers", "nvinformers.testing._server"),
}
# The commands that run a fake server: (help, module, function taking (argv, stop=)).
_FAKE_SERVERS = {
    "fake-server": (
        "serve a fake Device API on a Unix socket (see fake-server --help)",
        "nvinformers.testing._server",
        "main_fake_server",
    ),
    "fake-kube-apiserver": (
        "serve a fake Kubernetes API with a few Nodes and write a kubeconfig for it "
        "(see fake-kube-apiserver --help)",
        "nvinformers.testing.kube_api._command",
        "main_fake_kube_apiserver",
    ),
}
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class _UsageError(NvInformersError):
    """A command line argparse cannot check: printed with the usage, exit 2."""


def parse_duration(text: str) -> float | None:
    """Parse a kubectl ``--request-timeout`` value into seconds; None for ``0`` (no limit).

    Accepts Go durations (``500ms``, ``30s``, ``1m30s``, ``2h``) and bare numbers of seconds
    (``30``, ``2.5``), as kubectl does.

    Raises:
        ValueError: not a duration, or negative.
    """
    import re

    spec = text.strip()
    try:
        seconds = float(spec)
    except ValueError:
        parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", spec)
        if not parts or "".join(n + u for n, u in parts) != spec:
            raise ValueError(
                f"invalid duration {text!r}: use a number of seconds or a duration such as "
                "500ms, 30s, 1m30s or 2h (0: no limit)"
            ) from None
        seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"invalid duration {text!r}: must be zero or positive and finite")
    return seconds or None


# ----------------------------------------------------------------------------------- commands


def _clientset(args: argparse.Namespace) -> Clientset:
    from nvinformers.clientset import Config, new_for_config

    return new_for_config(Config(target=args.target))


def _resource_and_name(args: argparse.Namespace) -> str | None:
    """The GPU name asked for (``gpu NAME``, ``gpus NAME``, ``gpu/NAME``), None for a list."""
    resource, _, slash_name = args.resource.partition("/")
    if resource not in _RESOURCES:
        raise _UsageError(
            f'the server doesn\'t have a resource type "{resource}" (known: gpus, gpu)'
        )
    if slash_name and args.name:
        raise _UsageError(
            "there is no need to specify a resource type as a separate argument when passing "
            "arguments in resource/name form (e.g. 'nvinformers get gpu/gpu-0')"
        )
    name: str | None = slash_name or args.name
    if "/" in args.resource and not slash_name:
        raise _UsageError(f"{args.resource!r} names no GPU after the '/'")
    if resource == "gpu" and not name:
        raise _UsageError("get gpu needs a NAME (or use 'get gpus' to list them)")
    return name


def _cmd_get(args: argparse.Namespace, out: IO[str], stop: SignalStop) -> int:
    from nvinformers._printers import print_gpus
    from nvinformers.options import ListOptions

    name = _resource_and_name(args)
    with _clientset(args) as cs, stop.interruptible():
        gpus = cs.device_v1alpha1().gpus()
        if name:
            print_gpus(
                [gpus.get(name, timeout=args.request_timeout)], args.output, out, as_list=False
            )
            return EXIT_OK
        result = gpus.list(
            ListOptions(label_selector=args.selector or ""), timeout=args.request_timeout
        )
    if not result.items and args.output in (None, "wide"):
        print("No resources found", file=sys.stderr)  # kubectl writes this to stderr
        return EXIT_OK
    print_gpus(result.items, args.output, out, as_list=True)
    return EXIT_OK


def _cmd_watch(args: argparse.Namespace, out: IO[str], stop: SignalStop) -> int:
    import threading

    from nvinformers._printers import print_watch_event
    from nvinformers.options import ListOptions

    if args.resource.partition("/")[0] not in _RESOURCES or "/" in args.resource:
        raise _UsageError(f"watch takes 'gpus', got {args.resource!r}")
    selector = args.selector or ""
    with _clientset(args) as cs:
        gpus = cs.device_v1alpha1().gpus()
        with stop.interruptible():
            revision = args.resource_version
            if revision is None:
                # kubectl get -w: list (a call bounded by --request-timeout), then watch from
                # the list's revision; the current objects print as ADDED.
                listed = gpus.list(
                    ListOptions(label_selector=selector), timeout=args.request_timeout
                )
                for gpu in listed.items:
                    print_watch_event("ADDED", gpu, args.output, out)
                revision = listed.metadata.resource_version
            watch = gpus.watch(
                ListOptions(
                    label_selector=selector,
                    resource_version=revision,
                    allow_watch_bookmarks=False,
                )
            )
        with watch:
            unregister = stop.on_stop(watch.stop)
            timer = None
            if args.timeout is not None:
                timer = threading.Timer(args.timeout, watch.stop)
                timer.name = "nvinformers-cli-watch-timeout"
                timer.daemon = True
                timer.start()
            try:
                for event in watch:
                    print_watch_event(event.type.value, event.object, args.output, out)
            finally:
                unregister()
                if timer is not None:
                    timer.cancel()
                    timer.join()
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, out: IO[str], stop: SignalStop) -> int:
    from nvinformers._demo import run_demo

    return run_demo(
        duration=args.duration,
        gpus=args.gpus,
        flip_interval=args.flip_interval,
        out=out,
        stop=stop.event,
    )


# ------------------------------------------------------------------------------------- parsing


def _non_negative_float(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


def _request_timeout(text: str) -> float | None:
    import argparse

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    import argparse

    from nvinformers._version import __version__

    parser = argparse.ArgumentParser(
        prog="nvinformers",
        description="Read GPUs from the node-local NVIDIA Device API.",
        epilog="Exit codes: 0 ok, 1 not found / API error / timeout, 2 usage, 130 SIGINT, "
        "143 SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"nvinformers {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--target",
            help="Device API target, unix:///path or host:port (default: "
            "$NVIDIA_DEVICE_API_TARGET, then $NVIDIA_DEVICE_API_SOCK, then "
            "unix:///var/run/nvidia-device-api/device-api.sock)",
        )
        p.add_argument(
            "--request-timeout",
            type=_request_timeout,
            default=DEFAULT_REQUEST_TIMEOUT,
            metavar="DURATION",
            help="how long to wait for the server to answer a call, e.g. 500ms, 30s, 1m; "
            f"0 = no limit (default {DEFAULT_REQUEST_TIMEOUT})",
        )
        add_verbose(p)

    def add_verbose(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=0,
            help="-v: log every call to the Device API; -vv: debug logs",
        )

    def add_output(p: argparse.ArgumentParser) -> None:
        from nvinformers._printers import OUTPUT_FORMATS

        p.add_argument(
            "-o",
            "--output",
            choices=OUTPUT_FORMATS,
            default=None,
            metavar="FORMAT",
            help=f"output format: {'|'.join(OUTPUT_FORMATS)} (default: a table)",
        )

    get = sub.add_parser("get", help="list GPUs or show one")
    get.add_argument("resource", metavar="RESOURCE", help="gpus | gpu | gpu/NAME")
    get.add_argument("name", nargs="?", help="GPU name")
    get.add_argument("-l", "--selector", help="label selector, e.g. 'rack=a,!drained'")
    add_output(get)
    add_common(get)
    get.set_defaults(func=_cmd_get)

    watch = sub.add_parser(
        "watch", help="print the GPUs, then one line per change (like kubectl get -w)"
    )
    watch.add_argument("resource", metavar="RESOURCE", help="gpus")
    watch.add_argument("-l", "--selector", help="label selector")
    watch.add_argument(
        "--resource-version",
        metavar="RV",
        help="print only changes after this revision ('' = every object as ADDED, then changes; "
        "default: list first, as kubectl does)",
    )
    watch.add_argument(
        "--timeout",
        type=_non_negative_float,
        default=None,
        metavar="SECONDS",
        help="stop watching after SECONDS (a float); exit 0",
    )
    add_output(watch)
    add_common(watch)
    watch.set_defaults(func=_cmd_watch)

    for name, (text, _, _) in _FAKE_SERVERS.items():
        # The fake servers parse their own options (their parsers live next to them), so the
        # command takes every argument after its name as it is: no option prefix of its own
        # (prefix_chars nothing uses) and no -h, so "--help" reaches the fake server's parser.
        fake = sub.add_parser(name, help=text, add_help=False, prefix_chars="\0")
        fake.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        fake.set_defaults(fake_server=name)

    demo = sub.add_parser("demo", help="embedded fake server + live GPU Ready transitions")
    demo.add_argument(
        "--duration", type=_non_negative_float, default=None, metavar="SECONDS",
        help="stop after SECONDS (default: run until Ctrl-C)",
    )  # fmt: skip
    demo.add_argument("--gpus", type=int, default=8, help="number of fake GPUs (default 8)")
    demo.add_argument(
        "--flip-interval", type=_non_negative_float, default=2.0, metavar="SECONDS",
        help="seconds between Ready flips (default 2)",
    )  # fmt: skip
    add_verbose(demo)
    demo.set_defaults(func=_cmd_demo)
    return parser


# -------------------------------------------------------------------------------- reporting


def _error_line(err: StatusError, *, target: str, timeout: float | None) -> str:
    """The one line the command prints for an API error (kubectl's wording where it has one).

    Args:
        err: the error.
        target: the target the command dialled.
        timeout: the ``--request-timeout`` in force (None: none).
    """
    from nvinformers.clientset._status import details_of
    from nvinformers.errors import ServiceUnavailableError

    if isinstance(err, ServiceUnavailableError):
        details = details_of(err.__cause__)
        if err.grpc_code == "DEADLINE_EXCEEDED":
            within = f" within {timeout:g}s" if timeout else ""
            return f"The Device API at {target} did not answer{within} (--request-timeout)"
        if "Permission denied" in details:
            return (
                f"Permission denied connecting to the Device API at {target} - is this user "
                "in the socket's group?"
            )
        if "No such file" in details:
            return (
                f"The connection to the Device API at {target} failed: the socket does not "
                "exist - is the server running?"
            )
        if "refused" in details.lower() or not details:
            return (
                f"The connection to the Device API at {target} was refused - is the server running?"
            )
        return f"Unable to connect to the Device API at {target}: {details}"
    # A full server refuses with RESOURCE_EXHAUSTED, which the SDK maps to Expired on a watch
    # (informers relist); the reason shown is what it is, kubectl's 429 reason.
    reason = "TooManyRequests" if err.grpc_code == "RESOURCE_EXHAUSTED" else err.reason
    return f"Error from server ({reason}): {err.message}"


def _configure_logging(verbosity: int) -> Callable[[], None]:
    """Send the library's log records to stderr; return the undo function (for in-process use)."""
    import logging

    root = logging.getLogger("nvinformers")
    rpc = logging.getLogger("nvinformers.clientset")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    saved = (root.level, root.propagate, rpc.level)
    root.addHandler(handler)
    root.propagate = False
    root.setLevel(
        logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity else logging.WARNING
    )
    if verbosity == 0:
        # The clientset's call failures are the command's own errors, printed once by main().
        rpc.setLevel(logging.CRITICAL)
    elif verbosity == 1:
        rpc.setLevel(logging.DEBUG)  # -v: every call with its latency, as kubectl -v=6

    def undo() -> None:
        root.removeHandler(handler)
        root.level, root.propagate = saved[0], saved[1]
        rpc.setLevel(saved[2])

    return undo


# ------------------------------------------------------------------------------------ entry


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring).

    Installs SIGINT/SIGTERM handling (on the main thread) for the duration of the call and puts
    the previous handlers back before returning.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        out: where results go (default stdout); errors always go to stderr.

    Returns:
        The exit code: 0, 1, 2, 130 (SIGINT) or 143 (SIGTERM).
    """
    stop = SignalStop().install()  # first: before anything slow can be interrupted
    try:
        code = _run(list(sys.argv[1:] if argv is None else argv), out or sys.stdout, stop)
    except Interrupted as exc:
        return exc.exit_code
    finally:
        stop.restore()
    return stop.exit_code if stop.exit_code is not None else code


def _run(argv: list[str], out: IO[str], stop: SignalStop) -> int:
    import importlib

    with stop.interruptible():
        parser = _parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error (already printed)
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        fake_server = getattr(args, "fake_server", None)
        if fake_server is not None:
            _, module, function = _FAKE_SERVERS[fake_server]
            fake_main: Callable[..., int] = getattr(importlib.import_module(module), function)
        for module in _COMMAND_MODULES.get(args.command, ()):
            importlib.import_module(module)
    if fake_server is not None:
        # Outside interruptible(): the fake server handles a signal itself (it stops cleanly).
        return fake_main(args.args, stop=stop)
    undo_logging = _configure_logging(args.verbose)
    try:
        return _dispatch(parser, args, out, stop)
    finally:
        undo_logging()


def _dispatch(
    parser: argparse.ArgumentParser, args: argparse.Namespace, out: IO[str], stop: SignalStop
) -> int:
    from nvinformers.errors import StatusError

    func: Callable[[argparse.Namespace, IO[str], SignalStop], int] = args.func
    try:
        return func(args, out, stop)
    except _UsageError as err:
        if not stop.stopped:
            print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except StatusError as err:
        if not stop.stopped:  # a call cancelled by our own stop is not worth a message
            line = _error_line(
                err,
                target=_target_of(getattr(args, "target", None)),
                timeout=getattr(args, "request_timeout", None),
            )
            print(line, file=sys.stderr)
        return EXIT_ERROR
    except ValueError as err:
        if not stop.stopped:
            print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


def _target_of(target: str | None) -> str:
    from nvinformers.clientset import Config

    try:
        return Config(target=target).resolved_target()
    except ValueError:
        return str(target)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
