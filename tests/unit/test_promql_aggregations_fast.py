"""The memoised, numpy-backed aggregations and histogram_quantile against a plain reference.

The reference is the straightforward per-group code they replaced (which
matches promtool bit for bit): build each sample's group key, collect each
group's values in input order, reduce each list sequentially. Every float
is compared by its bits (NaNs only as NaN), along with labels, output order
and errors. Vectors are random: NaN, +/-Inf, -0.0, huge values, few label
values so that groups repeat, by/without/empty grouping, `__name__`.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from orbiter.satellite.promql import aggregations as agg
from orbiter.satellite.promql import histograms
from orbiter.satellite.promql.aggregations import LabelMemo, aggregate
from orbiter.satellite.promql.functions import (
    LABEL_NAME_RE,
    bucket_quantile,
    format_float,
    parse_go_float,
    quantile,
)
from orbiter.satellite.promql.histograms import histogram_quantile
from orbiter.satellite.promql.values import QueryError

# --- the reference --------------------------------------------------------------


def ref_key(lset, grouping, without):
    if without:
        dropped = set(grouping) | {"__name__"}
        return tuple(p for p in lset if p[0] not in dropped)
    return tuple(p for p in lset if p[0] in grouping)


def ref_groups(vector, grouping, without):
    groups: dict = {}
    for lset, v in vector:
        groups.setdefault(ref_key(lset, grouping, without), []).append(v)
    return groups


def ref_sum(vs):
    total = vs[0]
    for v in vs[1:]:
        total += v
    return total


def ref_avg(vs):
    mean, count = vs[0], 1
    for v in vs[1:]:
        count += 1
        if math.isinf(mean) and (
            (math.isinf(v) and (mean > 0) == (v > 0)) or (not math.isinf(v) and v == v)
        ):
            continue
        mean += v / count - mean / count
    return mean


def ref_max(vs):
    best = vs[0]
    for v in vs[1:]:
        if best < v or best != best:
            best = v
    return best


def ref_min(vs):
    best = vs[0]
    for v in vs[1:]:
        if best > v or best != best:
            best = v
    return best


def ref_stdvar(vs):
    mean, value, count = vs[0], 0.0, 1
    for v in vs[1:]:
        count += 1
        delta = v - mean
        mean += delta / count
        value += delta * (v - mean)
    return value / count


def ref_stddev(vs):
    var = ref_stdvar(vs)
    return math.sqrt(var) if var >= 0 or var != var else math.nan


REF_REDUCERS = {
    "sum": ref_sum,
    "avg": ref_avg,
    "max": ref_max,
    "min": ref_min,
    "count": lambda vs: float(len(vs)),
    "group": lambda vs: 1.0,
    "stdvar": ref_stdvar,
    "stddev": ref_stddev,
}


def ref_top_bottom(top, vector, grouping, without, param):
    """Prometheus's bounded heap, as in aggregations.py before the memo."""
    if not (param <= agg.MAX_INT64 and param >= agg.MIN_INT64):
        raise QueryError(f"Scalar value {format_float(param)} overflows int64")
    k = int(param)
    if k < 1:
        return []

    def less(a, b):
        return a != a or (a < b if top else a > b)

    heaps: dict = {}
    for lset, v in vector:
        heap = heaps.setdefault(ref_key(lset, grouping, without), [])
        if not heap:
            heap.append((lset, v))
            continue
        root = heap[0][1]
        if len(heap) < k or (root < v if top else root > v) or root != root:
            if len(heap) == k:
                if k == 1:
                    heap[0] = (lset, v)
                    continue
                agg._heap_pop(heap, less)
            agg._heap_push(heap, (lset, v), less)
    out = []
    for heap in heaps.values():
        sign = -1.0 if top else 1.0
        heap.sort(key=lambda s: (s[1] != s[1], sign * s[1] if s[1] == s[1] else 0.0))
        out.extend(heap)
    return out


def ref_count_values(vector, grouping, without, label):
    if not LABEL_NAME_RE.match(label):
        raise QueryError(f'invalid label name "{label}"')
    names = list(grouping) if without else [*grouping, label]
    counts: dict = {}
    for lset, v in vector:
        with_value = tuple(sorted([p for p in lset if p[0] != label] + [(label, format_float(v))]))
        key = ref_key(with_value, names, without)
        counts[key] = counts.get(key, 0) + 1
    return [(key, float(n)) for key, n in counts.items()]


def ref_aggregate(op, vector, grouping, without, param):
    if op in ("topk", "bottomk"):
        return ref_top_bottom(op == "topk", vector, grouping, without, param)
    if op == "count_values":
        return ref_count_values(vector, grouping, without, str(param))
    groups = ref_groups(vector, grouping, without)
    if op == "quantile":
        return [(key, quantile(float(param), vs)) for key, vs in groups.items()]
    if op not in REF_REDUCERS:
        raise QueryError(f"aggregation '{op}' is not supported")
    return [(key, REF_REDUCERS[op](vs)) for key, vs in groups.items()]


