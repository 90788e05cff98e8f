"""Orbiter as a stranger gets it: a wheel built from a clean copy of the tree,
installed without extras into a fresh virtual environment, then `orbiter up`.

Dependencies come from the package index pip reaches here (its usual
configuration); nothing is imported from this checkout by the installed
`orbiter`. Building takes seconds, installing about ten.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ["orbiter/rules/default.rules.yml", "orbiter/rules/default.rules.test.yml"]
# What a checkout holds that a fresh clone does not (and that must not leak into the wheel).
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".orbiter", ".pytest_cache",
    ".ruff_cache", ".hypothesis", ".work", "results",
)  # fmt: skip


def pip(python: Path | str, *args: str, timeout: float = 600) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """orbiter-*.whl built (with build isolation, as `pip install .` does) from a clean copy."""
    base = tmp_path_factory.mktemp("wheel")
    tree = base / "orbiter"
    shutil.copytree(ROOT, tree, symlinks=True, ignore=NOT_IN_A_CLONE)
    pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(base / "dist"), str(tree))
    (built,) = (base / "dist").glob("orbiter-*.whl")
    return built


def requires(metadata: str) -> list[str]:
    """The unconditional Requires-Dist names of a METADATA file (no extras, no markers)."""
    names = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and ";" not in line:
            names.append(re.split(r"[<>=!~ \[]", line.split(":", 1)[1].strip())[0].lower())
    return names


def test_the_wheel_carries_the_rules_proto_and_web_ui_files_and_requires_promql_parser(
    wheel: Path,
) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires_dist = requires(whl.read(metadata).decode())
        test_file = whl.read("orbiter/rules/default.rules.test.yml").decode()
    for path in SHIPPED_RULES:
        assert path in names, f"{path} is not in {wheel.name}"
    protos = sorted(ROOT.glob("orbiter/proto/*.proto")) + sorted(ROOT.glob("orbiter/proto/*.pyi"))
    assert protos
    for path in protos:
        assert f"orbiter/proto/{path.name}" in names, f"{path.name} is not in {wheel.name}"
    ui = sorted(p.name for p in (ROOT / "orbiter" / "webui" / "static").iterdir())
    assert "index.html" in ui and "app.js" in ui
    for name in ui:  # the web UI ships as it is: no build step on the user's machine
        assert f"orbiter/webui/static/{name}" in names, f"{name} is not in {wheel.name}"
    assert "promql-parser" in requires_dist, requires_dist
    # The shipped tests name their rule file next to them, in the package as in alerts/.
    assert "rule_files: [default.rules.yml]" in test_file


def test_orbiter_up_from_a_fresh_venv_without_extras_loads_the_shipped_rules(
    wheel: Path, tmp_path: Path, processes: Any, wait_until: Any
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, orbiter = venv / "bin" / "python", venv / "bin" / "orbiter"
    started = time.monotonic()
    pip(python, "install", str(wheel))
    print(f"pip install {wheel.name} into a fresh venv: {time.monotonic() - started:.1f}s")
    site = Path(
        subprocess.run(
            [str(python), "-c", "import orbiter; print(orbiter.__path__[0])"],
            capture_output=True, text=True, check=True, cwd=tmp_path,
        ).stdout.strip()
    )  # fmt: skip
    assert site.is_relative_to(venv), f"the venv imports orbiter from {site}"

    # The shipped rule tests pass where the package put them.
    shipped = subprocess.run(
        [str(orbiter), "rules", "test", str(site / "rules" / "default.rules.test.yml")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr

    work, log = tmp_path / "work", tmp_path / "up.log"
    up = processes.start(
        [str(orbiter), "up", "--work-dir", str(work), "--port", "0", "--http-port", "0"], log
    )

    def ready() -> str | None:
        if up.poll() is not None:
            raise AssertionError(f"orbiter up exited with {up.returncode}:\n{log.read_text()}")
        text = log.read_text()
        return text if "Ctrl-C stops the cluster" in text else None

    text = wait_until(ready, 60, "orbiter up from the fresh venv to be up")
    rules = re.search(r"satellite\s+own process, pid \d+\s+(\d+) rules", text)
    assert rules and int(rules.group(1)) > 0, text
    http = re.search(r"master HTTP\s+http://([\d.]+:\d+)/", text)
    assert http, text
    with urllib.request.urlopen(f"http://{http.group(1)}/api/v1/rules", timeout=5) as resp:
        groups = json.load(resp)["data"]["groups"]
    assert groups and {g["file"] for g in groups} == {str(site / "rules" / "default.rules.yml")}
    with urllib.request.urlopen(f"http://{http.group(1)}/ui/app.js", timeout=5) as resp:
        assert resp.read() == (site / "webui" / "static" / "app.js").read_bytes()

    up.send_signal(signal.SIGINT)
    assert up.wait(30) == 0, log.read_text()
    assert log.read_text().rstrip().endswith("stopped")
