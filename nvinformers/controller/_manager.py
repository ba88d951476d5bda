"""Manager: runs informers and controllers together, and serves their health and metrics.

A small peer of controller-runtime's ``manager.Manager``::

    mgr = Manager(port=8081)                         # binds 127.0.0.1 unless told otherwise
    mgr.add_informer_factory(factory)
    mgr.add_controller(Controller("gpu-health", reconcile))
    mgr.add_readyz_check("db", lambda: db.ping())
    mgr.run()                                        # blocks until SIGTERM / SIGINT

The manager only orchestrates; each concern has its own module: the checks in
:mod:`nvinformers.controller._healthz`, the ops HTTP server in
:mod:`nvinformers.controller._server`,
signals in :mod:`nvinformers.signals`.

Start order (:meth:`Manager.start`): the ops HTTP server first, so that probes get answers (not
ready) during start-up; then the informers (factories and standalone ones); then the controllers,
each of which waits for its own caches to sync before starting its workers.

Stop order (:meth:`Manager.stop`, also at the end of :meth:`Manager.run`): the controllers first
(reconciles in progress finish, queued requests are dropped), then the informers and factories
(their threads are joined), then the HTTP server — each step bounded by what is left of
``shutdown_timeout``. Controllers go first so that no reconcile runs against a stopped cache.

Checks served by the ops server (see :mod:`~nvinformers.controller._healthz` for the format):

``/healthz`` (liveness)
    every informer is healthy (``informer/<name>``), no controller has failed
    (``controller/<name>``), and every ``add_healthz_check`` check passes. Because an informer
    that has not synced yet is not healthy, give the liveness probe an initial delay (or a
    failure threshold) that covers the first list.
``/readyz`` (readiness)
    every informer has synced, every controller has started its workers, and every
    ``add_readyz_check`` check passes.
``/metrics``
    the Prometheus exposition of ``registry``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry

from nvinformers.controller._controller import Controller
from nvinformers.controller._core import DEFAULT_SHUTDOWN_TIMEOUT
from nvinformers.controller._healthz import (
    Check,
    CheckResult,
    Checks,
    controller_health,
    controller_started,
    informer_health,
    informer_synced,
)
from nvinformers.controller._server import OpsServer
from nvinformers.signals import SignalStop

if TYPE_CHECKING:
    from nvinformers.cache import SharedIndexInformer

__all__ = ["Manager", "InformerFactory"]

log = logging.getLogger("nvinformers.controller")


class InformerFactory(Protocol):
    """What the manager needs of a :class:`~nvinformers.informers.SharedInformerFactory`."""

    def start(self, stop: threading.Event | None = None) -> None: ...

    def shutdown(self, timeout: float | None = None) -> None: ...

    def informers(self) -> Mapping[str, SharedIndexInformer[Any]]: ...


class Manager:
    """Runs informers, factories and controllers, and serves ``/healthz``, ``/readyz`` and
    ``/metrics`` (see the module docstring).

    Thread-safety: every method may be called from any thread. Components may be added before
    or after :meth:`start`; added after, they are started at once.

    A manager runs once: after :meth:`stop`, build a new one.

    Args:
        registry: the Prometheus registry ``/metrics`` serves (default: the global one). Build
            the controllers and factories with the same registry.
        bind_address: the ops server's address (default loopback only).
        port: the ops server's port; 0 picks a free one (see :attr:`port`); None disables the
            server.
        health_checks: extra liveness checks by name (same as :meth:`add_healthz_check`).
        shutdown_timeout: seconds :meth:`stop` may take in all (controller-runtime's
            ``GracefulShutdownTimeout``, 30 s).

    Raises:
        ValueError: an option is out of range.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        bind_address: str = "127.0.0.1",
        port: int | None = 0,
        health_checks: Mapping[str, Check] | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        if port is not None and not 0 <= port <= 65535:
            raise ValueError(f"Manager: port must be 0..65535 or None, got {port!r}")
        if not shutdown_timeout >= 0:
            raise ValueError(f"Manager: shutdown_timeout must be >= 0, got {shutdown_timeout!r}")
        self._registry = REGISTRY if registry is None else registry
        self._bind_address = bind_address
        self._port = port
        self._shutdown_timeout = float(shutdown_timeout)
        # _lock guards the fields below up to _run_event; _changed is notified when _state
        # changes. Held for bookkeeping only (and while the ops server binds): never while a
        # controller or factory starts or stops, nor while a check runs.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = "new"  # -> "running" -> "stopping" -> "stopped"
        self._factories: list[InformerFactory] = []
        self._informers: list[SharedIndexInformer[Any]] = []
        self._informer_threads: list[threading.Thread] = []
        self._controllers: list[Controller] = []
        self._healthz = Checks("healthz")
        self._readyz = Checks("readyz")
        self._errors: list[BaseException] = []
        # Set by stop(), by a failing controller and by signals; run() waits on it.
        self._run_event: threading.Event | None = None
        # Stops the informers and factories (after the controllers).
        self._informer_stop = threading.Event()
        self._server: OpsServer | None = None
        for name, check in (health_checks or {}).items():
            self.add_healthz_check(name, check)

    # ------------------------------------------------------------------------- properties

    @property
    def registry(self) -> CollectorRegistry:
        """The registry ``/metrics`` serves."""
        return self._registry

    @property
    def port(self) -> int | None:
        """The ops server's bound port once started (None before, or when disabled)."""
        with self._lock:
            server = self._server
        return None if server is None else server.port

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the ops server once started, else None."""
        with self._lock:
            server = self._server
        return None if server is None else server.url

    def error(self) -> BaseException | None:
        """The first controller failure that made the manager stop, if any."""
        with self._lock:
            return self._errors[0] if self._errors else None

    # ------------------------------------------------------------------------ components

    def add_informer_factory(self, factory: InformerFactory) -> None:
        """Start ``factory`` with the manager and shut it down after the controllers.

        Raises:
            TypeError: ``factory`` has no ``start`` / ``shutdown``.
            RuntimeError: the manager is stopping or stopped.
        """
        if not (
            callable(getattr(factory, "start", None))
            and callable(getattr(factory, "shutdown", None))
        ):
            raise TypeError(f"add_informer_factory: {factory!r} has no start()/shutdown()")
        with self._lock:
            self._check_open_locked("add_informer_factory")
            self._factories.append(factory)
            running = self._state == "running"
        if running:
            factory.start(self._informer_stop)

    def add_informer(self, informer: SharedIndexInformer[Any]) -> None:
        """Run ``informer`` (on a thread of the manager) and stop it after the controllers.

        For informers that nothing else runs; an informer started elsewhere would refuse to run
        twice (use a custom check to watch it instead).

        Raises:
            TypeError: ``informer`` is not an informer.
            RuntimeError: the manager is stopping or stopped.
        """
        if not (
            callable(getattr(informer, "run", None))
            and callable(getattr(informer, "has_synced", None))
        ):
            raise TypeError(f"add_informer: {informer!r} is not an informer (run/has_synced)")
        with self._lock:
            self._check_open_locked("add_informer")
            self._informers.append(informer)
            if self._state == "running":
                self._start_informer_locked(informer)

    def add_controller(self, controller: Controller) -> None:
        """Start ``controller`` with the manager (after the informers) and stop it first.

        A controller that fails (cache sync timeout, unrecovered panic) stops the manager:
        :meth:`run` then raises its error, as controller-runtime's ``Start`` returns it.

        Raises:
            TypeError: ``controller`` is not a :class:`Controller`.
            RuntimeError: the manager is stopping or stopped.
        """
        if not isinstance(controller, Controller):
            raise TypeError(f"add_controller: expected a Controller, got {controller!r}")
        with self._lock:
            self._check_open_locked("add_controller")
            if any(c is controller for c in self._controllers):
                raise ValueError(f"add_controller: {controller!r} was already added")
            self._controllers.append(controller)
            running = self._state == "running"
            factories = list(self._factories)
        if running:
            # Informers the controller asked a factory for are started before it waits on them.
            for factory in factories:
                factory.start(self._informer_stop)
            controller.start(on_error=self._controller_failed)

    def add_healthz_check(self, name: str, check: Check) -> None:
        """Add a liveness check served under ``/healthz``.

        Raises:
            ValueError: the name is empty or taken.
            TypeError: ``check`` is not callable.
        """
        self._healthz.add(name, check)

    def add_readyz_check(self, name: str, check: Check) -> None:
        """Add a readiness check served under ``/readyz``.

        Raises:
            ValueError: the name is empty or taken.
            TypeError: ``check`` is not callable.
        """
        self._readyz.add(name, check)

    def _check_open_locked(self, what: str) -> None:
        if self._state in ("stopping", "stopped"):
            raise RuntimeError(f"Manager.{what}: the manager is {self._state}")

    # ------------------------------------------------------------------------------ checks

    def _all_informers(self) -> list[tuple[str, SharedIndexInformer[Any]]]:
        """Every informer (standalone and the factories'), named uniquely for the checks."""
        with self._lock:
            informers = list(self._informers)
            factories = list(self._factories)
        for factory in factories:
            informers.extend(factory.informers().values())
        out: list[tuple[str, SharedIndexInformer[Any]]] = []
        seen: set[int] = set()
        names: dict[str, int] = {}
        for informer in informers:
            if id(informer) in seen:
                continue
            seen.add(id(informer))
            base = f"informer/{getattr(informer, 'name', type(informer).__name__)}"
            names[base] = names.get(base, 0) + 1
            out.append((base if names[base] == 1 else f"{base}#{names[base]}", informer))
        return out

    def healthz(self) -> list[CheckResult]:
        """Run the liveness checks (what ``/healthz`` serves)."""
        return self._results(informer_health, controller_health, self._healthz)

    def readyz(self) -> list[CheckResult]:
        """Run the readiness checks (what ``/readyz`` serves)."""
        return self._results(informer_synced, controller_started, self._readyz)

    def _results(
        self,
        informer_check: Callable[[str, SharedIndexInformer[Any]], CheckResult],
        controller_check: Callable[[Controller], CheckResult],
        custom: Checks,
    ) -> list[CheckResult]:
        with self._lock:
            controllers = list(self._controllers)
        return [
            *(informer_check(name, informer) for name, informer in self._all_informers()),
            *(controller_check(controller) for controller in controllers),
            *custom.results(),
        ]

    # ---------------------------------------------------------------------------- running

    def start(self) -> None:
        """Start the ops server, then the informers, then the controllers. Does not block.

        Raises:
            RuntimeError: the manager was already started or stopped.
            OSError: the ops server cannot bind its address (nothing else was started).
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"Manager.start: the manager is {self._state}; it runs once")
            if self._port is not None:
                # Bound under the lock: a concurrent second start() must not bind twice.
                self._server = OpsServer(
                    self._bind_address,
                    self._port,
                    self._registry,
                    {"healthz": self.healthz, "readyz": self.readyz},
                )
                self._server.start()
                log.info("manager: serving /healthz, /readyz and /metrics on %s", self._server.url)
            self._state = "running"
            self._changed.notify_all()
            factories = list(self._factories)
            controllers = list(self._controllers)
            for informer in self._informers:
                self._start_informer_locked(informer)
        for factory in factories:
            factory.start(self._informer_stop)
        for controller in controllers:
            controller.start(on_error=self._controller_failed)

    def _start_informer_locked(self, informer: SharedIndexInformer[Any]) -> None:
        thread = threading.Thread(
            target=informer.run,
            args=(self._informer_stop,),
            name=f"nvinformers-informer-{getattr(informer, 'name', 'informer')}",
            daemon=True,
        )
        self._informer_threads.append(thread)
        thread.start()

    def run(self, stop: threading.Event | None = None) -> None:
        """Start (unless started) and block until ``stop`` is set, a signal arrives or a
        controller fails; then stop in order (see the module docstring).

        On the main thread, SIGTERM and SIGINT set the stop (through
        :class:`~nvinformers.signals.SignalStop`); a second signal ends the process at once with
        130 or 143 if the graceful stop hangs. The manager sets ``stop`` itself when it stops
        for another reason.

        Raises:
            RuntimeError: the manager was already stopped.
            CacheSyncTimeoutError, ReconcilePanicError: a controller failed (the manager was
                stopped first).
        """
        event = threading.Event() if stop is None else stop
        with self._lock:
            if self._state in ("stopping", "stopped"):
                raise RuntimeError(f"Manager.run: the manager is {self._state}; it runs once")
            self._run_event = event
            if self._errors:
                event.set()
            start = self._state == "new"
        # The handler never sets the event itself (that could deadlock this thread inside
        # event.wait()); a second signal ends the process at once (SignalStop).
        with SignalStop(event) as signals:
            signals.on_stop(
                lambda: log.info(
                    "manager: received %s, stopping (send it again to force)",
                    signal.Signals(signals.signum).name if signals.signum else "a signal",
                )
            )
            try:
                if start:
                    self.start()
                event.wait()
            finally:
                self.stop()
        error = self.error()
        if error is not None:
            raise error

    def _controller_failed(self, error: BaseException) -> None:
        log.error("manager: %s; stopping the manager", error)
        with self._lock:
            self._errors.append(error)
            event = self._run_event
        if event is not None:
            event.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop controllers, then informers and factories, then the ops server. Idempotent.

        Blocks until done or ``timeout`` (default ``shutdown_timeout``) has passed; a second
        caller waits for the first one's stop.

        Returns:
            True if every component stopped (and every thread was joined) in time.
        """
        limit = self._shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._lock:
            if self._state in ("stopping", "stopped"):
                return self._changed.wait_for(lambda: self._state == "stopped", limit)
            self._state = "stopping"
            self._changed.notify_all()
            controllers = list(self._controllers)
            factories = list(self._factories)
            threads = list(self._informer_threads)
            server = self._server
            run_event = self._run_event
        if run_event is not None:
            run_event.set()
        log.info("manager: stopping %d controller(s)", len(controllers))

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        ok = True
        for controller in controllers:
            controller.stop(wait=False)
        for controller in controllers:
            ok = controller.stop(remaining()) and ok
        self._informer_stop.set()
        for factory in factories:
            factory.shutdown(timeout=remaining())
        for thread in threads:
            thread.join(remaining())
            ok = ok and not thread.is_alive()
        if server is not None:
            ok = server.stop(remaining()) and ok
        with self._lock:
            self._state = "stopped"
            self._changed.notify_all()
        log.info("manager: stopped%s", "" if ok else " (some components did not stop in time)")
        return ok

    def __enter__(self) -> Manager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
