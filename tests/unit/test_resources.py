"""Resource arithmetic as the master and allocator rely on it."""

from __future__ import annotations

import math
import pickle
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbiter.proto import messages_pb2
from orbiter.resources import InvalidResources, Ranges, Resources

# ---- Ranges ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "normalized"),
    [
        ((), ()),
        (((5, 7),), ((5, 7),)),
        (((10, 12), (1, 3)), ((1, 3), (10, 12))),
        (((1, 3), (4, 6)), ((1, 6),)),
        (((1, 5), (3, 8)), ((1, 8),)),
        (((1, 10), (2, 3)), ((1, 10),)),
        (((1, 1), (3, 3), (2, 2)), ((1, 3),)),
        (((1, 2), (5, 6), (2, 5)), ((1, 6),)),
    ],
)
def test_ranges_are_sorted_and_merged_on_construction(pairs, normalized):
    assert Ranges(pairs).ranges == normalized


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (((32000, 31000),), "range 32000-31000 has begin > end"),
        (((-1, 5),), "range -1-5 has a negative begin"),
        (((1, 2**64),), "ends beyond"),
        (((1.5, 3),), "integer bounds"),
    ],
)
def test_ranges_reject_bad_pairs(pairs, message):
    with pytest.raises(InvalidResources, match=message):
        Ranges(pairs)


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("[31000-32000]", ((31000, 32000),)),
        ("[31000-32000,33000-33005]", ((31000, 32000), (33000, 33005))),
        (" [ 1 - 2 , 4-4 ] ", ((1, 2), (4, 4))),
        ("[]", ()),
        ("[5-6,1-2]", ((1, 2), (5, 6))),
    ],
)
def test_ranges_parse(text, pairs):
    assert Ranges.parse(text) == Ranges(pairs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("31000-32000", "expected \\[begin-end,...\\] in square brackets"),
        ("[31000-32000", "in square brackets"),
        ("[31000]", "malformed range '31000'"),
        ("[a-b]", "malformed range 'a-b'"),
        ("[1-2,,3-4]", "malformed range ''"),
        ("[-1-2]", "malformed range '-1-2'"),
        ("[32000-31000]", "range 32000-31000 has begin > end"),
    ],
)
def test_ranges_parse_errors_name_the_bad_part(text, message):
    with pytest.raises(InvalidResources, match=message):
        Ranges.parse(text)


def test_ranges_format_round_trips_and_counts_integers():
    r = Ranges.parse("[31000-32000,33000-33005]")
    assert r.format() == "[31000-32000,33000-33005]"
    assert r.size() == 1001 + 6
    assert Ranges().format() == "[]"
    assert Ranges().size() == 0


def _as_set(r: Ranges) -> set[int]:
    return {i for b, e in r for i in range(b, e + 1)}


# A small universe, so ranges often touch and overlap at their edges.
small_ranges = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 4)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=5,
).map(lambda ps: Ranges(tuple(ps)))


@pytest.mark.parametrize(
    ("mine", "other", "expected"),
    [
        ("[1-5]", "[1-5]", True),
        ("[1-5]", "[2-4]", True),
        ("[1-5]", "[3-6]", False),
        ("[1-5]", "[0-3]", False),
        ("[1-5]", "[6-6]", False),
        ("[1-5,7-9]", "[1-1,5-5,7-7,9-9]", True),
        ("[1-5,7-9]", "[5-7]", False),
        ("[1-5,7-9]", "[]", True),
        ("[]", "[1-1]", False),
    ],
)
def test_ranges_contains_at_the_edges(mine, other, expected):
    assert Ranges.parse(mine).contains(Ranges.parse(other)) is expected


