"""Matchers, the route tree and inhibition behave as Alertmanager 0.25's.

The amtool corpus (tests/integration/test_amtool_routes.py) checks routing
against the real amtool; these tables pin the details amtool does not print
(route keys, group keys, matcher strings) and the properties behind them.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbiter.alerts.amconfig import parse_alertmanager_config
from orbiter.alerts.inhibit import InhibitRule, inhibited, inhibited_by
from orbiter.alerts.matchers import (
    Matcher,
    MatcherError,
    MatchType,
    format_matchers,
    from_match_maps,
    go_to_python,
    matches_all,
    parse_matcher,
    parse_matchers,
    sort_matchers,
)
from orbiter.alerts.routing import Route, receivers_for, route_alert

EQ, NE, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEXP, MatchType.NOT_REGEXP


# ---------------------------------------------------------------------- matcher syntax


@pytest.mark.parametrize(
    ("text", "name", "type_", "value"),
    [
        ("a=b", "a", EQ, "b"),
        ('a="b"', "a", EQ, "b"),
        ("  a  =  b  ", "a", EQ, "b"),
        ("a!=b", "a", NE, "b"),
        ('a=~"x|y"', "a", RE, "x|y"),
        ("a!~x.*", "a", NRE, "x.*"),
        ("a=", "a", EQ, ""),
        ('a=""', "a", EQ, ""),
        ("a==b", "a", EQ, "=b"),
        ("a=~=b", "a", RE, "=b"),
        ('a="say \\"hi\\""', "a", EQ, 'say "hi"'),
        ('a="line\\nbreak"', "a", EQ, "line\nbreak"),
        ('a="back\\\\slash"', "a", EQ, "back\\slash"),
        ('a="C:\\dir"', "a", EQ, "C:\\dir"),
        ("a=ends\\", "a", EQ, "ends\\"),
        ('a="  padded  "', "a", EQ, "  padded  "),
        ("ns:name=x", "ns:name", EQ, "x"),
        ("a=Café ☕", "a", EQ, "Café ☕"),
    ],
)
def test_parse_matcher(text: str, name: str, type_: MatchType, value: str) -> None:
    assert parse_matcher(text) == Matcher(name, type_, value)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a", "bad matcher format"),
        ("=b", "bad matcher format"),
        ("1a=b", "bad matcher format"),
        ("a~b", "bad matcher format"),
        ('a="b', "unescaped double quote"),
        ('a=b"', "unescaped double quote"),
        ('a="b"c"', "unescaped double quote"),
        ('a=~"("', "invalid regular expression"),
        ('a=~"(a)\\1"', "backreference"),
    ],
)
def test_parse_matcher_refuses(text: str, error: str) -> None:
    with pytest.raises(MatcherError, match=error):
        parse_matcher(text)


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("a=b", ['a="b"']),
        ('{a="b", c!="d",}', ['a="b"', 'c!="d"']),
        ('{quote="She said: \\"Hi, ladies!\\""}', ['quote="She said: \\"Hi, ladies!\\""']),
        ("foo=bar,dings!=bums", ['foo="bar"', 'dings!="bums"']),
        ('statuscode=~"5.."', ['statuscode=~"5.."']),
        ("", []),
        ("{}", []),
        ('a="x,y",b=~"1|2"', ['a="x,y"', 'b=~"1|2"']),
    ],
)
def test_parse_matchers_lists(text: str, printed: list[str]) -> None:
    assert [str(m) for m in parse_matchers(text)] == printed


def test_matchers_sort_by_name_then_value_then_operator_and_print_like_alertmanager() -> None:
    ms = [Matcher("b", EQ, "1"), Matcher("a", NRE, "x"), Matcher("a", EQ, "x"),
          Matcher("a", NE, "x"), Matcher("a", EQ, "w"), Matcher("c", RE, 'q"\n\\\\')]
    assert format_matchers(sort_matchers(ms)) == (
        '{a="w",a="x",a!="x",a!~"x",b="1",c=~"q\\"\\n\\\\\\\\"}'
    )


@pytest.mark.parametrize(
    ("matcher", "labels", "matches"),
    [
        (Matcher("team", EQ, ""), {}, True),
        (Matcher("team", NE, ""), {}, False),
        (Matcher("team", NE, ""), {"team": "x"}, True),
        (Matcher("team", NE, "db"), {}, True),
        (Matcher("a", RE, "foo"), {"a": "foobar"}, False),
        (Matcher("a", RE, "foo.*"), {"a": "foobar"}, True),
        (Matcher("a", RE, "x|y"), {"a": "y"}, True),
        (Matcher("a", RE, "x|y"), {"a": "xy"}, False),
        (Matcher("a", RE, "a$"), {"a": "a\n"}, False),
        (Matcher("a", RE, "a\\z"), {"a": "a"}, True),
        (Matcher("a", RE, ".*"), {}, True),
        (Matcher("a", RE, ".+"), {}, False),
        (Matcher("a", NRE, "prod"), {"a": "production"}, True),
        (Matcher("a", NRE, "prod"), {"a": "prod"}, False),
    ],
)
def test_matcher_semantics(matcher: Matcher, labels: dict[str, str], matches: bool) -> None:
    assert matches_all([matcher], labels) is matches


@pytest.mark.parametrize(
    ("go", "python"),
    [
        ("a|b", "a|b"),
        ("a$", "a\\Z"),
        ("(?m)a$", "(?m:a$)"),
        ("a\\z", "a\\Z"),
        ("x{,2}", "x\\{,2}"),
        ("x{2,3}", "x{2,3}"),
        ("[[:alpha:]][[:digit:]]", "[A-Za-z][0-9]"),
        ("[]a]", "[]a]"),
        ("[a&&b]", "[a\\&\\&b]"),
        ("a(?i)b|c", "a(?i:b)|(?i:c)"),
        ("(a(?s).|b)c", "(a(?s:.)|(?s:b))c"),
        ("\\$", "\\$"),
        ("[$]", "[$]"),
        ("\\d+\\s\\w", "[0-9]+[\\t\\n\\f\\r ][0-9A-Za-z_]"),
        ("[\\d.]", "[0-9.]"),
        ("\\bx\\B", "(?a:\\b)x(?a:\\B)"),
    ],
)
def test_go_regexps_are_rewritten_to_read_the_same_in_python(go: str, python: str) -> None:
    assert go_to_python(go) == python


@pytest.mark.parametrize(
    ("go", "error"),
    [
        ("a*+", "possessive"),
        ("a{2}+", "possessive"),
        ("(?>a)", "atomic"),
        ("(?=a)", "lookahead"),
        ("(?<!a)b", "lookbehind"),
        ("(a)\\1", "backreference"),
        ("(?P<n>a)(?P=n)", "backreference"),
        ("(?#note)a", "comment"),
        ("a\\Z", "\\Z"),
        ("a{1001}", "over 1000"),
        ("[[:nope:]]", "[:nope:]"),
        ("(?U)a*", "ungreedy"),
    ],
)
def test_what_go_refuses_is_refused(go: str, error: str) -> None:
    with pytest.raises(MatcherError, match=re.escape(error)):
        go_to_python(go)


def test_legacy_maps_are_equality_and_regex_matchers() -> None:
    assert from_match_maps({"a": "b"}, {"c": "d|e"}) == [Matcher("a", EQ, "b"),
                                                        Matcher("c", RE, "^(?:d|e)$")]


names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
values = st.text(max_size=12)


@given(names, st.sampled_from(list(MatchType)), values)
def test_printed_matchers_parse_back_to_themselves(name: str, type_: MatchType, value: str) -> None:
    if type_ in (RE, NRE):
        value = value.replace("\\", "").replace("(", "").replace(")", "")
        value = "".join(c for c in value if c not in "[]{}*+?|^$.")
    m = Matcher(name, type_, value)
    assert parse_matchers(str(m)) == [m]
    assert parse_matchers(f"{{{m}, {m}}}") == [m, m]


@given(names, values, values)
def test_negated_matchers_are_complements(name: str, value: str, label: str) -> None:
    assert Matcher(name, NE, value).matches(label) is not Matcher(name, EQ, value).matches(label)
    pattern = "".join(c for c in value if c.isalnum())
    assert Matcher(name, NRE, pattern).matches(label) is not Matcher(name, RE, pattern).matches(
        label)


# ---------------------------------------------------------------------- route tree

TREE = """\
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['team="db"', 'severity=~"critical|page"']
      receiver: db-pager
      continue: true
      group_by: [cluster]
    - match: {team: db}
      receiver: db
      routes:
        - match_re: {env: prod.*}
          receiver: db-prod
          group_by: ['...']
        - matchers: [env=staging]
    - matchers: ['team="web"']
      receiver: web
    - matchers: ['team="web"']
      receiver: web-again
