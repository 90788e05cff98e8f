"""Silences, pure: Alertmanager's matching (anchored regexes, missing label = ""), states,
the checks a new silence must pass, and the plan that mirrors them to an Alertmanager."""

from __future__ import annotations

import pytest

from orbiter.alerts import silences
from orbiter.alerts.silences import InvalidSilence, MatcherSpec, matcher_matches

M = MatcherSpec


@pytest.mark.parametrize(
    ("matcher", "labels", "hit"),
    [
        (M("a", "x"), {"a": "x"}, True),
        (M("a", "x"), {"a": "xy"}, False),
        (M("a", "x", is_equal=False), {"a": "y"}, True),
        (M("a", "x", is_equal=False), {}, True),
        (M("a", "x|y", is_regex=True), {"a": "y"}, True),
        (M("a", "x|y", is_regex=True), {"a": "xy"}, False),  # anchored
        (M("a", "x.*", is_regex=True, is_equal=False), {"a": "xz"}, False),
        (M("a", "", is_regex=False), {}, True),  # a missing label is ""
        (M("a", ".+", is_regex=True), {}, False),
        (M("a", "a.b", is_regex=True), {"a": "a\nb"}, False),  # . is not a newline, as in Go
        (M("a", r"\d+", is_regex=True), {"a": "\u0663"}, False),  # \d is ASCII, as in Go
    ],
)
def test_matchers_match_as_alertmanager(matcher: MatcherSpec, labels: dict, hit: bool) -> None:
    assert matcher_matches(matcher, labels) is hit


def _silence(start: float = 100.0, end: float = 200.0, sid: str = "s1"):  # type: ignore[no-untyped-def]
    return silences.new_silence(sid, [M("alertname", "A")], start, end, "me", "why", 50.0)


def test_states_and_muting_follow_the_clock() -> None:
    s = _silence()
    assert [silences.state(s, t) for t in (99.0, 100.0, 199.9, 200.0)] == [
        "pending", "active", "active", "expired",
    ]  # fmt: skip
    assert silences.mutes(s, {"alertname": "A", "x": "1"}, 150.0)
    assert not silences.mutes(s, {"alertname": "B"}, 150.0)
    assert not silences.mutes(s, {"alertname": "A"}, 250.0)


@pytest.mark.parametrize(
    ("matchers", "start", "end", "by", "comment", "why"),
    [
        ([], 0, 100, "me", "c", "at least one matcher"),
        ([M("a", ".*", is_regex=True)], 0, 100, "me", "c", "must not match the empty string"),
        ([M("a", "", is_equal=True)], 0, 100, "me", "c", "must not match the empty string"),
        ([M("9a", "x")], 0, 100, "me", "c", "not a valid label name"),
        ([M("a", "(", is_regex=True)], 0, 100, "me", "c", "invalid regular expression"),
        ([M("a", "x")], 0, 40, "me", "c", "must end in the future"),
        ([M("a", "x")], 90, 80, "me", "c", "must end after it starts"),
        ([M("a", "x")], 0, 100, " ", "c", "say who"),
        ([M("a", "x")], 0, 100, "me", "", "say why"),
    ],
)
def test_bad_silences_say_what_to_change(matchers, start, end, by, comment, why) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSilence, match=why):
        silences.new_silence("x", matchers, start, end, by, comment, 50.0)


def test_a_silence_starting_in_the_past_starts_now() -> None:
    assert silences.new_silence("x", [M("a", "b")], 0.0, 100.0, "me", "c", 50.0).starts_at == 50.0


def test_mirror_plan_posts_missing_expires_stale_and_leaves_others_alone() -> None:
    live, gone = _silence(sid="live"), _silence(sid="gone", end=120.0)
    body = silences.mirror_body(live)
    theirs = [
        {"id": "m1", "status": {"state": "active"}, **body},  # our live one, in place
        {"id": "m2", "status": {"state": "active"}, **silences.mirror_body(gone)},  # expired here
        {"id": "m3", "status": {"state": "active"}, **body},  # a duplicate of ours
        {"id": "x", "status": {"state": "active"}, "comment": "someone else's", "matchers": []},
        {"id": "m4", "status": {"state": "expired"}, **body},
    ]
    post, expire = silences.mirror_plan([live, gone], theirs, 150.0)
    assert post == [] and expire == ["m2", "m3"]
    post, expire = silences.mirror_plan([live], [], 150.0)
    assert post == [live] and expire == []
    changed = silences.new_silence("live", [M("alertname", "A")], 100, 300, "me", "why", 50.0)
    post, expire = silences.mirror_plan([changed], theirs[:1], 150.0)
    assert post == [changed] and expire == ["m1"]  # a changed end: replaced


def test_api_views_round_trip() -> None:
    s = _silence()
    again = silences.from_api(silences.api_view(s, 150.0))
    assert again == s