@pytest.mark.parametrize(
    ("mine", "other", "rest"),
    [
        ("[1-10]", "[1-10]", "[]"),
        ("[1-10]", "[0-11]", "[]"),
        ("[1-10]", "[1-1,10-10]", "[2-9]"),
        ("[1-10]", "[3-4,6-6]", "[1-2,5-5,7-10]"),
        ("[1-3,5-7]", "[3-5]", "[1-2,6-7]"),
        ("[1-3]", "[7-9]", "[1-3]"),
    ],
)
def test_ranges_subtract_is_set_difference(mine, other, rest):
    assert Ranges.parse(mine) - Ranges.parse(other) == Ranges.parse(rest)


@given(small_ranges, small_ranges)
def test_ranges_behave_like_sets_of_integers(a, b):
    assert _as_set(a + b) == _as_set(a) | _as_set(b)
    assert _as_set(a - b) == _as_set(a) - _as_set(b)
    assert a.contains(b) == (_as_set(b) <= _as_set(a))
    assert a.size() == len(_as_set(a))
    # Results are normalized: rebuilding them changes nothing.
    for r in (a + b, a - b):
        assert Ranges(r.ranges).ranges == r.ranges


# ---- parse / format ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("  ", {}),
        ("cpus:4", {("cpus", ""): 4}),
        (
            "cpus:4;mem:8192;disk:20000;ports:[31000-32000];gpus:0",
            {
                ("cpus", ""): 4,
                ("mem", ""): 8192,
                ("disk", ""): 20000,
                ("ports", ""): Ranges(((31000, 32000),)),
            },
        ),
        (" cpus : 0.5 ; mem:1024 ;", {("cpus", ""): 0.5, ("mem", ""): 1024}),
        ("zones:{a,b}", {("zones", ""): {"a", "b"}}),
        ("zones:{ b , a }", {("zones", ""): {"a", "b"}}),
        ("zones:{}", {}),
        ("ports:[]", {}),
        ("cpus(db):2;cpus:1", {("cpus", "db"): 2, ("cpus", ""): 1}),
        ("cpus(*):2", {("cpus", ""): 2}),
        ("cpus( db ):2", {("cpus", "db"): 2}),
        ("nvidia.com/gpu:2;fpga_x-1:3", {("nvidia.com/gpu", ""): 2, ("fpga_x-1", ""): 3}),
        ("cpus:1e1", {("cpus", ""): 10}),
        ("cpus:.25", {("cpus", ""): 0.25}),
        ("cpus:0.12345", {("cpus", ""): 0.123}),
        ("cpus:0.0004", {}),
        ("cpus:-0", {}),
        ("cpus(a.b_c-d):1", {("cpus", "a.b_c-d"): 1}),
    ],
)
def test_parse_accepts_the_agent_flag_syntax(text, expected):
    assert Resources.parse(text) == Resources(expected)


def test_parse_gives_unmarked_entries_the_default_role():
    r = Resources.parse("cpus:2;mem(*):64;disk(qa):5", default_role="db")
    assert r == Resources({("cpus", "db"): 2, ("mem", ""): 64, ("disk", "qa"): 5})