receivers:
  - {name: default}
  - {name: db-pager}
  - {name: db}
  - {name: db-prod}
  - {name: web}
  - {name: web-again}
"""


@pytest.fixture(scope="module")
def tree() -> Route:
    return parse_alertmanager_config(TREE).route


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"alertname": "X"}, [("default", "{}", "{}:{alertname=\"X\"}")]),
        ({"alertname": "X", "team": "db", "severity": "page", "cluster": "c1"}, [
            ("db-pager", '{}/{severity=~"critical|page",team="db"}',
             '{}/{severity=~"critical|page",team="db"}:{cluster="c1"}'),
            ("db", '{}/{team="db"}', '{}/{team="db"}:{alertname="X"}'),
        ]),
        ({"alertname": "X", "team": "db", "env": "prod-1"}, [
            ("db-prod", '{}/{team="db"}/{env=~"^(?:prod.*)$"}',
             '{}/{team="db"}/{env=~"^(?:prod.*)$"}:{alertname="X", env="prod-1", team="db"}'),
        ]),
        ({"alertname": "X", "team": "db", "env": "staging"}, [
            ("db", '{}/{team="db"}/{env="staging"}', '{}/{team="db"}/{env="staging"}:'
             '{alertname="X"}'),
        ]),
        ({"team": "web"}, [("web", '{}/{team="web"}', '{}/{team="web"}:{}')]),
    ],
)
def test_routes_keys_and_group_keys(
    tree: Route, labels: dict[str, str], expected: list[tuple[str, str, str]]
) -> None:
    assert [(r.receiver, r.key, r.group_key(labels)) for r in route_alert(tree, labels)] == expected


def test_route_that_does_not_match_at_the_root_routes_nowhere() -> None:
    root = parse_alertmanager_config(TREE).route
    assert route_alert(root.routes[1], {"team": "web"}) == []
    assert receivers_for(root.routes[1], {"team": "db"}) == ["db"]


label_sets = st.dictionaries(
    st.sampled_from(["alertname", "team", "severity", "env", "cluster"]),
    st.sampled_from(["X", "db", "web", "page", "critical", "prod-1", "staging", "c1", ""]),
)


def _ancestors(root: Route, target: Route) -> list[Route] | None:
    if root is target:
        return [root]
    for child in root.routes:
        path = _ancestors(child, target)
        if path is not None:
            return [root, *path]
    return None


@given(label_sets)
def test_every_chosen_route_and_its_ancestors_match_and_none_is_chosen_twice(
    labels: dict[str, str],
) -> None:
    root = parse_alertmanager_config(TREE).route
    chosen = route_alert(root, labels)
    assert chosen, "the root has no matchers: every alert goes somewhere"
    assert len({id(r) for r in chosen}) == len(chosen)
    for r in chosen:
        path = _ancestors(root, r)
        assert path is not None
        assert all(matches_all(a.matchers, labels) for a in path)
        # a chosen node has no matching child (else the child would have been chosen)
        assert not any(route_alert(c, labels) for c in r.routes)


# ---------------------------------------------------------------------- inhibition

CRIT_MUTES_WARN = InhibitRule(
    source=(Matcher("severity", EQ, "critical"),),
    target=(Matcher("severity", EQ, "warning"),),
    equal=("cluster",),
)
SELF = InhibitRule(
    source=(Matcher("alertname", RE, "Down|Unreachable"),),
    target=(Matcher("alertname", RE, "Down|Unreachable|Slow"),),
)


@pytest.mark.parametrize(
    ("rules", "labels", "firing", "expected"),
    [
        ([CRIT_MUTES_WARN], {"severity": "warning", "cluster": "a"},
         [{"severity": "critical", "cluster": "a"}], True),
        ([CRIT_MUTES_WARN], {"severity": "warning", "cluster": "a"},
         [{"severity": "critical", "cluster": "b"}], False),
        ([CRIT_MUTES_WARN], {"severity": "warning"}, [{"severity": "critical"}], True),
        ([CRIT_MUTES_WARN], {"severity": "warning", "cluster": ""}, [{"severity": "critical"}],
         True),
        ([CRIT_MUTES_WARN], {"severity": "info", "cluster": "a"},
         [{"severity": "critical", "cluster": "a"}], False),
        ([CRIT_MUTES_WARN], {"severity": "warning", "cluster": "a"}, [], False),
        ([SELF], {"alertname": "Down"}, [{"alertname": "Down"}], False),
        ([SELF], {"alertname": "Down"}, [{"alertname": "Down"}, {"alertname": "Unreachable"}],
         False),
        ([SELF], {"alertname": "Slow"}, [{"alertname": "Down"}], True),
        ([CRIT_MUTES_WARN, SELF], {"alertname": "Slow", "severity": "info"},
         [{"alertname": "Unreachable"}], True),
    ],
)
def test_inhibition(
    rules: list[InhibitRule], labels: dict[str, str], firing: list[dict[str, str]], expected: bool
) -> None:
    assert inhibited(rules, labels, firing) is expected


def test_inhibited_by_names_the_source() -> None:
    source = {"severity": "critical", "cluster": "a", "alertname": "NodeDown"}
    assert inhibited_by([CRIT_MUTES_WARN], {"severity": "warning", "cluster": "a"},
                        [{"severity": "warning"}, source]) == source


@given(label_sets, st.lists(label_sets, max_size=4))
def test_an_alert_that_matches_both_sides_is_never_muted_by_itself(
    labels: dict[str, str], others: list[dict[str, str]]
) -> None:
    rule = InhibitRule(source=(Matcher("severity", RE, "page|critical"),),
                       target=(Matcher("team", NE, ""),), equal=("cluster",))
    if matches_all(rule.source, labels) and matches_all(rule.target, labels):
        two_sided = [o for o in others if matches_all(rule.target, o)]
        assert not inhibited([rule], labels, [labels, *two_sided])
