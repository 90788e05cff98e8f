"""deploy/systemd: every unit starts a real `orbiter` subcommand with flags the parser
accepts (with its example environment file), keeps what the README promises (tasks
survive an agent restart), and passes `systemd-analyze verify` where it is installed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orbiter import cli

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNITS = {"orbiter-master.service": "master", "orbiter-agent.service": "agent",
         "orbiter-satellite.service": "satellite"}  # fmt: skip
ENV_FILES = {"master": "master.env.example", "agent": "agent.env.example",
             "satellite": "satellite.env.example"}  # fmt: skip


def unit(name: str) -> dict[str, list[str]]:
    """The [Service]/[Unit]/[Install] keys of a unit file, every value of each."""
    keys: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        keys.setdefault(key, []).append(value)
    return keys


def environment(keys: dict[str, list[str]], env_file: str = "") -> dict[str, str]:
    """The unit's Environment= defaults, then the example EnvironmentFile's values."""
    env: dict[str, str] = {}
    for line in keys.get("Environment", []):
        env.update(item.split("=", 1) for item in shlex.split(line))
    lines = (SYSTEMD / env_file).read_text().splitlines() if env_file else []
    for line in lines:
        if line.strip() and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k] = v
    return env


def expand(command: str, env: dict[str, str]) -> list[str]:
    """systemd's ExecStart expansion: ${VAR} is one word, $VAR is split on whitespace."""
    words = []
    for word in command.split():
        if m := re.fullmatch(r"\$\{(\w+)\}", word):
            words.append(env.get(m.group(1), ""))
        elif m := re.fullmatch(r"\$(\w+)", word):
            words += env.get(m.group(1), "").split()
        else:
            assert "$" not in word, f"{word}: give a variable a word of its own"
            words.append(word)
    return words


@pytest.mark.parametrize(("name", "command"), UNITS.items())
def test_each_unit_runs_an_orbiter_subcommand_with_flags_the_parser_accepts(
    name: str, command: str
) -> None:
    keys = unit(name)
    (exec_start,) = keys["ExecStart"]
    for env in (environment(keys), environment(keys, ENV_FILES[command])):
        argv = expand(exec_start, env)
        assert argv[0].endswith("/orbiter") and argv[1] == command
        args = cli.parser().parse_args(argv[1:])  # exits (fails the test) on a bad flag
        assert args.subcommand == command
    assert keys["Restart"] == ["on-failure"]
    assert any(f.lstrip("-") == f"/etc/orbiter/{command}.env" for f in keys["EnvironmentFile"])


def test_the_agent_unit_lets_tasks_outlive_an_agent_restart() -> None:
    keys = unit("orbiter-agent.service")
    assert keys["KillMode"] == ["process"], "the task keeper and its tasks must survive"
    assert keys["Delegate"] == ["yes"]


def test_the_example_environment_files_name_only_variables_orbiter_or_its_units_read() -> None:
    read = set(re.findall(r"ORBITER_[A-Z_]+", Path(cli.__file__).read_text()))
    read |= set(re.findall(r"ORBITER_[A-Z_]+", (Path(cli.__file__).parent / "security" /
                                                  "flags.py").read_text()))  # fmt: skip
    for name in UNITS:
        read |= set(re.findall(r"ORBITER_[A-Z_]+", (SYSTEMD / name).read_text()))
    for env_file in ENV_FILES.values():
        for line in (SYSTEMD / env_file).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                assert line.split("=", 1)[0] in read, f"{env_file}: {line}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    orbiter = shutil.which("orbiter") or str(Path(sys.executable).parent / "orbiter")
    assert Path(orbiter).exists(), "the orbiter console script is not installed"
    for name in UNITS:
        text = (SYSTEMD / name).read_text().replace("/usr/local/bin/orbiter", orbiter)
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