def test_parse_rejects_a_bad_default_role():
    with pytest.raises(InvalidResources, match="bad default role: bad role '-db'"):
        Resources.parse("cpus:1", default_role="-db")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpus:abc", "bad resource 'cpus:abc' (item 1): 'abc' is not a number"),
        ("cpus:4;mem:x1", "bad resource 'mem:x1' (item 2): 'x1' is not a number"),
        ("cpus:4;:8", "bad resource ':8' (item 2): empty name"),
        ("(db):8", "bad resource '(db):8' (item 1): empty name"),
        ("cpus 4", "bad resource 'cpus 4' (item 1): missing ':'"),
        ("cpus:", "bad resource 'cpus:' (item 1): missing value"),
        ("cpus:-1", "bad resource 'cpus:-1' (item 1): -1 is negative"),
        ("mem:-0.5", "bad resource 'mem:-0.5' (item 1): -0.5 is negative"),
        ("cpus:nan", "'nan' is not a finite number"),
        ("cpus:NaN", "'NaN' is not a finite number"),
        ("cpus:inf", "'inf' is not a finite number"),
        ("cpus:-Infinity", "'-Infinity' is not a finite number"),
        ("cpus:1e400", "'1e400' is larger than the maximum"),
        ("mem:2e12", "2000000000000 is larger than the maximum"),
        ("cpus:1_000", "'1_000' is not a number"),
        ("cpus:0x10", "'0x10' is not a number"),
        ("cpus:4 2", "'4 2' is not a number"),
        (
            "ports:[32000-31000]",
            "'ports:[32000-31000]' (item 1): range 32000-31000 has begin > end",
        ),
        ("ports:[31000-32000", "malformed ranges '[31000-32000'"),
        ("ports:[1-2,x]", "malformed range 'x'"),
        ("zones:{a,b", "malformed set '{a,b'"),
        ("zones:{a,,b}", "set has an empty item"),
        ("zones:{a,a}", "set item 'a' given twice"),
        ("zones:{a b}", "set item 'a b' must not contain whitespace"),
        (
            "mem:1;cpus:1;mem:2",
            "bad resource 'mem:2' (item 3): 'mem' given twice (also 'mem:1' (item 1))",
        ),
        ("cpus(db):1;cpus(db):2", "'cpus(db)' given twice"),
        ("cpus:1;cpus(*):2", "'cpus' given twice"),
        ("cpus(-db):1", "bad role '-db'"),
        ("cpus(.):1", "bad role '.'"),
        ("cpus(..):1", "bad role '..'"),
        ("cpus(a//b):1", "bad role 'a//b'"),
        ("cpus(/a):1", "bad role '/a'"),
        ("cpus(db:1", "malformed role in 'cpus(db': expected name(role)"),
        ("cpus():1", "empty role in 'cpus()'"),
        ("cp us:1", "bad name 'cp us'"),
        ("ports:80", "'ports' must be ranges, like ports:[31000-32000]"),
        ("cpus:[1-2]", "'cpus' must be a scalar"),
        ("mem:{a}", "'mem' must be a scalar"),
        (
            "x:{a};x(db):2",
            "bad resource 'x(db):2' (item 2): 'x' is a scalar here but a set in 'x:{a}' (item 1)",
        ),
    ],
)
def test_parse_errors_name_the_bad_item_and_why(text, message):
    with pytest.raises(InvalidResources, match=re.escape(message)):
        Resources.parse(text)


@pytest.mark.parametrize(
    ("text", "formatted"),
    [
        ("cpus:4.0", "cpus:4"),
        ("cpus:0.1", "cpus:0.1"),
        ("cpus:0.12345", "cpus:0.123"),
        ("mem:1024.500", "mem:1024.5"),
        ("cpus:0.0015", "cpus:0.002"),
        (
            "zz:1;aa:2;ports:[1-2];gpus:1;disk:3;mem:4;cpus:5",
            "cpus:5;mem:4;disk:3;gpus:1;ports:[1-2];aa:2;zz:1",
        ),
        ("cpus(qa):1;cpus(db):2;cpus:3", "cpus:3;cpus(db):2;cpus(qa):1"),
        ("zones:{c,a,b}", "zones:{a,b,c}"),
        ("ports:[5-6, 1-2, 3-3]", "ports:[1-3,5-6]"),
        ("cpus:0", ""),
    ],
)
def test_format_is_canonical(text, formatted):
    assert Resources.parse(text).format() == formatted


def test_repr_shows_the_text_form():
    assert repr(Resources.parse("mem:2;cpus:1")) == "Resources.parse('cpus:1;mem:2')"


# ---- arithmetic ----------------------------------------------------------------


def R(text: str) -> Resources:
    return Resources.parse(text)


