"""Rules' `query` in /api/v1/rules: Satellite prints every expression as Prometheus 2.42 does.

The real Prometheus (Debian's `prometheus`; `make deps`) loads one rule file holding every
expression of the rules corpus, the shipped rules and a list of printing corner cases
(numbers, durations, modifiers, matcher order) as recording rules, and its /api/v1/rules
gives back its canonical text for each; `format_expr` must give the same text.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml

from orbiter.config import DEFAULT_RULES
from orbiter.satellite.promql.printer import format_expr
from tests.conftest import free_port, get_json
from tests.integration.test_promtool_agreement import corpus_expressions
from tests.proctools import poll_until

CORNER_CASES = [
    "vector(1000000)", "vector(1234567)", "vector(123456)", "vector(0.00001)",
    "vector(0.0001)", "vector(1e21)", "vector(1e20)", "vector(0.90)", "vector(-0.5)",
    "a + on(x) group_left b", "a and  b", "sum by (x) (a)", "sum(a)",
    "sum without (x,y) (rate(a[5m] offset 1w))", "topk(3, a)", 'count_values("x", a)',
    'a{c="1",b=~"x|y"} @ 100 offset -5m', "a[90d] @ start()", "a @ end()", "a[5m:]",
    "a[1h:1m] offset 1y", "-a", "(a)", "a > bool b", "a / ignoring(y) group_right(z) b",
    '{__name__="m", b!="c"}', 'label_replace(a, "d", "$1", "s", "(.*)")', "a unless on() b",
    "a + on(x) group_left() b", "a offset 90m", "a[1500ms]", 'a{b="tab\\there \\"q\\""}',
    "max_over_time((a + b)[10m:30s])", "quantile(0.9, a) by (x)", "a ^ 2 ^ 3",
]  # fmt: skip


def _expressions() -> list[str]:
    shipped = yaml.safe_load(DEFAULT_RULES.read_text())
    exprs = [r["expr"] for g in shipped["groups"] for r in g["rules"]]
    exprs += corpus_expressions() + CORNER_CASES
    return list(dict.fromkeys(str(e) for e in exprs))


def test_every_expression_prints_as_prometheus_prints_it(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: run `make deps` (Debian package prometheus)")
    exprs = _expressions()
    assert len(exprs) > 200, "the corpus shrank: this test would prove little"
    rules = [{"record": f"r{i}", "expr": e} for i, e in enumerate(exprs)]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": rules}]}))
    (tmp_path / "prometheus.yml").write_text("rule_files: [rules.yml]\n")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    prom = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:

        def loaded() -> list[dict[str, str]]:
            try:
                groups = get_json(f"http://127.0.0.1:{port}/api/v1/rules")["data"]["groups"]
            except OSError:
                assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                return []
            return groups[0]["rules"] if groups else []

        printed = poll_until(loaded, 30, "Prometheus to load the rule file")
    finally:
        prom.terminate()
        prom.wait(10)
    assert [r["name"] for r in printed] == [f"r{i}" for i in range(len(exprs))]
    wrong = {
        expr: (ours, theirs)
        for expr, rule in zip(exprs, printed, strict=True)
        if (ours := format_expr(promql_parser.parse(expr))) != (theirs := rule["query"])
    }
    assert wrong == {}
