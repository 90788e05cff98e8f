"""docs/configuration.md is generated from the schema that validates the file: no drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orbiter import cli
from orbiter.config import DEFAULT_RULES, SCHEMA, Key, Section, load_config, reference

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert DOCS.read_text() == reference(), (
        "docs/configuration.md differs from orbiter/config.py's SCHEMA: run `make docs` "
        "(orbiter config reference --output docs/configuration.md) and commit it"
    )


def _keys(section: Section, where: str = "") -> list[str]:
    out = []
    for e in section.entries:
        at = f"{where}.{e.name}" if where else e.name
        out += _keys(e, at) if isinstance(e, Section) else [at]
    return out


def test_the_reference_names_every_key_with_its_type_default_and_example() -> None:
    text = reference()
    for path in _keys(SCHEMA):
        name = path.rsplit(".", 1)[-1]
        assert f"| `{name}` |" in text, path
    assert "Relative paths in it resolve against the folder the file is in" in text
    assert "rule_files" in text and "resolve against the configuration file's folder" in text
    assert "| `scrape_interval` | duration | `15s` | `15s` |" in text
    assert all(isinstance(e, Key | Section) for e in SCHEMA.entries)


def test_the_complete_example_in_the_reference_is_a_valid_file(tmp_path: Path) -> None:
    example = reference().split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "alerts").mkdir()
    shutil.copy(DEFAULT_RULES, tmp_path / "alerts" / "default.rules.yml")
    (tmp_path / "alertmanager.yml").write_text("route: {receiver: r}\nreceivers: [{name: r}]\n")
    (tmp_path / "certs").mkdir()
    for name in ("certs/master.pem", "certs/master.key", "certs/ca.pem", "credentials.yml"):
        (tmp_path / name).write_text("placeholder: the loader checks only that it exists\n")
    path = tmp_path / "orbiter.yml"
    path.write_text(example)
    cfg = load_config(path)
    assert cfg.master.advertise_host == "master1.example.org"
    assert cfg.satellite.policy.window_seconds == 600


def test_orbiter_config_reference_writes_the_file_and_check_reports_every_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "configuration.md"
    assert cli.main(["config", "reference", "--output", str(out)]) == 0
    assert out.read_text() == reference()
    bad = tmp_path / "orbiter.yml"
    bad.write_text("satelite: {}\nagent:\n  wach_paths: [/tmp]\n")
    assert cli.main(["config", "check", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}:1: unknown key satelite; did you mean satellite?",
        f"{bad}:3: unknown key agent.wach_paths; did you mean agent.watch_paths?",
    ]
