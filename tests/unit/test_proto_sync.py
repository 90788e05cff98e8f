"""The generated protobuf code must match the .proto files (run `make proto`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "orbiter" / "proto"
PROTOS = sorted(PROTO_DIR.glob("*.proto"))


def _generate(out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--pyi_out={out}",
            *[str(p.relative_to(ROOT)) for p in PROTOS],
        ],
        cwd=ROOT,
        check=True,
    )


def test_there_are_protos() -> None:
    assert {p.stem for p in PROTOS} >= {"messages", "scheduler", "agent", "master"}


@pytest.mark.parametrize("suffix", ["_pb2.py", "_pb2_grpc.py", "_pb2.pyi"])
def test_generated_code_matches_the_proto_files(tmp_path: Path, suffix: str) -> None:
    _generate(tmp_path)
    for proto in PROTOS:
        fresh = tmp_path / "orbiter" / "proto" / f"{proto.stem}{suffix}"
        committed = PROTO_DIR / f"{proto.stem}{suffix}"
        assert committed.exists(), f"{committed.name} is missing: run `make proto`"
        assert committed.read_text() == fresh.read_text(), (
            f"{committed.name} is out of date with {proto.name}: run `make proto`"
        )
