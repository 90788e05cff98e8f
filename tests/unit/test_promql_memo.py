"""by_identity: results kept per label-set object, never handed to another object."""

from __future__ import annotations

from orbiter.satellite.promql.memo import by_identity


def test_the_same_object_gets_the_same_result_object_without_recomputing():
    calls = []

    def drop_first(lset):
        calls.append(lset)
        return lset[1:]

    memo = by_identity(drop_first)
    lset = (("__name__", "up"), ("job", "a"))
    first = memo(lset)
    assert memo(lset) is first and first == (("job", "a"),)
    assert len(calls) == 1


def test_an_equal_but_different_object_is_computed_for_itself():
    memo = by_identity(lambda lset: lset[1:])
    a = (("__name__", "up"), ("job", "a"))
    b = tuple(list(a))  # equal, another object
    assert memo(a) == memo(b) == (("job", "a"),)
    assert memo(b) is not memo(a)


def test_reaching_the_bound_empties_the_table_and_results_stay_right():
    calls = []
    memo = by_identity(lambda lset: calls.append(lset) or len(lset), limit=2)
    sets = [(("a", str(i)),) * (i + 1) for i in range(5)]
    assert [memo(s) for s in sets] == [1, 2, 3, 4, 5]
    assert [memo(s) for s in sets] == [1, 2, 3, 4, 5]
    assert len(calls) > 5  # some were forgotten and computed again, none answered wrongly
