"""Request options: the Python peers of ``metav1.ListOptions`` and ``metav1.GetOptions``.

Both are frozen, keyword-only dataclasses; derive a changed copy with :func:`dataclasses.replace`.
Every field is sent on the wire (unlike NVIDIA's January Go client, which dropped all but the
resource version). An empty string or None means "not set".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ListOptions",
    "GetOptions",
    "RESOURCE_VERSION_MATCH_NOT_OLDER_THAN",
    "RESOURCE_VERSION_MATCH_EXACT",
    "INITIAL_EVENTS_END_ANNOTATION",
]

#: ``resource_version_match`` value required with ``send_initial_events`` (streaming list).
RESOURCE_VERSION_MATCH_NOT_OLDER_THAN = "NotOlderThan"
#: ``resource_version_match`` value for an exact-revision list.
RESOURCE_VERSION_MATCH_EXACT = "Exact"
#: Annotation carried by the bookmark that ends the initial ADDED burst of a streaming list.
INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"


@dataclass(frozen=True, slots=True, kw_only=True)
class ListOptions:
    """Options of a list or watch call.

    Attributes:
        label_selector: Kubernetes label selector (``rack=a,!drained``); "" selects everything.
        resource_version: list: the revision to read at; watch: deliver changes strictly after it
            ("" or "0": first an ADDED event for every existing object).
        resource_version_match: "" or ``"NotOlderThan"`` / ``"Exact"``.
        timeout_seconds: watch: the server ends the stream cleanly after this many seconds.
        allow_watch_bookmarks: watch: ask the server for BOOKMARK progress events.
        send_initial_events: watch: stream the initial state then a bookmark annotated
            ``k8s.io/initial-events-end`` (needs ``resource_version_match="NotOlderThan"``).
    """

    label_selector: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    timeout_seconds: int | None = None
    allow_watch_bookmarks: bool = False
    send_initial_events: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetOptions:
    """Options of a get call.

    Attributes:
        resource_version: "" reads the latest state; a revision reads at least that fresh.
    """

    resource_version: str = ""
