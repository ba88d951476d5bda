"""Every code block of every README runs, so the documentation cannot drift from the code.

Which files: every ``README.md`` of the repository (the top one, the examples', the
benchmarks') and ``docs/pypi.md`` (the package index's description). Blocks are found by
parsing the files, so a block added tomorrow is run tomorrow. The rules:

* ``python`` blocks run with this interpreter, ``sh`` blocks with ``bash -e -o pipefail``, from
  the repository root, with ``NVIDIA_DEVICE_API_TARGET`` pointing at a fresh fake Device API
  server. ``/tmp/nvdapi.sock`` and ``/tmp/fake-kube.kubeconfig`` are replaced by private paths
  and ``.venv/bin/`` by this interpreter's directory (which also heads ``PATH``, as after
  ``pip install``), so blocks never meet each other or anything else on the machine.
  A block must exit 0 and print no traceback.
* A block that runs a program until it is stopped says so on that line: ``# runs until Ctrl-C``,
  optionally followed by ``; ready once it prints "TEXT"``. Once it has printed TEXT (else its
  first line), the test presses Ctrl-C: SIGINT to the block's process group, as a terminal does
  (background jobs of a script ignore it, as in a terminal). The program must then stop cleanly.
* Blocks that are not code say what they are with their language: ``text`` (output, diagrams),
  ``yaml``, ``json``. A block with no language fails the test: it may be code that nobody runs.
* A ``python`` or ``sh`` block that cannot run here starts with the visible comment
  ``# Not run by the tests: <why>`` and is reported as skipped, with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nvinformers.testing import FakeServer
from tests.e2e.procs import ROOT, Background

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 60.0
RUNNABLE = {"python", "sh"}
NOT_CODE = {"text", "yaml", "json"}
NOT_RUN = re.compile(r"#\s*Not run by the tests:\s*(.*\S)")
DAEMON = re.compile(r'#.*runs until Ctrl-C(?:; ready once it prints "([^"]+)")?')
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    readmes = [p for p in ROOT.rglob("README.md") if not {".venv", "node_modules"} & set(p.parts)]
    return sorted([*readmes, ROOT / "docs" / "pypi.md"])


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start = index
        end = next((i for i in range(index + 1, len(lines)) if lines[i].rstrip() == "```"), None)
        assert end is not None, f"{path}:{start + 1}: unterminated code block"
        yield Block(path, start + 1, match.group(1), "\n".join(lines[start + 1 : end]) + "\n")
        index = end + 1


ALL_BLOCKS = [block for doc in documents() for block in blocks(doc)]


def test_every_document_is_found_and_has_blocks() -> None:
    names = {str(p.relative_to(ROOT)) for p in documents()}
    assert {
        "README.md",
        "docs/pypi.md",
        "examples/basic-client/README.md",
        "examples/streaming-daemon/README.md",
        "examples/controller-shim/README.md",
        "examples/kopf-operator/README.md",
    } <= names
    assert len([b for b in ALL_BLOCKS if b.language in RUNNABLE]) >= 10


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: f"{b.id}-{b.language or 'bare'}")
def test_every_block_says_what_it_is(block: Block) -> None:
    assert block.language in RUNNABLE | NOT_CODE, (
        f"{block.id}: a code block needs a language: python or sh (run by this test), or "
        f"{', '.join(sorted(NOT_CODE))} (not code); got {block.language or 'none'!r}"
    )


@pytest.fixture
def device_api() -> Iterator[FakeServer]:
    with FakeServer(flip_interval=None, seed=1) as server:
        yield server


@pytest.fixture
def private_dir() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="nvdocs-", dir="/tmp")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


RUN_BLOCKS = [b for b in ALL_BLOCKS if b.language in RUNNABLE]


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=lambda b: f"{b.id}-{b.language}")
def test_every_code_block_runs(block: Block, device_api: FakeServer, private_dir: str) -> None:
    first = block.code.lstrip().splitlines()[0]
    not_run = NOT_RUN.match(first)
    if not_run:
        pytest.skip(f"{block.id}: {not_run.group(1)}")
    assert "Not run by the tests" not in block.code, f"{block.id}: the marker must come first"
    code = block.code.replace("/tmp/nvdapi.sock", os.path.join(private_dir, "nvdapi.sock"))
    code = code.replace("/tmp/fake-kube.kubeconfig", os.path.join(private_dir, "kubeconfig"))
    code = code.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    script = Path(private_dir) / ("block.py" if block.language == "python" else "block.sh")
    script.write_text(code)
    program, args = (
        (sys.executable, [str(script)])
        if block.language == "python"
        else ("bash", ["-e", "-o", "pipefail", str(script)])
    )
    bin_dir = str(Path(sys.executable).parent)  # `nvinformers` as after `pip install`
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    run = Background(
        *args, program=program, new_session=True,
        NVIDIA_DEVICE_API_TARGET=device_api.target, PATH=path,
    )  # fmt: skip
    daemon = DAEMON.search(block.code)
    if daemon is not None:
        run.expect(daemon.group(1) or "", timeout=RUN_TIMEOUT)  # "" matches the first line
        run.send(signal.SIGINT)  # Ctrl-C, to the process group
    exit_code = run.wait(RUN_TIMEOUT)
    assert exit_code == 0, f"{block.id} exited {exit_code}:\n{run.output}"
    assert "Traceback" not in run.output, f"{block.id}:\n{run.output}"
