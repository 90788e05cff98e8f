"""Inhibition: a firing alert mutes others, as Alertmanager 0.25's `inhibit/inhibit.go`.

A rule mutes a target alert (one its target matchers match) while some
firing source alert (one its source matchers match) has the same values for
every label in `equal` (a label missing on both sides counts as equal: both
are empty). When the target alert matches the source matchers too, source
alerts that also match the target matchers do not count: an alert never
inhibits itself, nor does one of a pair of alerts that would inhibit each
other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orbiter.alerts.matchers import Matcher, matches_all


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


def inhibited_by(
    rules: Iterable[InhibitRule],
    labels: Mapping[str, str],
    firing: Iterable[Mapping[str, str]],
) -> Mapping[str, str] | None:
    """The labels of a firing alert that mutes the alert with `labels`, or None."""
    firing = list(firing)
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        two_sided = matches_all(rule.source, labels)
        for source in firing:
            if not matches_all(rule.source, source):
                continue
            if any(source.get(n, "") != labels.get(n, "") for n in rule.equal):
                continue
            if two_sided and matches_all(rule.target, source):
                continue
            return source
    return None


def inhibited(
    rules: Iterable[InhibitRule],
    labels: Mapping[str, str],
    firing: Iterable[Mapping[str, str]],
) -> bool:
    """Whether some firing alert in `firing` mutes the alert with `labels`."""
    return inhibited_by(rules, labels, firing) is not None
