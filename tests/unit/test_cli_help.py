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
