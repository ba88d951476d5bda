"""The package's public surface: every name in ``nvinformers.kube.__all__`` imports from it."""

from __future__ import annotations

import pytest

from nvinformers import kube

PUBLIC = {
    "KubeObject",
    "KubeList",
    "ObjectMeta",
    "ListMeta",
    "Labels",
    "Condition",
    "EMPTY_LABELS",
    "parse_list",
    "strip_managed_fields",
    "KubeListWatch",
    "KubeWatch",
    "decode_event",
    "error_from_status",
    "error_from_api_exception",
    "new_informer",
    "new_node_informer",
    "new_pod_informer",
    "lister_for",
    "KubeLister",
    "KubeNamespaceLister",
    "not_found",
}


def test_public_names() -> None:
    assert set(kube.__all__) == PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_imports_from_the_package(name: str) -> None:
    exec(f"from nvinformers.kube import {name}", {})  # raises ImportError if it does not
