"""--advertise-host takes a host name or address, never a port; IPv6 gets brackets."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from orbiter import cli
from orbiter.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("given", "used"),
    [("m1.example.org", "m1.example.org"), ("10.0.0.7", "10.0.0.7"), ("fd00::7", "[fd00::7]"),
     ("[fd00::7]", "[fd00::7]"), ("", "")],
)  # fmt: skip
def test_a_host_is_taken_as_given(given: str, used: str) -> None:
    assert cli.advertise_host(given) == used


@pytest.mark.parametrize("given", ["m1:5050", "http://m1", "a b"])
def test_a_port_or_url_is_refused_saying_what_to_give(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="give it without a port"):
        cli.advertise_host(given)


def test_master_and_agent_take_the_flag_and_the_config_key_is_checked_the_same_way(
    tmp_path: Path,
) -> None:
    args = cli.parser().parse_args(["master", "--advertise-host", "m1.example.org"])
    assert args.advertise_host == "m1.example.org"
    args = cli.parser().parse_args(["agent", "--advertise-host", "10.0.0.7"])
    assert args.advertise_host == "10.0.0.7"
    path = tmp_path / "orbiter.yml"
    path.write_text("master:\n  advertise_host: m1:5050\n")
    with pytest.raises(ConfigError, match=r":2: master.advertise_host: 'm1:5050' is not a host"):
        load_config(path)