@pytest.mark.parametrize(
    ("a", "b", "total"),
    [
        ("cpus:1", "cpus:2", "cpus:3"),
        ("cpus:1", "mem:2", "cpus:1;mem:2"),
        ("cpus:1", "cpus(db):2", "cpus:1;cpus(db):2"),
        ("ports:[1-5]", "ports:[6-9]", "ports:[1-9]"),
        ("zones:{a}", "zones:{b}", "zones:{a,b}"),
        ("", "cpus:1", "cpus:1"),
        ("cpus:0.1", "cpus:0.2", "cpus:0.3"),
    ],
)
def test_add(a, b, total):
    assert R(a) + R(b) == R(total)


@pytest.mark.parametrize(
    ("a", "b", "rest"),
    [
        ("cpus:3", "cpus:2", "cpus:1"),
        ("cpus:3;mem:5", "cpus:3", "mem:5"),
        ("ports:[1-10]", "ports:[3-4,6-6]", "ports:[1-2,5-5,7-10]"),
        ("ports:[1-10]", "ports:[1-10]", ""),
        ("zones:{a,b}", "zones:{a}", "zones:{b}"),
        ("cpus:1;cpus(db):2", "cpus(db):2", "cpus:1"),
        ("cpus:0.3", "cpus:0.1", "cpus:0.2"),
    ],
)
def test_subtract(a, b, rest):
    assert R(a) - R(b) == R(rest)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ("cpus:4", "cpus:5", "cannot subtract cpus:5: only 4 here"),
        ("cpus:4", "mem:1", "cannot subtract mem:1: no 'mem' here"),
        ("cpus:4", "cpus(db):1", "cannot subtract cpus(db):1: no 'cpus(db)' here"),
        ("cpus(db):4", "cpus:1", "cannot subtract cpus:1: no 'cpus' here"),
        ("ports:[1-5]", "ports:[4-7]", "cannot subtract ports:[4-7]: [6-7] not here"),
        ("zones:{a}", "zones:{a,b}", "cannot subtract zones:{a,b}: {b} not here"),
        ("x:{a}", "x:1", "cannot subtract a scalar from a set for 'x'"),
    ],
)
def test_subtracting_more_than_present_raises_naming_the_resource(a, b, message):
    with pytest.raises(InvalidResources, match=re.escape(message)):
        R(a) - R(b)


def test_adding_mismatched_types_for_one_name_raises():
    with pytest.raises(InvalidResources, match="cannot add a scalar to a set for 'x'"):
        R("x:{a}") + R("x:1")


def test_fixed_point_arithmetic_does_not_drift():
    start = R("cpus:1;mem:100")
    tenth = R("cpus:0.1;mem:0.1")
    r = start
    for _ in range(1000):
        r = r + tenth
    assert r == R("cpus:101;mem:200")
    for _ in range(1000):
        r = r - tenth
    assert r == start
    assert r.scalar("cpus") == 1.0


def test_float_sum_would_drift_so_the_fixed_point_test_is_meaningful():
    total = 0.0
    for _ in range(1000):
        total += 0.1
    assert total != 100.0


@pytest.mark.parametrize(
    ("big", "small", "expected"),
    [
        ("cpus:4;mem:10", "cpus:4", True),
        ("cpus:4;mem:10", "cpus:4.001", False),
        ("cpus:4", "cpus(db):1", False),
        ("cpus(db):4", "cpus:1", False),
        ("ports:[1-10]", "ports:[2-3,9-10]", True),
        ("ports:[1-5,7-10]", "ports:[5-7]", False),
        ("zones:{a,b}", "zones:{b}", True),
        ("zones:{a,b}", "zones:{c}", False),
        ("cpus:1", "", True),
        ("", "cpus:1", False),
        ("x:{a}", "x:1", False),
    ],
)
def test_contains(big, small, expected):
    assert R(big).contains(R(small)) is expected


# ---- queries -----------------------------------------------------------------

AGENT = R(
    "cpus:4;cpus(db):2;cpus(qa):1;mem:100;mem(db):50;ports:[1-10];ports(db):[20-24];zones:{a,b}"
)


def test_scalar_sums_over_roles():
    assert AGENT.scalar("cpus") == 7.0
    assert AGENT.scalar("mem") == 150.0
    assert AGENT.scalar("gpus") == 0.0
    assert AGENT.scalar("ports") == 0.0


