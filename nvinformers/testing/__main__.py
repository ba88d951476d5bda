"""``python -m nvinformers.testing``: run the fake Device API server (see ``--help``).

Signal handling is installed before the server module (and gRPC) is imported, so a Ctrl-C or
SIGTERM at any moment exits 130 / 143 without a traceback.
"""

from nvinformers.signals import Interrupted, SignalStop


def _main() -> int:
    with SignalStop() as stop:
        try:
            with stop.interruptible():
                from nvinformers.testing._server import main_fake_server
            return main_fake_server(stop=stop)
        except Interrupted as exc:
            return exc.exit_code


raise SystemExit(_main())
