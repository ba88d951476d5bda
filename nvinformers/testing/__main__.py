"""``python -m nvinformers.testing``: run the fake Device API server (see ``--help``)."""

from nvinformers.testing.server import main_fake_server

raise SystemExit(main_fake_server())