def test_unreserved_reserved_and_allocatable():
    assert AGENT.unreserved() == R("cpus:4;mem:100;ports:[1-10];zones:{a,b}")
    assert AGENT.reserved("db") == R("cpus(db):2;mem(db):50;ports(db):[20-24]")
    assert AGENT.reserved() == R("cpus(db):2;cpus(qa):1;mem(db):50;ports(db):[20-24]")
    assert AGENT.reserved("*") == AGENT.unreserved()
    assert AGENT.reserved("nobody") == Resources.empty()
    assert AGENT.allocatable_to("qa") == R("cpus:4;cpus(qa):1;mem:100;ports:[1-10];zones:{a,b}")
    assert AGENT.allocatable_to("*") == AGENT.unreserved()


def test_roles_and_names():
    assert AGENT.roles() == {"", "db", "qa"}
    assert AGENT.reserved().roles() == {"db", "qa"}
    assert AGENT.names() == {"cpus", "mem", "ports", "zones"}


def test_quantities_sum_roles_and_count_members():
    assert AGENT.quantities() == {"cpus": 7.0, "mem": 150.0, "ports": 15.0, "zones": 2.0}
    assert Resources.empty().quantities() == {}


def test_quantities_are_a_new_dict_each_time():
    r = R("cpus:2;mem:64")
    r.quantities()["cpus"] = 99.0
    assert r.quantities() == {"cpus": 2.0, "mem": 64.0}


def test_subtracting_a_value_from_itself_leaves_nothing():
    assert (AGENT - AGENT).is_empty()


def test_get_and_items_show_public_values():
    assert AGENT.get("cpus") == 4.0
    assert AGENT.get("cpus", "*") == 4.0
    assert AGENT.get("cpus", "db") == 2.0
    assert AGENT.get("ports") == Ranges(((1, 10),))
    assert AGENT.get("zones") == frozenset({"a", "b"})
    assert AGENT.get("gpus") is None
    keys = [key for key, _ in AGENT.items()]
    assert keys[:3] == [("cpus", ""), ("cpus", "db"), ("cpus", "qa")]
    assert dict(AGENT.items())[("mem", "db")] == 50.0


def test_empty_and_truthiness():
    assert Resources.empty().is_empty()
    assert not Resources.empty()
    assert Resources() == Resources.empty()
    assert R("gpus:0;ports:[];zones:{}").is_empty()
    assert R("cpus:1")
    assert not R("cpus:1").is_empty()


def test_resources_are_immutable_hashable_values():
    r = R("cpus:1;ports:[1-2];zones:{a}")
    with pytest.raises(AttributeError):
        r._d = {}  # type: ignore[misc]
    with pytest.raises(AttributeError):
        r.extra = 1  # type: ignore[attr-defined]
    same = R("zones:{a};ports:[1-1,2-2];cpus:1.0")
    assert r == same
    assert hash(r) == hash(same)
    assert {r: "x"}[same] == "x"
    assert r != R("cpus:1")
    assert r != "cpus:1;ports:[1-2];zones:{a}"
    assert pickle.loads(pickle.dumps(r)) == r


def test_constructor_validates_like_parse():
    with pytest.raises(InvalidResources, match="bad resource 'cpus': -1 is negative"):
        Resources({("cpus", ""): -1})
    with pytest.raises(InvalidResources, match="is a string; give a set of strings"):
        Resources({("zones", ""): "a"})
    with pytest.raises(InvalidResources, match="'cpus' given twice"):
        Resources({("cpus", ""): 1, ("cpus", "*"): 2})
    with pytest.raises(InvalidResources, match="True is not a resource value"):
        Resources({("cpus", ""): True})


# ---- proto -------------------------------------------------------------------

RES = messages_pb2.Resource


