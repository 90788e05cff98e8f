"""`orbiter rules check|test`: promtool's output format over our rule loader and test runner.

Both print exactly where promtool prints (progress on stdout, failures on stderr) so a
CI log reads the same whichever tool produced it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from orbiter.satellite.rules import RuleFileInvalid, load_rule_file
from orbiter.satellite.ruletest import run_test_file


def check_main(paths: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate rule files like `promtool check rules`; 0 when every file is valid."""
    out = out or sys.stdout
    err = err or sys.stderr
    failed = False
    for path in paths:
        print(f"Checking {path}", file=out)
        try:
            groups = load_rule_file(path)
        except RuleFileInvalid as e:
            failed = True
            print("  FAILED:", file=err)
            for x in e.errors:
                print(str(x), file=err)
            print(file=out)
            continue
        n = sum(len(g.rules) for g in groups)
        print(f"  SUCCESS: {n} rules found", file=out)
        print(file=out)
    return 1 if failed else 0


def test_main(paths: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run unit-test files like `promtool test rules`; 0 when every file passes."""
    out = out or sys.stdout
    err = err or sys.stderr
    failed = False
    for path in paths:
        print("Unit Testing: ", path, file=out)
        result = run_test_file(path)
        for w in result.warnings:
            print(w, file=err)
        if result.errors:
            failed = True
            print("  FAILED:", file=err)
            for e in result.errors:
                print(e, file=err)
                print(file=out)
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0
