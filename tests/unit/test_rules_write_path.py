"""A rule's output into storage: the bulk path must do exactly what the per-sample one did."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from orbiter.satellite.series import Labels
from orbiter.satellite.tsdb import TSDB, OutOfOrderSample

RETENTION_MS = 60_000


def L(name: str, **labels: str) -> Labels:
    return tuple(sorted({"__name__": name, **labels}.items()))


def fresh(lbls: Labels) -> Labels:
    """An equal label set that is another object (as the engine hands them back)."""
    return tuple(list(lbls))


def contents(tsdb: TSDB) -> dict[Labels, list[tuple[int, bytes]]]:
    """Every series with every sample held (chunks too), values as their exact bits."""
    out = {}
    for lbls, series in tsdb._by_labels.items():
        ts, vs = series.window(-(2**62), 2**62)
        out[lbls] = [(t, struct.pack("<d", v)) for t, v in zip(ts, vs, strict=True)]
    return out


# ---------------------------------------------------------------------------
# TSDB.append_batch


def test_append_batch_equals_appends_and_reports_refused_samples_in_place() -> None:
    bulk, single = TSDB(), TSDB()
    a, b, c = L("r", i="a"), L("r", i="b"), L("r", i="c")
    for db in (bulk, single):
        db.append(b, 2_000, 0.0)  # b already has a newer sample: refused below
    refused = bulk.append_batch("w", [a, b, c], [1.0, 2.0, 3.0], 1_000)
    one_by_one = []
    for i, (lbls, v) in enumerate(zip([a, b, c], [1.0, 2.0, 3.0], strict=True)):
        try:
            single.append(lbls, 1_000, v)
        except OutOfOrderSample as e:
            one_by_one.append((i, str(e)))
    expected = [(1, str(OutOfOrderSample(b, 1_000, 2_000)))]
    assert [(i, str(e)) for i, e in refused] == one_by_one == expected
    assert contents(bulk) == contents(single)
    assert sorted(contents(bulk)) == [a, b, c]


def _no_lookup(labels: Labels) -> Any:
    raise AssertionError(f"looked {labels} up: not the bulk path")


def test_append_batch_goes_in_bulk_while_the_writer_repeats_its_batch() -> None:
    db = TSDB()
    labels = [L("r", i=str(i)) for i in range(3)]
    assert db.append_batch("w", labels, [1.0] * 3, 1_000) == []
    db._series = _no_lookup  # type: ignore[method-assign]
    assert db.append_batch("w", [fresh(lb) for lb in labels], [2.0] * 3, 2_000) == []
    del db._series
    db.append(labels[0], 2_500, 5.0)  # another write to one series spoils the bulk path
    db._series = _no_lookup  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="not the bulk path"):
        db.append_batch("w", labels, [3.0] * 3, 3_000)
    del db._series
    assert db.append_batch("w", labels, [3.0] * 3, 3_000) == []
    one = struct.pack("<d", 1.0)
    two, three, five = (struct.pack("<d", v) for v in (2.0, 3.0, 5.0))
    assert contents(db) == {
        labels[0]: [(1_000, one), (2_000, two), (2_500, five), (3_000, three)],
        labels[1]: [(1_000, one), (2_000, two), (3_000, three)],
        labels[2]: [(1_000, one), (2_000, two), (3_000, three)],
    }


def test_append_batch_refused_in_bulk_position_falls_back_and_reports() -> None:
    db = TSDB()
    labels = [L("r", i=str(i)) for i in range(3)]
    db.append_batch("w", labels, [1.0] * 3, 1_000)
    refused = db.append_batch("w", labels, [2.0] * 3, 1_000)  # same time: all out of order
    assert [i for i, _ in refused] == [0, 1, 2]
    assert all(isinstance(e, OutOfOrderSample) for _, e in refused)
    assert db.append_batch("w", labels, [2.0] * 3, 2_000) == []
    assert all(len(samples) == 2 for samples in contents(db).values())


def test_append_batch_naming_a_series_twice_never_goes_in_bulk() -> None:
    db = TSDB()
    a = L("r", i="a")
    for t in (1_000, 2_000):
        refused = db.append_batch("w", [a, a], [t + 1.0, t + 2.0], t)
        assert [(i, str(e)) for i, e in refused] == [(1, str(OutOfOrderSample(a, t, t)))]
    assert contents(db) == {
        a: [(1_000, struct.pack("<d", 1_001.0)), (2_000, struct.pack("<d", 2_001.0))]
    }