def test_proto_round_trip_keeps_every_kind():
    r = R("cpus:1.5;cpus(db):2;mem:64;ports:[1-3,7-9];zones:{b,a};custom:0.001")
    msgs = r.to_proto()
    assert [(m.name, m.role) for m in msgs] == [
        ("cpus", ""),
        ("cpus", "db"),
        ("mem", ""),
        ("ports", ""),
        ("custom", ""),
        ("zones", ""),
    ]
    assert msgs[3].type == RES.RANGES
    assert [(x.begin, x.end) for x in msgs[3].ranges] == [(1, 3), (7, 9)]
    assert msgs[5].type == RES.SET and list(msgs[5].items) == ["a", "b"]
    wire = [RES.FromString(m.SerializeToString()) for m in msgs]
    assert Resources.from_proto(wire) == r


def test_from_proto_sums_repeated_entries_of_one_type():
    msgs = [
        RES(name="cpus", type=RES.SCALAR, scalar=1.5),
        RES(name="cpus", type=RES.SCALAR, scalar=0.5, role="*"),
        RES(name="ports", type=RES.RANGES, ranges=[messages_pb2.Range(begin=1, end=2)]),
        RES(name="ports", type=RES.RANGES, ranges=[messages_pb2.Range(begin=3, end=4)]),
    ]
    assert Resources.from_proto(msgs) == R("cpus:2;ports:[1-4]")


@pytest.mark.parametrize(
    ("msgs", "message"),
    [
        ([RES(name="", scalar=1)], "resources[0] (name '', role ''): empty name"),
        (
            [RES(name="cpus", scalar=1), RES(name="mem", scalar=-1)],
            "resources[1] (name 'mem', role ''): -1 is negative",
        ),
        (
            [RES(name="cpus", scalar=math.nan)],
            "resources[0] (name 'cpus', role ''): nan is not a finite number",
        ),
        ([RES(name="cpus", scalar=math.inf)], "inf is not a finite number"),
        ([RES(name="mem", scalar=1e13)], "larger than the maximum"),
        (
            [RES(name="ports", type=RES.RANGES, ranges=[messages_pb2.Range(begin=9, end=3)])],
            "resources[0] (name 'ports', role ''): range 9-3 has begin > end",
        ),
        (
            [RES(name="x", type=RES.SCALAR, scalar=1), RES(name="x", type=RES.SET, items=["a"])],
            "resources[1] (name 'x', role ''): 'x' is a set here but a scalar in resources[0]",
        ),
        (
            [RES(name="cpus", scalar=1, role="-x")],
            "resources[0] (name 'cpus', role '-x'): bad role '-x'",
        ),
        ([RES(name="cpus", scalar=1, role="a b")], "bad role 'a b'"),
        ([RES(name="c;d", scalar=1)], "bad name 'c;d'"),
        ([RES(name="cpus", type=7)], "unknown type 7"),
        ([RES(name="cpus", scalar=1, items=["a"])], "a SCALAR must not carry ranges or items"),
        ([RES(name="ports", type=RES.RANGES, scalar=1)], "RANGES must not carry a scalar or items"),
        ([RES(name="z", type=RES.SET, items=["a", ""])], "set has an empty item"),
        ([RES(name="z", type=RES.SET, items=["a,b"])], "set item 'a,b' must not contain"),
        ([RES(name="ports", type=RES.SCALAR, scalar=5)], "'ports' must be ranges"),
    ],
)
def test_from_proto_rejects_bad_input_naming_the_item(msgs, message):
    with pytest.raises(InvalidResources, match=re.escape(message)):
        Resources.from_proto(msgs)


# ---- properties ----------------------------------------------------------------

_ROLES = st.sampled_from(["", "db", "qa.prod"])
_scalars = st.integers(0, 10**12).map(lambda milli: milli / 1000)
_ranges = st.lists(st.tuples(st.integers(0, 65000), st.integers(0, 500)), max_size=3).map(
    lambda ps: Ranges(tuple((b, b + n) for b, n in ps))
)
_sets = st.frozensets(st.sampled_from("abcde"), max_size=3)