def ref_histogram_quantile(q, vector):
    groups: dict = {}
    for lset, v in vector:
        le = next((p for p in lset if p[0] == "le"), None)
        if le is None or parse_go_float(le[1]) is None:
            continue
        key = tuple(p for p in lset if p[0] != "le")
        groups.setdefault(key, []).append((parse_go_float(le[1]), v))
    return [
        (tuple(p for p in key if p[0] != "__name__"), bucket_quantile(q, buckets))
        for key, buckets in groups.items()
    ]


# --- comparing ----------------------------------------------------------------------


def bits(v: float) -> bytes:
    return b"NaN" if v != v else struct.pack("<d", v)


def outcome(f, *args):
    """Result with floats as bits, or the error's type and message."""
    try:
        return [(lset, bits(v)) for lset, v in f(*args)]
    except (QueryError, ValueError, TypeError) as e:
        return (type(e), str(e))


def test_bits_tell_signed_zeros_apart():
    assert bits(0.0) != bits(-0.0)
    assert bits(math.nan) == bits(-math.nan)


# --- random vectors -----------------------------------------------------------------

SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1e308, 5e-324, 1.0, -1.0, 0.1, 3.0]


def random_value(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(SPECIAL)
    if roll < 0.5:
        return float(rng.randint(-3, 3))
    return rng.uniform(-1e3, 1e3) * 10 ** rng.randint(-5, 5)


def random_labels(rng: random.Random, names: int) -> tuple:
    labels = {"__name__": rng.choice(["a", "b", "c"])} if rng.random() < 0.9 else {}
    for name in ["instance", "job", "le", "mode", "path", "zone"][:names]:
        if rng.random() < 0.85:
            labels[name] = rng.choice(["0", "1", "2", "x"])
    return tuple(sorted(labels.items()))


def random_vector(rng: random.Random, n: int, names: int) -> list:
    """Distinct series (as the engine gives an aggregation), values of any kind."""
    seen: dict = {}
    for _ in range(n):
        seen.setdefault(random_labels(rng, names), random_value(rng))
    return list(seen.items())


def with_copied_labels(vector: list) -> list:
    """The same vector with equal but new labels tuples, as rate() hands them out."""
    return [(tuple(list(lset)), v) for lset, v in vector]


GROUPINGS = [
    ([], False),
    ([], True),
    (["job"], False),
    (["job"], True),
    (["instance", "mode"], False),
    (["instance", "mode"], True),
    (["__name__", "job"], False),
    (["le", "path"], True),
    (["nope"], False),
]

OPS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]


@pytest.fixture(params=["columns", "one_group"])
def reduction_path(request, monkeypatch):
    """Every case both ways: column steps across groups, and group by group."""
    monkeypatch.setattr(agg, "_COLUMN_COST", 0 if request.param == "columns" else 10**9)
    return request.param


@pytest.mark.parametrize("seed", range(40))
def test_reductions_match_reference(seed, reduction_path):
    rng = random.Random(seed)
    vector = random_vector(rng, rng.choice([1, 5, 40, 300]), rng.randint(1, 6))
    for grouping, without in GROUPINGS:
        for op in OPS:
            want = outcome(ref_aggregate, op, vector, grouping, without, None)
            assert outcome(aggregate, op, vector, grouping, without, None) == want, (op, grouping)
            copied = with_copied_labels(vector)  # found by value, not by id
            assert outcome(aggregate, op, copied, grouping, without, None) == want


@pytest.mark.parametrize("seed", range(20))
def test_parametrised_aggregations_match_reference(seed):
    rng = random.Random(1000 + seed)
    vector = random_vector(rng, rng.choice([1, 7, 60, 200]), rng.randint(1, 6))
    cases = [("quantile", q) for q in (-0.5, 0.0, 0.25, 0.5, 0.9, 1.0, 2.0, math.nan)]
    cases += [(op, k) for op in ("topk", "bottomk") for k in (-1.0, 0.0, 1.0, 2.0, 3.7, 50.0)]
    cases += [("topk", math.nan), ("bottomk", 1e19)]
    cases += [("count_values", s) for s in ("value", "job", "le", "__name__", "0bad", "")]
    for grouping, without in GROUPINGS:
        for op, param in cases:
            want = outcome(ref_aggregate, op, vector, grouping, without, param)
            got = outcome(aggregate, op, vector, grouping, without, param)
            assert got == want, (op, param, grouping, without)


