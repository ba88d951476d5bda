"""Health and readiness checks (controller-runtime's ``pkg/healthz``).

The checker interface is one function of no arguments, :data:`Check`: it passes when it returns
None or True and fails when it returns False or raises (the exception's message is the reason).
Checks run on the HTTP request's thread: keep them fast. :class:`Checks` is a named set of them;
the built-ins judge nvinformers' own components (:func:`informer_health`, :func:`informer_synced`,
:func:`controller_health`, :func:`controller_started`; the :class:`~nvinformers.controller.
Manager` says which ``/healthz`` and ``/readyz`` combine).

:func:`respond` renders results the Kubernetes way: 200 when every check passes and 503
otherwise, one line per check (``[+]informer/gpus ok``, ``[-]controller/x failed: reason``) and a
``healthz check passed|failed`` line, or — with ``?format=json`` or ``Accept: application/json`` —
``{"status": "ok"|"failed", "checks": [{"name", "ok", "reason"}]}``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nvinformers.cache import SharedIndexInformer
    from nvinformers.controller._core import ControllerCore

__all__ = [
    "Check",
    "CheckResult",
    "Checks",
    "run_check",
    "informer_health",
    "informer_synced",
    "controller_health",
    "controller_started",
    "respond",
    "RESERVED_PREFIXES",
]

#: A health or readiness check: passes when it returns None or True; fails when it returns False
#: or raises (the exception's message is the reason).
Check = Callable[[], object]

#: Name prefixes of the built-in checks, which custom checks may not use.
RESERVED_PREFIXES = ("informer/", "controller/")

_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    ok: bool
    reason: str = ""


def run_check(name: str, check: Check) -> CheckResult:
    """Run ``check`` and judge its outcome (see the module docstring). Never raises."""
    try:
        outcome = check()
    except Exception as exc:
        return CheckResult(name, False, str(exc) or type(exc).__name__)
    if outcome is False:
        return CheckResult(name, False, "check returned False")
    return CheckResult(name, True)


class Checks:
    """Named custom checks of one kind (``healthz`` or ``readyz``).

    Thread-safety: :meth:`add` and :meth:`results` may be called from any thread; no lock is
    held while a check runs.

    Args:
        kind: ``"healthz"`` or ``"readyz"`` (for messages).
    """

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._lock = threading.Lock()  # serialises add(); results() reads without it
        self._checks: dict[str, Check] = {}  # replaced, never mutated

    def add(self, name: str, check: Check) -> None:
        """Add ``check`` under ``name``.

        Raises:
            ValueError: the name is empty, taken, or starts with a reserved prefix.
            TypeError: ``check`` is not callable.
        """
        kind = self._kind
        if not isinstance(name, str) or not name or name.startswith(RESERVED_PREFIXES):
            raise ValueError(
                f"add_{kind}_check: name must be a non-empty string not starting with "
                f"'informer/' or 'controller/' (reserved for the built-in checks), got {name!r}"
            )
        if not callable(check):
            raise TypeError(f"add_{kind}_check({name!r}): check must be callable, got {check!r}")
        with self._lock:
            if name in self._checks:
                raise ValueError(f"add_{kind}_check: a check named {name!r} already exists")
            self._checks = {**self._checks, name: check}

    def results(self) -> list[CheckResult]:
        """Run every check, in the order they were added."""
        return [run_check(name, check) for name, check in self._checks.items()]


def informer_health(name: str, informer: SharedIndexInformer[Any]) -> CheckResult:
    """Liveness of an informer: its ``health()``."""
    health = informer.health()
    return CheckResult(name, health.healthy, "" if health.healthy else health.reason)


def informer_synced(name: str, informer: SharedIndexInformer[Any]) -> CheckResult:
    """Readiness of an informer: it has synced."""
    synced = informer.has_synced()
    return CheckResult(name, synced, "" if synced else "not synced")


def controller_health(controller: ControllerCore[Any]) -> CheckResult:
    """Liveness of a controller (``controller/<name>``): it has not failed."""
    error = controller.error()
    return CheckResult(
        f"controller/{controller.name}", error is None, "" if error is None else str(error)
    )


def controller_started(controller: ControllerCore[Any]) -> CheckResult:
    """Readiness of a controller (``controller/<name>``): its workers run."""
    started = controller.started
    return CheckResult(
        f"controller/{controller.name}", started, "" if started else controller.status()
    )


def respond(
    kind: str, results: Iterable[CheckResult], only: str, accept: str, query: str
) -> tuple[int, str, bytes]:
    """Render ``results`` as the HTTP answer to ``/<kind>`` or ``/<kind>/<only>``.

    Args:
        kind: ``"healthz"`` or ``"readyz"``.
        results: every check's result.
        only: the one check asked for ("" for all).
        accept: the request's ``Accept`` header.
        query: the request's query string (``format=json`` asks for JSON).

    Returns:
        ``(status, content type, body)``; 404 when ``only`` names no check.
    """
    results = [r for r in results if not only or r.name == only]
    if only and not results:
        return 404, _TEXT, f"no check {only!r}\n".encode()
    ok = all(r.ok for r in results)
    status = 200 if ok else 503
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    if params.get("format") == "json" or "application/json" in accept:
        checks = [{"name": r.name, "ok": r.ok, "reason": r.reason} for r in results]
        body = {"status": "ok" if ok else "failed", "checks": checks}
        return status, "application/json", json.dumps(body, indent=2).encode()
    lines = [f"[+]{r.name} ok" if r.ok else f"[-]{r.name} failed: {r.reason}" for r in results]
    lines.append(f"{kind} check {'passed' if ok else 'failed'}")
    return status, _TEXT, ("\n".join(lines) + "\n").encode()
