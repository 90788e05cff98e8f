"""Every flag and argument of `orbiter` says what it is for in --help, and --version
answers from the package's metadata."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib import metadata

import pytest

from orbiter import cli


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield " ".join(("orbiter", *path)), action


def test_every_flag_and_argument_of_every_command_has_help() -> None:
    missing = [
        f"{command} {'/'.join(action.option_strings) or action.metavar or action.dest}"
        for command, action in _walk(cli.parser())
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS
    ]
    assert missing == [], "options without help text:\n" + "\n".join(missing)


def test_the_walk_sees_the_flags_of_nested_commands() -> None:
    seen = {(command, opt) for command, a in _walk(cli.parser()) for opt in a.option_strings}
    assert ("orbiter silence add", "--comment") in seen
    assert ("orbiter execute", "--instances") in seen


def test_version_prints_the_package_metadata_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"orbiter {metadata.version('orbiter')}\n"


@pytest.mark.parametrize(
    ("given", "meant"),
    [("RUNNING", "TASK_RUNNING"), ("running", "TASK_RUNNING"), ("TASK_FAILED", "TASK_FAILED"),
     ("task_gone_by_operator", "TASK_GONE_BY_OPERATOR"), (" Killed ", "TASK_KILLED")],
)  # fmt: skip
def test_tasks_state_takes_the_tables_names_and_the_apis_in_any_case(
    given: str, meant: str
) -> None:
    args = cli.parser().parse_args(["tasks", "--state", given])
    assert args.state == meant


@pytest.mark.parametrize("given", ["SLEEPING", "STATE_UNSPECIFIED", "TASK_STATE_UNSPECIFIED"])
def test_an_unknown_task_state_exits_2_offering_the_states_the_table_shows(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["tasks", "--state", given])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"{given!r} is not a task state" in err and "RUNNING, KILLING, FINISHED" in err
    assert "UNSPECIFIED, " not in err.replace(f"{given!r}", "")


def test_tasks_help_lists_the_states_without_unspecified(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["tasks", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "RUNNING" in text and "UNSPECIFIED" not in text


def test_every_client_command_takes_json() -> None:
    flags: dict[str, set[str]] = {}
    for command, action in _walk(cli.parser()):
        flags.setdefault(command, set()).update(action.option_strings)
    # `orbiter agent` takes --master too, but it is a server (`satellite` lists as well).
    clients = {c for c, f in flags.items() if "--master" in f and c != "orbiter agent"}
    assert "orbiter kill" in clients and "orbiter silence expire" in clients
    assert sorted(c for c in clients if "--json" not in flags[c]) == []


@pytest.mark.parametrize("weight", ["nan", "inf", "0", "-1", "x"])
def test_a_weight_that_is_not_a_positive_number_is_refused_before_asking_the_master(
    weight: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(["weight", "eng", weight, "--master", "127.0.0.1:1"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "argument W:" in err and "JSON" not in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["kill", ""],
        ["cat", " "],
        ["drain", "", "--reason", "r"],
        ["deactivate", "", "--reason", "r"],
        ["reserve", "", "cpus(db):1"],
    ],
)
def test_an_empty_task_or_agent_id_is_a_usage_error_not_an_odd_path(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `orbiter kill ''` asked the master for /api/v1/tasks//kill and printed
    "no such path '/api/v1/tasks//kill'"."""
    with pytest.raises(SystemExit) as exit:
        cli.main([*argv, "--master", "127.0.0.1:1"])
    assert exit.value.code == 2
    assert "must not be empty" in capsys.readouterr().err