def test_signed_zero_sums_and_extremes():
    """Sums that bincount's 0.0 start would get wrong; zeros that max/min must keep."""
    vector = [
        ((("g", "a"), ("i", "1")), -0.0),
        ((("g", "a"), ("i", "2")), -0.0),
        ((("g", "b"), ("i", "1")), -0.0),
        ((("g", "b"), ("i", "2")), 0.0),
        ((("g", "c"), ("i", "1")), 0.0),
        ((("g", "c"), ("i", "2")), -0.0),
        ((("g", "d"), ("i", "1")), math.nan),
        ((("g", "d"), ("i", "2")), -0.0),
        ((("g", "d"), ("i", "3")), 0.0),
        ((("g", "e"), ("i", "1")), -0.0),
    ]
    for op in OPS:
        for cost in (0, 10**9):
            agg._COLUMN_COST, saved = cost, agg._COLUMN_COST
            try:
                got = outcome(aggregate, op, vector, ["g"], False, None)
            finally:
                agg._COLUMN_COST = saved
            assert got == outcome(ref_aggregate, op, vector, ["g"], False, None), op
    sums = dict(aggregate("sum", vector, ["g"], False, None))
    assert [bits(sums[(("g", k),)]) for k in "abce"] == [bits(x) for x in (-0.0, 0.0, 0.0, -0.0)]


