"""The reconcile loop: controller-runtime's ``Controller`` and ``Manager`` for nvinformers.

Layers, each depending only on the ones above it (controller-runtime's packages):

* :mod:`~nvinformers.controller._reconcile` — :class:`Request`, :class:`Result`,
  :class:`TerminalError`, :class:`Reconciler`: the contract;
* :mod:`~nvinformers.controller._event` — the events informers produce;
* :mod:`~nvinformers.controller.predicates` — which events matter;
* :mod:`~nvinformers.controller.handler` — which requests an event produces;
* :mod:`~nvinformers.controller._source` — what a controller watches (informer, handler,
  predicates);
* :mod:`~nvinformers.controller._core` — the controller core: workqueue, watches, lifecycle and
  the reconcile table applied, shared by two drivers: :class:`Controller` (worker threads,
  :mod:`~nvinformers.controller._controller`) and :class:`nvinformers.aio.AsyncController`
  (worker tasks);
* :mod:`~nvinformers.controller._healthz` — health and readiness checks;
* :mod:`~nvinformers.controller._manager` — :class:`Manager`: informers and controllers together,
  with ``/healthz``, ``/readyz`` and ``/metrics`` (served by :mod:`~nvinformers.controller.
  _server`).

Example::

    from nvinformers.controller import Controller, Manager, Request, Result, predicates

    lister = factory.device().v1alpha1().gpus().lister()

    def reconcile(request: Request) -> Result:
        gpu = lister.get(request.name)
        ...
        return Result()

    ctl = Controller("gpu-health", reconcile, max_concurrent_reconciles=2)
    ctl.watch(
        factory.device().v1alpha1().gpus(),
        predicates=[predicates.resource_version_changed_predicate()],
    )
    mgr = Manager(port=8081)
    mgr.add_informer_factory(factory)
    mgr.add_controller(ctl)
    mgr.run()                      # until SIGTERM / SIGINT

This package never imports gRPC (checked by import-linter).
"""

from nvinformers.controller import handler, predicates
from nvinformers.controller._controller import Controller
from nvinformers.controller._core import CacheSyncTimeoutError, ReconcilePanicError
from nvinformers.controller._event import CreateEvent, DeleteEvent, UpdateEvent
from nvinformers.controller._healthz import Check, CheckResult
from nvinformers.controller._manager import Manager
from nvinformers.controller._reconcile import (
    AsyncReconciler,
    Reconciler,
    Request,
    Result,
    TerminalError,
    is_terminal_error,
)
from nvinformers.controller.handler import (
    EnqueueRequestForObject,
    EnqueueRequestsFromMapFunc,
    EventHandler,
    EventHandlerFuncs,
    MapFunc,
    RequestQueue,
    enqueue_mapped,
    enqueue_request_for_object,
)
from nvinformers.controller.predicates import (
    Funcs,
    Predicate,
    and_,
    annotation_changed_predicate,
    generation_changed_predicate,
    label_changed_predicate,
    label_selector_predicate,
    new_predicate_funcs,
    not_,
    or_,
    resource_version_changed_predicate,
)

__all__ = [
    # the reconcile contract
    "Request",
    "Result",
    "TerminalError",
    "Reconciler",
    "AsyncReconciler",
    # controller and manager
    "Controller",
    "CacheSyncTimeoutError",
    "ReconcilePanicError",
    "is_terminal_error",
    "Manager",
    "Check",
    "CheckResult",
    # events
    "CreateEvent",
    "UpdateEvent",
    "DeleteEvent",
    # event handlers
    "handler",
    "EventHandler",
    "RequestQueue",
    "MapFunc",
    "EnqueueRequestForObject",
    "EnqueueRequestsFromMapFunc",
    "EventHandlerFuncs",
    "enqueue_request_for_object",
    "enqueue_mapped",
    # predicates
    "predicates",
    "Predicate",
    "Funcs",
    "new_predicate_funcs",
    "resource_version_changed_predicate",
    "generation_changed_predicate",
    "label_changed_predicate",
    "annotation_changed_predicate",
    "label_selector_predicate",
    "and_",
    "or_",
    "not_",
]
