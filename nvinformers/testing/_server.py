"""The fake Device API server: a real gRPC ``GpuService`` on a real Unix socket, with the real
server's semantics and fault injection, for tests, examples and ``nvinformers fake-server``.

What it implements (the semantics of the newest Device API server, NVIDIA's ``device-apiserver``
with etcd3 storage, checked by ``tests/conformance`` against both; see ``docs/compatibility.md``):

* Every RPC of ``GpuService``. Reads: ``GetGpu``, ``ListGpus`` (label selector, consistent
  snapshot with its revision), ``WatchGpus``. Writes (for providers and tests): ``CreateGpu``
  (status ignored: it is a subresource), ``UpdateGpu`` (spec, labels, annotations),
  ``UpdateGpuStatus`` (status only), ``DeleteGpu`` (preconditions), ``PatchGpu``
  (``application/merge-patch+json`` / ``application/json-patch+json``, main resource or
  ``status``).
* The storage semantics of :mod:`nvinformers.testing.storage`: one global revision, history
  replay, ``OUT_OF_RANGE`` for a revision the history no longer (or never) reached, watches with
  an ADDED burst, watch-cache selector transitions and the streaming-list protocol
  (``send_initial_events`` needs ``resource_version_match="NotOlderThan"`` here), namespaces
  (``stamp_default_namespace``, on by default; list and watch filter by a namespace given).
  Periodic BOOKMARKs with ``allow_watch_bookmarks``; ``timeout_seconds`` ends the stream cleanly
  (status OK).
* gRPC server reflection (``grpcurl list`` / ``describe``) when ``grpcio-reflection`` is
  installed (the ``testing`` extra).
* Errors are gRPC statuses: NOT_FOUND, ALREADY_EXISTS, ABORTED (stale revision, failed
  precondition), INVALID_ARGUMENT (bad selector, bad options, unparsable list revision, bad
  patch, a changed uid or namespace), OUT_OF_RANGE.

Deliberate simplifications: ``ListGpus`` always serves the latest state (every
``resource_version`` / ``resource_version_match`` a list may carry is satisfied by it, except an
``Exact`` read of an older revision, which the fake does not reconstruct); ``GetGpu`` ignores
``opts.resource_version`` likewise; objects are keyed by name alone (one name cannot live in two
namespaces). Where the device-apiserver departs from Kubernetes conventions the fake follows
Kubernetes: it validates names and labels, and refuses a patch that renames the object or names
an unknown subresource (``docs/compatibility.md`` lists these).

Each open watch holds one thread of the server's pool (``max_workers``, default
:data:`DEFAULT_MAX_WORKERS`, 1024; threads are started only as calls need them). A stream ends as
soon as its client goes away: the RPC's termination callback wakes the thread, which waits on its
watcher's condition (no polling). Beyond ``max_workers`` concurrent RPCs the server answers
RESOURCE_EXHAUSTED ("Concurrent RPC limit exceeded!") instead of queueing calls behind watches
that never end.

Fault injection (all thread-safe, usable while clients are connected):
:meth:`FakeServer.end_watches`, :meth:`~FakeServer.drop_next_events`,
:meth:`~FakeServer.fail_next_lists`, :meth:`~FakeServer.fail_next_watches`,
:meth:`~FakeServer.fail_next_calls`, :meth:`~FakeServer.compact`,
:meth:`~FakeServer.set_ignore_resource_version`, :meth:`~FakeServer.send_raw_watch_event`,
:meth:`~FakeServer.stop` / :meth:`~FakeServer.start` / :meth:`~FakeServer.restart`; and the
hostile-server kit, :attr:`FakeServer.hostile` (:mod:`nvinformers.testing._hostile`).

Example::

    with FakeServer(flip_interval=None) as server:
        cs = new_for_config_or_die(Config(target=server.target))
        server.set_ready("gpu-3", False)
        server.end_watches(grpc.StatusCode.UNAVAILABLE)   # every informer re-watches
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Final, Self

import grpc

from nvinformers import labels, meta
from nvinformers.api.device.v1alpha1 import GPU, Condition, GPUList
from nvinformers.api.device.v1alpha1 import ListMeta as _ListMeta
from nvinformers.errors import NotFoundError
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.signals import SignalStop
from nvinformers.testing._command_line import parse_command_line
from nvinformers.testing._hostile import Hostility
from nvinformers.testing._servicer import (
    CallGate,
    GpuServicer,
    StreamEnd,
    enable_reflection,
    register_servicer,
)
from nvinformers.testing._simulation import (
    NOT_READY_RECOMMENDED_ACTION,
    READY_CONDITION,
    PeriodicJobs,
    inventory_gpu,
    ready_condition,
    status_mutation,
)
from nvinformers.testing._socket_path import (
    DEFAULT_SOCKET_PATH,
    SOCK_ENV,
    TARGET_ENV,
    FakeServerError,
    ServerSocket,
)
from nvinformers.testing.storage import RawEvent, Storage

__all__ = [
    "FakeServer",
    "FakeServerError",
    "main_fake_server",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_MAX_WORKERS",
    "TARGET_ENV",
    "SOCK_ENV",
    "READY_CONDITION",
    "NOT_READY_RECOMMENDED_ACTION",
    "INITIAL_EVENTS_END_ANNOTATION",
]

_log = logging.getLogger("nvinformers.testing.server")  # the fake server, whichever part logs

#: Server threads by default: each open watch holds one, so this bounds concurrent watches.
DEFAULT_MAX_WORKERS: Final = 1024


class FakeServer:
    """An in-process fake Device API server on a Unix socket (see the module docstring).

    The store lives as long as the object: :meth:`stop`, :meth:`start` and :meth:`restart`
    keep every object, the revision and the history, so clients see a server that went away
    and came back.

    Args:
        socket_path: where to listen, as a path or a ``unix:///path`` / ``unix:/path`` target;
            missing directories above it are created (0755) on start and removed on stop if
            still empty. Default: a fresh private directory under ``/tmp`` (created on start,
            removed on stop).
        gpus: how many GPUs to create at construction (``gpu-0`` …), Ready, each labelled
            ``nvidia.com/gpu.index=<i>``; their creation takes revisions 1..gpus.
        flip_interval: every this many seconds a background thread flips one random GPU's
            Ready condition (None or 0: off).
        bookmark_interval: seconds between progress BOOKMARKs on watches that allow them
            (None or 0: never).
        history_limit: revisions always retained for watch replay.
        compaction_interval: seconds between compactions down to ``history_limit`` (None or
            0: off; the history still stays bounded, see the storage).
        max_workers: server threads, started as calls need them; each open watch holds one,
            so this bounds the concurrent watches (and calls): beyond it the server answers
            RESOURCE_EXHAUSTED.
        seed: seeds GPU uuids, object uids and the simulation, for reproducible runs.
        stamp_default_namespace: store objects created without a namespace under ``"default"``
            and look in the request's namespace, as the device-apiserver does; False: as
            January's fake server (see :mod:`nvinformers.testing.storage`).
        ignore_resource_version: start every watch with an ADDED burst of every object,
            whatever revision it asks for (like some real server builds).

    Thread-safety: every method may be called from any thread, also while clients are
    connected. :meth:`start`/:meth:`stop` are serialized.
    """

    def __init__(
        self,
        *,
        socket_path: str | os.PathLike[str] | None = None,
        gpus: int = 8,
        flip_interval: float | None = 2.0,
        bookmark_interval: float | None = 60.0,
        history_limit: int = 1000,
        compaction_interval: float | None = 300.0,
        max_workers: int = DEFAULT_MAX_WORKERS,
        seed: int | None = None,
        stamp_default_namespace: bool = True,
        ignore_resource_version: bool = False,
    ) -> None:
        if gpus < 0:
            raise ValueError(f"gpus must be non-negative, got {gpus}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        for name, value in (
            ("flip_interval", flip_interval),
            ("bookmark_interval", bookmark_interval),
            ("compaction_interval", compaction_interval),
        ):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be non-negative or None, got {value}")
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._socket = ServerSocket(socket_path)  # guarded by _lifecycle
        self._flip_interval = flip_interval or None
        self._bookmark_interval = bookmark_interval or None
        self._compaction_interval = compaction_interval or None
        self._max_workers = max_workers
        self._ignore_resource_version = ignore_resource_version
        self._storage = Storage(
            history_limit=history_limit,
            uid_factory=self._random_uuid,
            stamp_default_namespace=stamp_default_namespace,
        )
        self._gate = CallGate()
        self._hostile = Hostility()
        self._lifecycle = threading.Lock()
        self._grpc_server: grpc.Server | None = None  # guarded by _lifecycle
        self._executor: ThreadPoolExecutor | None = None  # guarded by _lifecycle
        self._jobs = PeriodicJobs()  # guarded by _lifecycle
        for index in range(gpus):
            self._storage.create(inventory_gpu(index, f"GPU-{self._random_uuid()}").to_proto())

    def _random_uuid(self) -> str:
        with self._rng_lock:
            bits = self._rng.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the socket (mode 0660) and serve; start the simulation threads.

        Returns:
            self, so ``server = FakeServer().start()`` works.

        Raises:
            FakeServerError: the path is a live socket, a symlink or not a socket, or binding
                failed.
            RuntimeError: already started.
        """
        with self._lifecycle:
            if self._grpc_server is not None:
                raise RuntimeError(f"fake server already serving on {self._socket.path}")
            executor = ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="nvinformers-fake-server-rpc"
            )
            server = grpc.server(
                executor,
                interceptors=[self._hostile],
                options=[
                    # Clients ping every 5 minutes, also without calls: never answer that with
                    # GOAWAY ("too many pings").
                    ("grpc.keepalive_permit_without_calls", 1),
                    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                    ("grpc.http2.max_ping_strikes", 0),
                ],
                maximum_concurrent_rpcs=self._max_workers,
            )
            try:
                register_servicer(GpuServicer(self._storage, self._gate, self), server)
                enable_reflection(server)  # grpcurl list/describe, if installed
                self._socket.bind(server)
                self._gate.serving = True
                server.start()
            except BaseException:
                self._gate.serving = False
                server.stop(None).wait()
                executor.shutdown(wait=True)
                self._socket.remove()
                raise
            self._grpc_server = server
            self._executor = executor
            if self._flip_interval:
                self._jobs.start(
                    "nvinformers-fake-server-flipper",
                    self._flip_interval,
                    self.flip_random_gpu,
                    "fake server: flipping a GPU failed",
                )
            if self._compaction_interval:
                self._jobs.start(
                    "nvinformers-fake-server-compactor",
                    self._compaction_interval,
                    self._storage.compact_to_limit,
                    "fake server: compaction failed",
                )
            _log.info("Fake Device API listening on %s", self._socket.path)
            return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving: end every watch with UNAVAILABLE, stop the server (unary calls in
        flight get ``grace`` seconds), join the threads, remove the socket. Idempotent.

        Blocks until everything has stopped. State is kept for a later :meth:`start`.
        """
        with self._lifecycle:
            server, executor = self._grpc_server, self._executor
            if server is None or executor is None:
                return
            self._gate.serving = False
            self._jobs.stop()
            # Stop accepting calls first, then end the streams: a client that re-watches as
            # soon as its stream ends is refused (UNAVAILABLE) instead of racing the shutdown
            # into a stream that the server cancels at once.
            stopped = server.stop(grace)
            # UNAVAILABLE, not a clean end: the device-apiserver's graceful stop waits for open
            # watches until it is killed, so its clients see the connection drop.
            self._storage.tracker.end_watches(
                StreamEnd(grpc.StatusCode.UNAVAILABLE, "fake Device API server is stopping")
            )
            stopped.wait()
            executor.shutdown(wait=True)
            self._grpc_server = None
            self._executor = None
            self._socket.remove()
            _log.info("Fake Device API stopped")

    def restart(self, grace: float | None = 1.0) -> None:
        """:meth:`stop` then :meth:`start` on the same socket; objects and revisions are kept."""
        self.stop(grace)
        self.start()

    def __enter__(self) -> Self:
        if not self.is_serving:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "serving" if self.is_serving else "stopped"
        return f"FakeServer({self._socket.path!r}, {state}, revision={self.revision})"

    # -- properties ---------------------------------------------------------------------------

    @property
    def target(self) -> str:
        """The gRPC target clients dial: ``unix://<socket_path>``."""
        return f"unix://{self._socket.path}"

    @property
    def socket_path(self) -> str:
        """The absolute path of the Unix socket."""
        return self._socket.path

    @property
    def revision(self) -> int:
        """The current revision (bumped by every write)."""
        return self._storage.tracker.revision

    @property
    def is_serving(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        with self._lifecycle:
            return self._grpc_server is not None

    @property
    def bookmark_interval(self) -> float | None:
        """Seconds between progress bookmarks (None: off)."""
        return self._bookmark_interval

    @property
    def ignore_resource_version(self) -> bool:
        """True when watches ignore the requested revision (see the constructor)."""
        return self._ignore_resource_version

    @property
    def storage(self) -> Storage:
        """The underlying store (for white-box tests)."""
        return self._storage

    @property
    def hostile(self) -> Hostility:
        """The hostile-server kit of this server: hung calls, silent or flapping watches,
        garbage responses, odd revisions (see :mod:`nvinformers.testing._hostile`)."""
        return self._hostile

    # -- objects ------------------------------------------------------------------------------

    def create_gpu(self, gpu: GPU) -> GPU:
        """Create ``gpu`` (its resource version, uid, generation and creation time are replaced
        by the server's).

        Raises:
            AlreadyExistsError: a GPU of that name exists.
            BadRequestError: invalid name or labels.
        """
        msg = gpu.to_proto()
        msg.object_meta.ClearField("resource_version")
        return self._storage.create(msg)

    def update_gpu(self, gpu: GPU) -> GPU:
        """Replace spec, labels and annotations of ``gpu.metadata.name`` (status untouched);
        a resource version on ``gpu`` must be current.

        Raises:
            NotFoundError, ConflictError, BadRequestError.
        """
        return self._storage.update(gpu.to_proto())

    def update_gpu_status(
        self,
        name: str,
        *,
        conditions: Iterable[Condition] | None = None,
        recommended_action: str | None = None,
    ) -> GPU:
        """Set status conditions and/or the recommended action of ``name``.

        Conditions are set by type, like ``meta.SetStatusCondition``: a condition replaces the
        one of the same type (others are kept); without a ``last_transition_time`` it keeps
        the old one when the status is unchanged and gets "now" when it changes.
        ``recommended_action``: None leaves it, "" clears it. A call that changes nothing
        writes nothing (no new revision, no event).

        Raises:
            NotFoundError: no such GPU.
        """
        return self._storage.patch(
            name, status_mutation(conditions, recommended_action), status=True
        )

    def set_ready(self, name: str, ready: bool) -> GPU:
        """Set the Ready condition of ``name`` (reason DriverReady / DriverNotReady); a GPU
        that is not ready gets ``recommended_action`` :data:`NOT_READY_RECOMMENDED_ACTION`,
        a ready one none. Already in that state → no write."""
        return self.update_gpu_status(
            name,
            conditions=[ready_condition(ready)],
            recommended_action="" if ready else NOT_READY_RECOMMENDED_ACTION,
        )

    def flip_random_gpu(self) -> GPU | None:
        """Toggle the Ready condition of one random GPU (what the simulation thread does every
        ``flip_interval``); None when there is no GPU."""
        names = self._storage.names()
        if not names:
            return None
        with self._rng_lock:
            name = self._rng.choice(names)
        try:
            gpu = self._storage.get(name)
            ready = meta.is_status_condition_true(gpu.status.conditions, READY_CONDITION)
            return self.set_ready(name, not ready)
        except NotFoundError:
            return None  # deleted meanwhile

    def delete_gpu(self, name: str) -> GPU:
        """Delete ``name``; returns its last state (carrying the deletion's revision).

        Raises:
            NotFoundError: no such GPU.
        """
        return self._storage.delete(name)

    def get_gpu(self, name: str) -> GPU:
        """The current state of ``name``.

        Raises:
            NotFoundError: no such GPU.
        """
        return self._storage.get(name)

    def list_gpus(self, label_selector: str = "") -> GPUList:
        """Every GPU (matching ``label_selector``), sorted by name, with the snapshot revision."""
        revision, gpus = self._storage.list_objects(labels.parse(label_selector))
        return GPUList(items=tuple(gpus), metadata=_ListMeta(resource_version=str(revision)))

    # -- counters -----------------------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """A snapshot of how many calls each RPC received (``calls["WatchGpus"]``), counted
        on arrival, before any injected failure."""
        return self._gate.calls

    @property
    def open_watches(self) -> int:
        """Watch streams being served right now."""
        return self._gate.open_watches

    def wait_for_watches(self, n: int, timeout: float) -> bool:
        """Wait until exactly ``n`` watch streams are open; False on timeout."""
        return self._gate.wait_for_watches(n, timeout)

    def wait_for_calls(self, method: str, n: int, timeout: float) -> bool:
        """Wait until ``method`` (``"ListGpus"``…) has received at least ``n`` calls."""
        return self._gate.wait_for_calls(method, n, timeout)

    # -- fault injection ----------------------------------------------------------------------

    def end_watches(self, code: grpc.StatusCode | None = None, message: str = "") -> int:
        """End every open watch stream now: with status ``code`` and ``message``, or cleanly
        (status OK) when ``code`` is None. Events not yet sent are lost (the client re-watches
        from its last revision). Returns how many streams were ended."""
        return self._storage.tracker.end_watches(
            StreamEnd(code, message or "watch ended by the server")
        )

    def drop_next_events(self, n: int) -> None:
        """The next ``n`` changes are stored (and kept in the history) but not delivered to the
        watches open at the time: a server dropping events for slow subscribers. A later
        progress bookmark covers them, so only a relist repairs the client."""
        self._storage.tracker.drop_next_events(n)

    def fail_next_calls(
        self,
        method: str,
        n: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str = "",
    ) -> None:
        """The next ``n`` calls of ``method`` (``"GetGpu"``…) fail at once with ``code``."""
        self._gate.fail_next(method, n, code, message)

    def fail_next_lists(
        self, n: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, message: str = ""
    ) -> None:
        """The next ``n`` ``ListGpus`` calls fail with ``code``."""
        self.fail_next_calls("ListGpus", n, code, message)

    def fail_next_watches(
        self, n: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, message: str = ""
    ) -> None:
        """The next ``n`` ``WatchGpus`` calls end at once with ``code`` (before any event)."""
        self.fail_next_calls("WatchGpus", n, code, message)

    def compact(self) -> int:
        """Compact the whole history now: a watch from any earlier revision gets OUT_OF_RANGE
        "too old resource version". Returns the current revision (the oldest one can still
        watch from)."""
        return self._storage.tracker.compact()

    def set_ignore_resource_version(self, ignore: bool) -> None:
        """From now on, watches ignore the requested revision and start with an ADDED burst of
        every object (like some real server builds); False restores the normal behaviour."""
        self._ignore_resource_version = ignore

    def send_raw_watch_event(self, type: str, object_bytes: bytes | None) -> int:
        """Send ``{type, object_bytes}`` to every open watch, in order with the other events:
        an ERROR, an unknown type, a malformed object, no object at all (None). Nothing is
        stored. Returns how many watches got it."""
        return self._storage.tracker.broadcast(RawEvent(type, object_bytes))


def main_fake_server(argv: list[str] | None = None, *, stop: SignalStop | None = None) -> int:
    """Run the fake server until SIGINT or SIGTERM (``nvinformers fake-server``).

    Prints ``Fake Device API listening on <path>`` once serving (stdout, flushed), and
    ``Stopping server...`` on the way out; stops cleanly, removes the socket and the directories
    it created. A signal at any moment, also while the server starts, stops it the same way.

    Blocks until stopped.

    Args:
        argv: the command line (default ``sys.argv[1:]``).
        stop: the caller's signal handling (the ``nvinformers`` command's); None: a
            :class:`~nvinformers.signals.SignalStop` installed for the call (main thread only).

    Returns:
        130 after SIGINT, 143 after SIGTERM, 0 when ``stop.event`` was set otherwise, 1 when
        the server cannot start (the reason on stderr), 2 on a usage error.
    """
    if stop is None:
        with SignalStop() as own:
            return main_fake_server(argv, stop=own)
    try:
        args = parse_command_line(argv, default_max_workers=DEFAULT_MAX_WORKERS)
    except SystemExit as exc:  # --help or a usage error, already printed
        return exc.code if isinstance(exc.code, int) else 2
    server = FakeServer(
        socket_path=args.socket,
        gpus=args.gpus,
        flip_interval=args.flip_interval,
        bookmark_interval=args.bookmark_interval,
        seed=args.seed,
        stamp_default_namespace=args.stamp_default_namespace,
        ignore_resource_version=args.ignore_resource_version,
        max_workers=args.max_workers,
    )
    try:
        try:
            server.start()
        except (FakeServerError, OSError) as exc:
            if not stop.stopped:
                print(f"nvinformers fake-server: {exc}", file=sys.stderr, flush=True)
                return 1
        else:
            if not stop.stopped:
                print(f"Fake Device API listening on {server.socket_path}", flush=True)
                print(f"target: {server.target}", flush=True)
                stop.event.wait()
                print("Stopping server...", flush=True)
    finally:
        server.stop()
    return stop.exit_code if stop.exit_code is not None else 0
