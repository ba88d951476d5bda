"""Generate the protobuf and gRPC modules from proto/, or check that the checked-in ones are fresh.

Usage:
    python scripts/genproto.py --out .      # (re)write nvinformers/api/device/v1alpha1/*_pb2*.py[i]
    python scripts/genproto.py --check      # exit 1 and name the stale files if they differ

Generation uses the pinned grpcio-tools (protoc) and mypy-protobuf (the .pyi stubs) from the dev
extra, so the output is byte-for-byte reproducible on any machine.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GEN_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _protos() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _plugin(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        found = shutil.which(name)
        if found is None:
            raise SystemExit(f"{name} not found; run 'make venv' first")
        return found
    return str(exe)


def generate(out: Path) -> list[Path]:
    """Run protoc over every file under proto/ into ``out``; return the files written."""
    protos = _protos()
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    # mypy-protobuf announces every stub it writes ("Writing mypy to ..."); keep protoc's output
    # for failures, so that `make test` shows our result, not our tools' chatter.
    result = subprocess.run(cmd, check=False, cwd=PROTO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise subprocess.CalledProcessError(result.returncode, cmd)
    written = []
    for proto in protos:
        stem = proto.relative_to(PROTO_ROOT).with_suffix("")
        for suffix in GEN_SUFFIXES:
            path = out / f"{stem}{suffix}"
            if path.exists():
                written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write the generated modules under this root")
    group.add_argument("--check", action="store_true", help="fail when checked-in code is stale")
    args = parser.parse_args()
    if args.out is not None:
        for path in generate(args.out.resolve()):
            print(f"wrote {path.relative_to(args.out.resolve())}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = []
        for path in fresh:
            rel = path.relative_to(tmp)
            current = ROOT / rel
            if not current.exists() or not filecmp.cmp(path, current, shallow=False):
                stale.append(str(rel))
    if stale:
        print("generated code is stale; run 'make proto' and commit:", *stale, sep="\n  ")
        return 1
    print(f"generated code is fresh ({len(fresh)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
