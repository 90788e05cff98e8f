"""How the agent's /files handlers read a sandbox (the blocking part they run in a
thread): only files directly in the sandbox, nothing past the end, and a file gone
since it was listed reads as missing rather than failing the request."""

from __future__ import annotations

from pathlib import Path

from orbiter.agent.http_api import _find_sandbox, _listing, _read_range


def _sandbox(tmp_path: Path) -> Path:
    sandbox = tmp_path / "sandboxes" / "fw-1" / "t1"
    sandbox.mkdir(parents=True)
    (sandbox / "stdout").write_bytes(b"hello\n")
    (sandbox / "sub").mkdir()
    (tmp_path / "secret").write_text("not yours")
    (sandbox / "out").symlink_to(tmp_path / "secret")
    return sandbox.resolve()


def test_a_file_reads_from_its_offset_and_past_the_end_is_empty(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    assert _read_range(sandbox, "stdout", 0, 100) == b"hello\n"
    assert _read_range(sandbox, "stdout", 2, 2) == b"ll"
    assert _read_range(sandbox, "stdout", 6, 100) == b""
    assert _read_range(sandbox, "stdout", 10**12, 100) == b""


def test_only_files_directly_in_the_sandbox_are_read(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    for name in ("nope", "sub", "out", "../../../secret", "sub/../../t1/stdout/x"):
        assert _read_range(sandbox, name, 0, 100) is None, name
    assert [f["path"] for f in _listing(sandbox)] == ["stdout"]


def test_a_sandbox_is_found_only_under_the_work_dirs_sandboxes(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    assert _find_sandbox(tmp_path, "fw-1", "t1") == (sandbox, None)  # no owner kept
    assert _find_sandbox(tmp_path, "fw-1", "t2") == (None, None)
    assert _find_sandbox(tmp_path, "..", "secret") == (None, None)
    assert _find_sandbox(tmp_path, "fw-1", "x" * 5000) == (None, None)  # ENAMETOOLONG
