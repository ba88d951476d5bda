"""What users install: the published metadata carries the runtime dependencies only, the package
index gets a description whose links work there, and ``dir(nvinformers)`` shows the API."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import nvinformers
import nvinformers.testing

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = {"grpcio", "protobuf", "cachetools", "prometheus-client"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert match is not None, requirement
    return match.group(0).lower().replace("_", "-")


def test_no_tooling_pin_is_published() -> None:
    project = PYPROJECT["project"]
    published = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        published.extend(extra)
    assert {_name(r) for r in project["dependencies"]} == RUNTIME
    assert not [r for r in published if "==" in r], "exact pins belong to the dev group"
    assert set(project.get("optional-dependencies", {})) == {"kube", "testing"}
    # The tools stay pinned (reproducible `make test`), in a group that is never published.
    dev = PYPROJECT["dependency-groups"]["dev"]
    assert all("==" in r for r in dev)
    assert {"pytest", "mypy", "ruff", "matplotlib"} <= {_name(r) for r in dev}


def test_the_installed_metadata_requires_the_runtime_dependencies_only() -> None:
    requires = metadata.requires("nvinformers") or []
    unconditional = {_name(r) for r in requires if "extra ==" not in r}
    assert unconditional == RUNTIME
    assert {_name(r) for r in requires if "extra ==" in r} == {"kubernetes", "grpcio-reflection"}
    assert metadata.metadata("nvinformers")["License-Expression"] == "Apache-2.0"


def test_the_package_index_description_has_no_relative_links() -> None:
    readme = PYPROJECT["project"]["readme"]
    text = (ROOT / readme).read_text()
    links = re.findall(r"\]\(([^)]+)\)", text) + re.findall(r'(?:href|src)="([^"]+)"', text)
    assert [link for link in links if not re.match(r"https?://", link)] == []
    assert isinstance(PYPROJECT["project"]["license"], str)  # an SPDX expression


def test_dir_lists_the_lazy_names_and_each_is_the_object_of_its_home_package() -> None:
    from nvinformers import clientset, options
    from nvinformers.api.device import v1alpha1

    homes = {
        "__version__": metadata.version("nvinformers"),
        "Config": clientset.Config,
        "GPU": v1alpha1.GPU,
        "GPUList": v1alpha1.GPUList,
        "Condition": v1alpha1.Condition,
        "ListOptions": options.ListOptions,
        "GetOptions": options.GetOptions,
    }
    assert set(nvinformers.__all__) == set(homes)
    names = dir(nvinformers)
    for name in nvinformers.__all__:
        assert name in names
        if name == "__version__":
            assert nvinformers.__version__ == homes[name]
        else:  # `nvinformers.GPU is nvinformers.api.device.v1alpha1.GPU`: one class, not a copy
            assert getattr(nvinformers, name) is homes[name], name
    for sub in ("cache", "clientset", "informers", "signals", "testing", "workqueue"):
        assert sub in names
        assert getattr(nvinformers, sub).__name__ == f"nvinformers.{sub}"
    assert {"FakeServer", "FakeKubeAPIServer", "main_fake_server"} <= set(dir(nvinformers.testing))


def test_the_proto_freshness_check_prints_its_result_only() -> None:
    # `make test` starts with it: a newcomer's first screen shows our line, not the plugins'.
    result = subprocess.run(
        [sys.executable, "scripts/genproto.py", "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.fullmatch(r"generated code is fresh \(\d+ files\)\n", result.stdout)
