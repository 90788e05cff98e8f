"""Quota and weight values: what the master accepts, and what it refuses with
a message that says why (nothing is changed on a refusal)."""

from __future__ import annotations

import pytest

from orbiter.master.quota import (
    InvalidQuota,
    Quota,
    check_quantities,
    check_quotas,
    check_weight,
    parse_quantities,
)

TOTAL = {"cpus": 10.0, "mem": 10000.0, "gpus": 0.0}


def q(g=None, lim=None):
    return Quota(g or {}, lim or {})


@pytest.mark.parametrize(
    ("quotas", "force", "error"),
    [
        ({"a": q({"cpus": 2}, {"cpus": 8})}, False, None),
        ({"a": q({"cpus": 2}), "a/b": q({"cpus": 1}), "a/c": q({"cpus": 1})}, False, None),
        ({"a": q(lim={"cpus": 4}), "a/b": q(lim={"cpus": 4})}, False, None),
        ({"a": q({"cpus": 3}, {"cpus": 2})}, False, "guarantee of cpus is above its limit"),
        ({"a": q({"cpus": 2}), "a/b": q({"cpus": 3})}, False, "a child's guarantee must fit"),
        (
            {"a": q({"cpus": 2}), "a/b": q({"cpus": 1}), "a/c": q({"cpus": 1.5})},
            False,
            "subroles come to cpus:2.5",
        ),
        ({"a": q({"cpus": 2}), "a/b": q({"mem": 10})}, False, "for mem"),
        (
            {"a": q(lim={"cpus": 4}), "a/b/c": q(lim={"cpus": 5})},
            False,
            "above its parent 'a''s limit",
        ),
        ({"a": q({"cpus": 11})}, False, "more than the cluster has (cpus:10)"),
        ({"a": q({"cpus": 11})}, True, None),
        ({"a": q({"cpus": 6}), "b": q({"cpus": 6})}, False, "guarantees come to cpus:12"),
        ({"a": q({"gpus": 1})}, False, "more than the cluster has (gpus:0)"),
    ],
)
def test_quotas_are_checked_as_a_whole(quotas, force, error):
    if error is None:
        check_quotas(quotas, TOTAL, force)
    else:
        with pytest.raises(InvalidQuota, match=error.replace("(", r"\(").replace(")", r"\)")):
            check_quotas(quotas, TOTAL, force)


@pytest.mark.parametrize(
    ("text", "parsed", "error"),
    [
        ("cpus:2;mem:1024", {"cpus": 2.0, "mem": 1024.0}, None),
        (" cpus : 0.5 ; ", {"cpus": 0.5}, None),
        ("", {}, None),
        ("cpus", None, "is not name:amount"),
        ("cpus:x", None, "'x' for 'cpus' is not a number"),
        ("cpus:1;cpus:2", None, "'cpus' given twice"),
        ("cpus(db):1", None, "drop the '(role)'"),
    ],
)
def test_the_cli_form_of_quantities(text, parsed, error):
    if error is None:
        assert parse_quantities(text) == parsed
    else:
        with pytest.raises(InvalidQuota, match=error.replace("(", r"\(").replace(")", r"\)")):
            parse_quantities(text)


@pytest.mark.parametrize(
    ("quantities", "error"),
    [
        ({"cpus": 1, "fpgas": 2}, None),
        ({"cpu": 1}, "unknown resource 'cpu'; did you mean 'cpus'?"),
        ({"ports": 10}, "'ports' is not a scalar"),
        ({"cpus": -1}, "between 0 and"),
        ({"cpus": float("nan")}, "between 0 and"),
        ({"cpus": True}, "must be a number"),
    ],
)
def test_quantities_name_known_scalars(quantities, error):
    if error is None:
        check_quantities(quantities, "guarantees", ["fpgas"])
    else:
        with pytest.raises(InvalidQuota, match=error):
            check_quantities(quantities, "guarantees", ["fpgas"])


@pytest.mark.parametrize(
    ("role", "weight", "error"),
    [
        ("eng", 2, None),
        ("eng/web", 0.5, None),
        ("eng", 0, "must be > 0"),
        ("eng", -1, "must be > 0"),
        ("eng", float("inf"), "must be > 0"),
        ("eng", "2", "must be a number"),
        ("*", 2, "default role"),
        ("eng/", 2, "cannot start or end with '/'"),
    ],
)
def test_weights_are_positive_numbers_for_named_roles(role, weight, error):
    if error is None:
        assert check_weight(role, weight) == float(weight)
    else:
        with pytest.raises(InvalidQuota, match=error):
            check_weight(role, weight)
