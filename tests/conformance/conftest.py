"""Fixtures of the conformance suite, and its results file.

The suite checks the Device API semantics nvinformers relies on (``device-api-contract.md``)
against whatever server ``NVINFORMERS_CONFORMANCE_TARGET`` names, or an in-process
``FakeServer`` by default (see :mod:`tests.conformance.settings` for every variable). Changes go
through the write RPCs (generated stub); observation goes through the SDK.

With ``NVINFORMERS_CONFORMANCE_RESULTS=path``, the outcome of every test (passed, failed with its
one-line reason, skipped with the reason) is written there as Markdown at the end of the run.
"""

from __future__ import annotations

import itertools
import os
import platform
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.informers import SharedInformerFactory
from nvinformers.testing import FakeServer
from tests.conformance.process import ServerProcess
from tests.conformance.settings import SERVER_CMD_ENV, Settings, read_settings
from tests.conformance.support import Writer
from tests.conformance.target import FAKE_BOOKMARK_INTERVAL, ConformanceTarget

_HERE = os.path.dirname(__file__)
_case_ids = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against an external server, raise the per-test timeout (waits for its compaction, its
    bookmarks and its restarts are the server's, not ours)."""
    try:
        settings = read_settings()
    except ValueError:
        return  # reported by the settings fixture
    if not settings.external:
        return
    limit = 900 + (2 * settings.compaction.wait if settings.compaction else 0)
    for item in items:
        if item.nodeid.startswith("tests/conformance/"):
            item.add_marker(pytest.mark.timeout(limit))


@pytest.fixture(scope="package")
def settings() -> Settings:
    try:
        return read_settings()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="package")
def conformance(settings: Settings) -> Iterator[ConformanceTarget]:
    run_id = uuid.uuid4().hex[:6]
    fake: FakeServer | None = None
    process: ServerProcess | None = None
    workdir = tempfile.mkdtemp(prefix="nvcf-")
    try:
        if settings.target is None:
            fake = FakeServer(
                gpus=0,
                flip_interval=None,
                bookmark_interval=FAKE_BOOKMARK_INTERVAL,
                compaction_interval=None,
            ).start()
            target, label = fake.target, "nvinformers FakeServer (in-process)"
        else:
            target = settings.target
            label = settings.label or target
            if settings.server_cmd:
                process = ServerProcess(
                    settings.server_cmd, target, os.path.join(workdir, "server.log")
                )
                process.start()
        channel = grpc.insecure_channel(target)
        clientset = new_for_config(Config(target=target, metrics_registry=CollectorRegistry()))
        try:
            yield ConformanceTarget(
                label=label,
                target=target,
                settings=settings,
                fake=fake,
                process=process,
                channel=channel,
                clientset=clientset,
                run_id=run_id,
            )
        finally:
            clientset.close()
            channel.close()
    finally:
        if process is not None:
            process.stop()
        if fake is not None:
            fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def writer(conformance: ConformanceTarget) -> Iterator[Writer]:
    w = Writer(conformance.channel, conformance.run_id, f"{next(_case_ids):02d}")
    yield w
    w.cleanup()


@pytest.fixture
def clientset(conformance: ConformanceTarget) -> Clientset:
    return conformance.clientset


@pytest.fixture
def informer_factory() -> Iterator[Callable[..., SharedInformerFactory]]:
    """Makes SharedInformerFactory instances that are shut down after the test."""
    made: list[SharedInformerFactory] = []

    def make(client: Clientset, **kwargs: Any) -> SharedInformerFactory:
        kwargs.setdefault("registry", CollectorRegistry())
        f = SharedInformerFactory(client, **kwargs)
        made.append(f)
        return f

    yield make
    for f in made:
        f.shutdown(timeout=30)


@pytest.fixture
def restartable(conformance: ConformanceTarget) -> Iterator[ServerProcess]:
    """A server process the test may kill and start again.

    The external target's own process when the suite started it; for the default target a
    ``nvinformers fake-server`` child process (the in-process fake cannot be killed).
    """
    if conformance.fake is None:
        if conformance.process is None:
            pytest.skip(
                f"the suite did not start {conformance.label}, so it cannot kill and restart "
                f"it: set {SERVER_CMD_ENV} to the command that runs it"
            )
        yield conformance.process
        if not conformance.process.running:
            conformance.process.start()
        return
    workdir = tempfile.mkdtemp(prefix="nvcf-", dir="/tmp")
    socket_path = os.path.join(workdir, "device-api.sock")
    argv = [
        sys.executable,
        "-m",
        "nvinformers.testing",
        "--socket",
        socket_path,
        "--gpus",
        "0",
        "--flip-interval",
        "0",
        "--bookmark-interval",
        str(FAKE_BOOKMARK_INTERVAL),
    ]
    process = ServerProcess(argv, f"unix://{socket_path}", os.path.join(workdir, "server.log"))
    process.start()
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Results file

_outcomes: dict[str, tuple[str, str]] = {}


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0]
    return str(report.longrepr).splitlines()[-1] if report.longrepr else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith("tests/conformance/"):
        return
    name = report.nodeid.removeprefix("tests/conformance/")
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = "passed" if report.passed else ("skipped" if report.skipped else "failed")
        _outcomes[name] = (outcome, "" if report.passed else _reason(report))
    elif report.when == "teardown" and report.failed:
        _outcomes[name] = ("failed", "teardown: " + _reason(report))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("NVINFORMERS_CONFORMANCE_RESULTS")
    if not path or not _outcomes:
        return
    label = os.environ.get("NVINFORMERS_CONFORMANCE_LABEL") or os.environ.get(
        "NVINFORMERS_CONFORMANCE_TARGET", "nvinformers FakeServer (in-process)"
    )
    counts = {
        k: sum(1 for o, _ in _outcomes.values() if o == k) for k in ("passed", "failed", "skipped")
    }
    lines = [
        f"# Conformance results: {label}",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.system()}/{platform.machine()}, "
        f"Python {platform.python_version()}.",
        "",
        f"**{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped.**",
        "",
        "| test | outcome | reason |",
        "| --- | --- | --- |",
    ]
    for name in sorted(_outcomes):
        outcome, reason = _outcomes[name]
        cell = reason.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {outcome} | {cell} |")
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