def _keyed(name: str, values: st.SearchStrategy) -> st.SearchStrategy:
    """Up to two roles' worth of one resource name (one draw per name keeps this fast)."""
    by_role = st.dictionaries(_ROLES, values, max_size=2)
    return by_role.map(lambda d: {(name, role): v for role, v in d.items()})


resources = st.tuples(
    _keyed("cpus", _scalars),
    _keyed("mem", _scalars),
    _keyed("acme.io/fpga", _scalars),
    _keyed("ports", _ranges),
    _keyed("zones", _sets),
).map(lambda parts: Resources({k: v for part in parts for k, v in part.items()}))


def _without_overlap(b: Resources, a: Resources) -> Resources:
    """`b` minus the ports and set items `a` already has: + is a union for those, as in Mesos."""
    values = {}
    for key, v in b.items():
        theirs = a.get(*key)
        if isinstance(v, Ranges | frozenset) and theirs is not None:
            v = v - theirs
        values[key] = v
    return Resources(values)


@given(resources)
def test_property_parse_inverts_format(r):
    assert Resources.parse(r.format()) == r


@given(resources)
def test_property_from_proto_inverts_to_proto(r):
    assert Resources.from_proto(r.to_proto()) == r


@given(resources)
def test_property_add_to_builds_what_to_proto_returns(r):
    offer = messages_pb2.Offer()
    r.add_to(offer.resources)
    assert list(offer.resources) == r.to_proto()


@given(resources, resources)
def test_property_add_is_commutative(a, b):
    assert a + b == b + a


@given(resources, resources)
def test_property_subtract_undoes_add(a, b):
    b = _without_overlap(b, a)
    assert (a + b) - b == a


@given(resources, resources)
def test_property_a_does_not_contain_more_than_itself(a, b):
    b = _without_overlap(b, a)
    assert a.contains(a + b) is (not b)
    assert (a + b).contains(a)


@given(resources, resources)
def test_property_resources_never_go_negative(a, b):
    """Subtracting either fits and leaves nothing negative, or raises and changes nothing."""
    for taken in (b, a.unreserved(), a + b):
        if a.contains(taken):
            rest = a - taken
            assert rest + taken == a
            assert all(q >= 0 for q in rest.quantities().values())
        else:
            before = a.format()
            with pytest.raises(InvalidResources, match="cannot subtract"):
                a - taken
            assert a.format() == before


@pytest.mark.parametrize(
    ("text", "role", "expected"),
    [
        ("cpus:1;mem:64", "db", "cpus(db):1;mem(db):64"),
        ("cpus(db):1;cpus:2;ports(db):[1-2];ports:[3-4]", "*", "cpus:3;ports:[1-4]"),
        ("", "db", ""),
    ],
)
def test_reassigned_moves_every_entry_under_one_role(text: str, role: str, expected: str) -> None:
    assert Resources.parse(text).reassigned(role) == Resources.parse(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("cpus(db):2;mem(db):64", "cpus(db):1;mem:64", "cpus(db):1"),
        ("ports:[1-10]", "ports:[5-20]", "ports:[5-10]"),
        ("zones:{a,b}", "zones:{b,c}", "zones:{b}"),
        ("cpus:1", "mem:1", ""),
    ],
)
def test_overlap_is_what_both_hold(a: str, b: str, expected: str) -> None:
    assert Resources.parse(a).overlap(Resources.parse(b)) == Resources.parse(expected)


def test_a_parent_roles_reservation_is_allocatable_to_its_subroles_only():
    r = Resources.parse("cpus:1;cpus(eng):2;cpus(eng/web):3;cpus(engine):4")
    assert r.allocatable_to("eng/web") == Resources.parse("cpus:1;cpus(eng):2;cpus(eng/web):3")
    assert r.allocatable_to("eng") == Resources.parse("cpus:1;cpus(eng):2")
    assert r.allocatable_to("*") == Resources.parse("cpus:1")
