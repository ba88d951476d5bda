"""The server under test, and what the suite can and cannot do to it.

By default the target is an in-process :class:`~nvinformers.testing.FakeServer`, whose test hooks
make every scenario fast and deterministic (its ``compact()`` expires history at once, its
progress bookmarks come every half second). An external target (``NVINFORMERS_CONFORMANCE_TARGET``)
is only reached through the Device API; what the suite may assume about it comes from the other
variables of :mod:`tests.conformance.settings`, and a scenario that needs what the target cannot
offer is skipped with the reason, never counted as passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from nvinformers.clientset import Clientset
from nvinformers.errors import ExpiredError
from nvinformers.options import ListOptions
from nvinformers.testing import FakeServer
from tests.conformance.process import ServerProcess
from tests.conformance.settings import COMPACTION_ENV, Settings
from tests.conformance.support import WatchLog, Writer, wait_until

__all__ = ["ConformanceTarget", "FAKE_BOOKMARK_INTERVAL"]

#: Progress-bookmark interval of the in-process fake target.
FAKE_BOOKMARK_INTERVAL = 0.5
#: How long a watch from a revision may take to replay its first change or fail.
_PROBE_WAIT = 10.0


@dataclass
class ConformanceTarget:
    """The server under test.

    Attributes:
        label: how results name the server.
        target: the gRPC target.
        settings: the suite's settings.
        fake: the in-process fake (None for an external target).
        process: the server process the suite started (None when it did not start one).
        channel: a channel for the write stubs.
        clientset: the SDK clientset the tests observe through.
        run_id: unique to this run (object names and labels).
    """

    label: str
    target: str
    settings: Settings
    fake: FakeServer | None
    process: ServerProcess | None
    channel: grpc.Channel
    clientset: Clientset
    run_id: str

    @property
    def bookmark_wait(self) -> float | None:
        """Seconds within which a progress bookmark follows a change (None: unknown)."""
        if self.fake is not None:
            return 10 * FAKE_BOOKMARK_INTERVAL
        return self.settings.bookmark_wait

    def refuses_revision(self, revision: int) -> bool:
        """True when a watch from ``revision`` fails with 410 (it is no longer replayable).

        The caller must have written a change after ``revision``, so that a server that can
        replay it answers with an event at once.
        """
        watch = (
            self.clientset.device_v1alpha1()
            .gpus()
            .watch(ListOptions(resource_version=str(revision), timeout_seconds=int(_PROBE_WAIT)))
        )
        with WatchLog(watch) as log:
            log.wait(lambda events: bool(events), _PROBE_WAIT)
            log.ended.wait(0 if log.events else _PROBE_WAIT)
            return isinstance(log.error, ExpiredError)

    def expire(self, writer: Writer, revision: int, anchor: str) -> None:
        """Make a watch from ``revision`` fail with 410 Expired, or skip the test.

        The in-process fake compacts at once. An external target may already refuse to resume
        from ``revision`` (a server without watch history); otherwise, when its compaction is
        described by ``NVINFORMERS_CONFORMANCE_COMPACTION``, ``anchor`` (one of the test's
        objects) is updated more times than the server retains, and the suite waits for the
        compaction. Blocks up to the configured wait.
        """
        if self.fake is not None:
            self.fake.compact()
            return
        if self.refuses_revision(revision):
            return
        compaction = self.settings.compaction
        if compaction is None:
            pytest.skip(
                f"{self.label} keeps revision {revision} and the suite cannot compact it: set "
                f"{COMPACTION_ENV}=RETAIN:WAIT to let the suite wait for the server's compaction"
            )
        writer.churn(anchor, compaction.retain + 10)
        if not wait_until(lambda: self.refuses_revision(revision), compaction.wait, interval=2.0):
            pytest.fail(
                f"revision {revision} was still replayable {compaction.wait:.0f} s after "
                f"{compaction.retain + 10} more writes ({COMPACTION_ENV}={compaction.retain}:"
                f"{compaction.wait:.0f})"
            )