def test_mixed_group_sizes_take_each_path():
    """One big group among many small ones, and the other way round."""
    rng = random.Random(5)
    big = [((("g", "big"), ("i", str(i))), random_value(rng)) for i in range(500)]
    small = [((("g", str(i)), ("i", "0")), random_value(rng)) for i in range(500)]
    pairs = [((("g", str(i // 2)), ("i", str(i))), random_value(rng)) for i in range(1000)]
    for vector in (big + small, small + big, pairs, big[:1] + pairs):
        for op in OPS:
            want = outcome(ref_aggregate, op, vector, ["g"], False, None)
            assert outcome(aggregate, op, vector, ["g"], False, None) == want, op


def test_unsupported_operator_and_empty_vectors():
    with pytest.raises(QueryError, match="'median' is not supported"):
        aggregate("median", [], [], False, None)
    for op in [*OPS, "quantile", "topk", "count_values"]:
        assert aggregate(op, [], ["job"], False, 1.0 if op != "count_values" else "v") == []


def test_group_labels_are_the_same_objects_every_call():
    """Downstream memos (histogram_quantile over a sum) find them by id."""
    vector = random_vector(random.Random(3), 200, 4)
    first = aggregate("sum", vector, ["job", "le"], False, None)
    second = aggregate("sum", with_copied_labels(vector), ["job", "le"], False, None)
    assert all(a[0] is b[0] for a, b in zip(first, second, strict=True))


# --- the memo itself -----------------------------------------------------------------


def test_memo_clears_between_calls_only():
    """Past its limit a memo starts afresh, yet a call never splits a group."""
    memo = LabelMemo(lambda lset, number: number(lset[:1]), limit=3)
    lsets = [(("a", str(i % 4)), ("b", str(i))) for i in range(10)]
    first = memo.lookup(lsets)
    assert first == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    again = memo.lookup(lsets)  # cleared at the start: renumbered, consistently
    assert again == first
    assert memo.labels == [(("a", str(i)),) for i in range(4)]


def test_memo_remembers_label_lists_not_what_it_handed_out():
    memo = LabelMemo(lambda lset, number: number(lset[:1]))
    lsets = [(("a", str(i % 3)), ("b", str(i))) for i in range(10)]
    memo.lookup(lsets)
    memo.lookup(lsets)[0] = 99  # found by id this time: the list is remembered
    memo.lookup(lsets)[1] = 99  # found as a remembered list
    assert memo.lookup(lsets) == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    lsets[5] = (("a", "9"), ("b", "5"))  # same length and ends, another label set
    assert memo.lookup(lsets) == [0, 1, 2, 0, 1, 3, 0, 1, 2, 0]


def test_group_memos_share_one_budget(monkeypatch):
    """Past the budget every grouping starts afresh, with the same answers."""
    monkeypatch.setattr(agg, "_GROUP_MEMOS", {})
    monkeypatch.setattr(agg, "_MAX_GROUPED_LABEL_SETS", 100)
    vector = random_vector(random.Random(8), 300, 5)
    want = [outcome(ref_aggregate, "sum", vector, g, w, None) for g, w in GROUPINGS]
    for _ in range(3):
        got = [outcome(aggregate, "sum", vector, g, w, None) for g, w in GROUPINGS]
        assert got == want
        assert sum(map(len, agg._GROUP_MEMOS.values())) <= 100 + len(vector)


def test_memo_by_id_never_confuses_dead_tuples():
    """A rebuilt tuple that reuses a dead tuple's id is looked up by value."""
    memo = LabelMemo(lambda lset, number: number(lset))
    for i in range(2000):
        lset = (("a", str(i)),)
        assert memo.labels[memo.lookup([lset])[0]] == lset
        assert memo.labels[memo.lookup([tuple(list(lset))])[0]] == lset


# --- histogram_quantile --------------------------------------------------------------

LE_TEXTS = ["0.5", "1", "1e3", "+Inf", "Inf", "inf", "-1", "0", "NaN", "0x1p-2", "1_0", "abc", ""]


def random_histograms(rng: random.Random) -> list:
    """Buckets in random order; missing +Inf, repeated and unparsable bounds, odd counts."""
    vector = []
    for h in range(rng.randint(1, 12)):
        base = {"__name__": rng.choice(["x_bucket", "y_bucket"]), "job": str(h % 4)}
        if rng.random() < 0.2:
            base["__name__"] = "x_bucket"
            base["job"] = "0"
        texts = rng.sample(LE_TEXTS, rng.randint(0, 8))
        if rng.random() < 0.8:
            texts.append("+Inf")
        count = 0.0
        for text in texts:
            count += rng.choice([0.0, 1.0, 2.5, 10.0, -3.0, math.nan, math.inf, -0.0])
            labels = dict(base, le=text) if rng.random() < 0.95 else dict(base)
            vector.append((tuple(sorted(labels.items())), count))
    rng.shuffle(vector)
    return vector


@pytest.mark.parametrize("seed", range(60))
def test_histogram_quantile_matches_reference(seed):
    rng = random.Random(seed)
    vector = random_histograms(rng)
    for q in (0.0, 0.5, 0.9, 0.99, 1.0, -1.0, 2.0, math.nan):
        want = outcome(ref_histogram_quantile, q, vector)
        assert outcome(histogram_quantile, q, vector) == want, q
        assert outcome(histogram_quantile, q, with_copied_labels(vector)) == want, q


def test_histogram_quantile_of_an_aggregation():
    """The usual shape: histogram_quantile(0.9, sum by (le, job) (...)), round after round."""
    rng = random.Random(11)
    vector = random_histograms(rng)
    for _ in range(3):
        summed = aggregate("sum", with_copied_labels(vector), ["job", "le"], False, None)
        want = outcome(ref_histogram_quantile, 0.9, summed)
        assert outcome(histogram_quantile, 0.9, summed) == want


def plain_histograms(rng: random.Random) -> list:
    """Distinct bounds, finite counts rising with the bound: the vectorised path's groups."""
    vector = []
    for h in range(rng.randint(1, 30)):
        bounds = sorted(rng.sample([-math.inf, -1.0, -0.0, 0.25, 0.5, 1.0, 2.0, 10.0, 1e3], 5))
        texts = [format_float(x) if x != -math.inf else "-Inf" for x in bounds]
        if rng.random() < 0.9:
            texts.append("+Inf")
        count = rng.choice([0.0, -0.0, -5.0, 3.0])
        for text in texts:
            count += rng.choice([0.0, 0.0, 1.0, 2.0, 0.1, 1e-300, 7.5])
            vector.append(((("__name__", "h_bucket"), ("h", str(h)), ("le", text)), count))
    rng.shuffle(vector)
    return vector


@pytest.mark.parametrize("seed", range(60))
def test_plain_histograms_are_computed_at_once(seed, monkeypatch):
    rng = random.Random(seed)
    vector = plain_histograms(rng)
    fallbacks = []

    def spy(q, buckets):
        fallbacks.append(buckets)
        return bucket_quantile(q, buckets)

    monkeypatch.setattr(histograms, "bucket_quantile", spy)
    for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0, 1 / 3):
        assert outcome(histogram_quantile, q, vector) == outcome(ref_histogram_quantile, q, vector)
    assert fallbacks == []


@pytest.mark.parametrize("seed", range(100))
def test_nearly_plain_histograms_fall_back(seed):
    """One odd bucket (NaN or repeated bound, NaN/Inf or falling count) sends its group back."""
    rng = random.Random(seed)
    vector = plain_histograms(rng)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(vector))
        lset, count = vector[i]
        kind = rng.randrange(4)
        if kind < 2:
            lset = (*lset[:2], ("le", rng.choice(["NaN", "nan", "NaN", "+Inf", "0.5", "1"])))
        elif kind == 2:
            count = rng.choice([math.nan, math.inf, -math.inf])
        else:
            count = count - rng.choice([0.5, 1.0, 100.0])
        vector[i] = (lset, count)
    for q in (0.0, 0.25, 0.5, 0.9, 1.0):
        assert outcome(histogram_quantile, q, vector) == outcome(ref_histogram_quantile, q, vector)
