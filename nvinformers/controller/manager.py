"""Manager: runs informers and controllers together, with health and metrics over HTTP.

A small peer of controller-runtime's ``manager.Manager``::

    mgr = Manager(port=8081)                         # binds 127.0.0.1 unless told otherwise
    mgr.add_informer_factory(factory)
    mgr.add_controller(Controller("gpu-health", reconcile))
    mgr.add_readyz_check("db", lambda: db.ping())
    mgr.run()                                        # blocks until SIGTERM / SIGINT

Start order (:meth:`Manager.start`): the ops HTTP server first, so that probes get answers (not
ready) during start-up; then the informers (factories and standalone ones); then the controllers,
each of which waits for its own caches to sync before starting its workers.

Stop order (:meth:`Manager.stop`, also at the end of :meth:`Manager.run`): the controllers first
(reconciles in progress finish, queued requests are dropped), then the informers and factories
(their threads are joined), then the HTTP server — each step bounded by what is left of
``shutdown_timeout``. Controllers go first so that no reconcile runs against a stopped cache.

The ops server (stdlib ``http.server``, one thread per request) answers ``GET``/``HEAD``:

``/healthz`` (liveness)
    every informer is healthy per :meth:`~nvinformers.cache.SharedIndexInformer.health` (synced,
    a working watch, not silent beyond its inactivity limit), no controller has failed (cache
    sync timeout, unrecovered panic), and every ``add_healthz_check`` check passes. Because an
    informer that has not synced yet is not healthy, give the liveness probe an initial delay
    (or a failure threshold) that covers the first list.
``/readyz`` (readiness)
    every informer has synced, every controller has started its workers, and every
    ``add_readyz_check`` check passes.
``/healthz/<check>``, ``/readyz/<check>``
    one check only (``informer/<name>``, ``controller/<name>`` or a custom name).
``/metrics``
    the Prometheus exposition of ``registry`` (OpenMetrics when the scraper asks for it).

Health responses are 200 when every check passes and 503 otherwise, with one line per check in
the Kubernetes style (``[+]informer/gpus ok``, ``[-]controller/x failed: reason``) or, with
``?format=json`` or ``Accept: application/json``, ``{"status": "ok"|"failed", "checks": [{"name",
"ok", "reason"}]}``. A check is a function of no arguments that passes when it returns None or
True and fails when it returns False or raises (the exception's message is the reason). Checks run
on the request's thread: keep them fast.

Security: the server binds 127.0.0.1 by default; it exposes metrics and health only, no
mutation, and binding another address (``bind_address="0.0.0.0"``) is an explicit choice.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from nvinformers.controller.controller import DEFAULT_SHUTDOWN_TIMEOUT, Controller
from nvinformers.signals import SignalStop

if TYPE_CHECKING:
    from nvinformers.cache.shared_informer import SharedIndexInformer

__all__ = ["Manager", "Check", "CheckResult", "InformerFactory"]

log = logging.getLogger("nvinformers.controller")

#: A health or readiness check: passes when it returns None or True; fails when it returns False
#: or raises (the exception's message is the reason).
Check = Callable[[], object]

#: Seconds a request's socket may stay idle before the server drops it.
_REQUEST_TIMEOUT = 10.0


class InformerFactory(Protocol):
    """What the manager needs of a :class:`~nvinformers.informers.SharedInformerFactory`."""

    def start(self, stop: threading.Event | None = None) -> None: ...

    def shutdown(self, timeout: float | None = None) -> None: ...

    def informers(self) -> Mapping[str, SharedIndexInformer[Any]]: ...


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    ok: bool
    reason: str = ""


def _run_check(name: str, check: Check) -> CheckResult:
    try:
        outcome = check()
    except Exception as exc:
        return CheckResult(name, False, str(exc) or type(exc).__name__)
    if outcome is False:
        return CheckResult(name, False, "check returned False")
    return CheckResult(name, True)


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
        self._healthz: dict[str, Check] = {}
        self._readyz: dict[str, Check] = {}
        self._errors: list[BaseException] = []
        # Set by stop(), by a failing controller and by signals; run() waits on it.
        self._run_event: threading.Event | None = None
        # Stops the informers and factories (after the controllers).
        self._informer_stop = threading.Event()
        self._server: _OpsServer | None = None
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
        self._add_check(self._healthz, "healthz", name, check)

    def add_readyz_check(self, name: str, check: Check) -> None:
        """Add a readiness check served under ``/readyz``.

        Raises:
            ValueError: the name is empty or taken.
            TypeError: ``check`` is not callable.
        """
        self._add_check(self._readyz, "readyz", name, check)

    def _add_check(self, table: dict[str, Check], kind: str, name: str, check: Check) -> None:
        if not isinstance(name, str) or not name or name.startswith(("informer/", "controller/")):
            raise ValueError(
                f"add_{kind}_check: name must be a non-empty string not starting with "
                f"'informer/' or 'controller/' (reserved for the built-in checks), got {name!r}"
            )
        if not callable(check):
            raise TypeError(f"add_{kind}_check({name!r}): check must be callable, got {check!r}")
        with self._lock:
            if name in table:
                raise ValueError(f"add_{kind}_check: a check named {name!r} already exists")
            table[name] = check

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
        results: list[CheckResult] = []
        for name, informer in self._all_informers():
            health = informer.health()
            results.append(
                CheckResult(name, health.healthy, "" if health.healthy else health.reason)
            )
        with self._lock:
            controllers = list(self._controllers)
            custom = list(self._healthz.items())
        for controller in controllers:
            error = controller.error()
            name = f"controller/{controller.name}"
            results.append(CheckResult(name, error is None, "" if error is None else str(error)))
        results.extend(_run_check(name, check) for name, check in custom)
        return results

    def readyz(self) -> list[CheckResult]:
        """Run the readiness checks (what ``/readyz`` serves)."""
        results: list[CheckResult] = []
        for name, informer in self._all_informers():
            synced = informer.has_synced()
            results.append(CheckResult(name, synced, "" if synced else "not synced"))
        with self._lock:
            controllers = list(self._controllers)
            custom = list(self._readyz.items())
        for controller in controllers:
            started = controller.started
            name = f"controller/{controller.name}"
            results.append(CheckResult(name, started, "" if started else controller.status()))
        results.extend(_run_check(name, check) for name, check in custom)
        return results

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
                self._server = _OpsServer(self, self._bind_address, self._port)
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
        restore = _install_signal_handlers(event)
        try:
            if start:
                self.start()
            event.wait()
        finally:
            try:
                self.stop()
            finally:
                restore()
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


def _install_signal_handlers(event: threading.Event) -> Callable[[], None]:
    """Make SIGTERM/SIGINT set ``event`` (main thread only); return the undo function.

    Through :class:`~nvinformers.signals.SignalStop`: the handler never sets the event itself
    (that could deadlock the main thread inside ``event.wait()``), and a second signal ends the
    process at once with 130 or 143.
    """
    stop = SignalStop(event)

    def announce() -> None:
        name = signal.Signals(stop.signum).name if stop.signum is not None else "a stop request"
        log.info("manager: received %s, stopping (send it again to force)", name)

    stop.on_stop(announce)
    stop.install()
    return stop.restore


# ------------------------------------------------------------------------------ ops HTTP server


class _OpsHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer whose request threads are named, tracked and joined on close, and
    whose serving loop stops at once (a wake-up pipe instead of ``serve_forever``'s 0.5 s poll).
    """

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a DNS lookup that can hang on
        # machines without DNS); the name is only used for CGI, so skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def __init__(self, manager: Manager, address: tuple[str, int]) -> None:
        self.manager = manager
        self._threads_lock = threading.Lock()
        self._request_threads: set[threading.Thread] = set()
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        try:
            super().__init__(address, _OpsRequestHandler)
        except BaseException:
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise

    def serve_until_closed(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if self._closing:
                    return
                for key, _ in events:
                    if key.fileobj is self.socket:
                        self.handle_request()

    def wake(self) -> None:
        self._closing = True
        os.write(self._wake_w, b"x")

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._process_request_tracked,
            args=(request, client_address),
            name="nvinformers-manager-http-request",
            daemon=True,
        )
        with self._threads_lock:
            self._request_threads.add(thread)
        thread.start()

    def _process_request_tracked(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._threads_lock:
                self._request_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("manager: error while serving an ops request from %s", client_address)

    def close_and_join(self, timeout: float) -> bool:
        self.server_close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._request_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


class _OpsServer:
    """The ops server and its serving thread (``nvinformers-manager-http``)."""

    def __init__(self, manager: Manager, host: str, port: int) -> None:
        self._httpd = _OpsHTTPServer(manager, (host, port))
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_until_closed, name="nvinformers-manager-http", daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        self._httpd.wake()
        self._thread.join(timeout)
        joined = self._httpd.close_and_join(max(0.0, deadline - time.monotonic()))
        return joined and not self._thread.is_alive()


class _OpsRequestHandler(BaseHTTPRequestHandler):
    server: _OpsHTTPServer
    timeout = _REQUEST_TIMEOUT
    server_version = "nvinformers-manager"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("manager: ops request from %s: " + format, self.client_address[0], *args)

    def _serve(self, *, head: bool) -> None:
        path, _, query = self.path.partition("?")
        path = path.rstrip("/") or "/"
        manager = self.server.manager
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(manager.registry), head)
            return
        for kind in ("healthz", "readyz"):
            prefix = f"/{kind}"
            if path == prefix or path.startswith(prefix + "/"):
                results = manager.healthz() if kind == "healthz" else manager.readyz()
                only = path[len(prefix) + 1 :]
                if only:
                    results = [r for r in results if r.name == only]
                    if not results:
                        self._send(
                            404, "text/plain; charset=utf-8", f"no check {only!r}\n".encode(), head
                        )
                        return
                self._send_checks(
                    kind, results, _wants_json(self.headers.get("Accept", ""), query), head
                )
                return
        self._send(
            404, "text/plain; charset=utf-8", b"not found: try /healthz, /readyz, /metrics\n", head
        )

    def _send_checks(
        self, kind: str, results: Iterable[CheckResult], as_json: bool, head: bool
    ) -> None:
        results = list(results)
        ok = all(r.ok for r in results)
        if as_json:
            body = json.dumps(
                {
                    "status": "ok" if ok else "failed",
                    "checks": [{"name": r.name, "ok": r.ok, "reason": r.reason} for r in results],
                },
                indent=2,
            ).encode()
            content_type = "application/json"
        else:
            lines = [
                f"[+]{r.name} ok" if r.ok else f"[-]{r.name} failed: {r.reason}" for r in results
            ]
            lines.append(f"{kind} check {'passed' if ok else 'failed'}")
            body = ("\n".join(lines) + "\n").encode()
            content_type = "text/plain; charset=utf-8"
        self._send(200 if ok else 503, content_type, body, head)

    def _send(self, status: int, content_type: str, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _wants_json(accept: str, query: str) -> bool:
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    if params.get("format") == "json":
        return True
    return "application/json" in accept
