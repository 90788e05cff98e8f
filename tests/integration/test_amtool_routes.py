"""Our routing and config loader agree with the real amtool (Alertmanager 0.25).

For every corpus config (tests/amtool_corpus/*.yml) and every label set in
its `.labels` file, `amtool config routes test` and our `route_alert` must
name the same receivers in the same order. `amtool check-config` must accept
every corpus config and refuse every `bad/*.yml`, and so must our loader.

amtool comes from Debian's `prometheus-alertmanager` package. Without it the
tests fail, never skip: a comparison that silently did not run proves nothing.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from orbiter.alerts.amconfig import load_alertmanager_config
from orbiter.alerts.matchers import MatcherError, MatchType, parse_matcher
from orbiter.alerts.routing import receivers_for
from orbiter.yamlreader import ConfigError

CORPUS = Path(__file__).resolve().parents[1] / "amtool_corpus"
CONFIGS = sorted(CORPUS.glob("*.yml"))
BAD = sorted((CORPUS / "bad").glob("*.yml"))


@pytest.fixture(scope="module")
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool not found: install Debian's prometheus-alertmanager (`make deps`)")
    return path


def label_sets(config: Path) -> list[list[str]]:
    lines = config.with_suffix(".labels").read_text().splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.startswith("#")]


def cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(config, args, id=f"{config.stem}:{' '.join(args)}")
        for config in CONFIGS
        for args in label_sets(config)
    ]


def parse_labels(args: list[str]) -> dict[str, str]:
    """amtool's reading of `key=value` arguments (its parseLabels)."""
    labels = {}
    for arg in args:
        m = parse_matcher(arg)
        if m.type is not MatchType.EQUAL:
            raise MatcherError(f"labels must be given as key=value, not {arg!r}")
        labels[m.name] = m.value
    return labels


def test_corpus_is_large_enough() -> None:
    assert len(CONFIGS) >= 8
    assert sum(len(label_sets(c)) for c in CONFIGS) >= 60
    assert len(BAD) >= 10


@pytest.mark.parametrize(("config", "args"), cases())
def test_routes_agree_with_amtool(amtool: str, config: Path, args: list[str]) -> None:
    run = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if "Failed to parse labels" in run.stderr:  # a label set amtool refuses: so must we
        with pytest.raises(MatcherError):
            parse_labels(args)
        return
    assert run.returncode == 0, run.stderr
    expected = run.stdout.strip().split(",")
    ours = receivers_for(load_alertmanager_config(config).route, parse_labels(args))
    assert ours == expected


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_amtool_and_we_accept_corpus_configs(amtool: str, config: Path) -> None:
    run = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    load_alertmanager_config(config)


@pytest.mark.parametrize("config", BAD, ids=[c.name for c in BAD])
def test_amtool_and_we_refuse_bad_configs(amtool: str, config: Path) -> None:
    run = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert run.returncode != 0, f"amtool accepts {config.name}; it does not belong in bad/"
    with pytest.raises(ConfigError, match=rf"^{config}:\d+: "):
        load_alertmanager_config(config)
