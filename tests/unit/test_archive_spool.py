"""The archive's segment spool: FIFO, durable across reopen, bounded, torn tails cut off."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbiter.satellite.archive.spool import BatchSpool, SpoolLocked


def drain(spool: BatchSpool) -> list[bytes]:
    out = []
    while (batch := spool.head()) is not None:
        out.append(batch.payload)
        spool.ack(batch.seq)
    return out


def test_batches_come_out_in_order_and_leave_only_when_acknowledged(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, max_bytes=1 << 20)
    assert spool.append([(b"a", 1), (b"bb", 2)], now=100.0) == 2
    assert spool.append([(b"ccc", 3)], now=101.0) == 1
    head = spool.head()
    assert head is not None and (head.payload, head.count, head.spooled_at) == (b"a", 1, 100.0)
    assert spool.head() == head  # looking does not remove
    assert spool.pending()[:2] == (3, 6)
    spool.ack(head.seq + 5)  # not the head: nothing happens
    assert len(spool) == 3
    assert drain(spool) == [b"a", b"bb", b"ccc"]
    assert spool.head() is None and spool.pending_bytes == 0 and spool.oldest() is None


def test_what_was_appended_survives_a_reopen_and_what_was_acked_does_not_come_back(
    tmp_path: Path,
) -> None:
    spool = BatchSpool(tmp_path, max_bytes=1 << 20)
    spool.append([(b"one", 1), (b"two", 1), (b"three", 1)], now=1.0)
    first = spool.head()
    assert first is not None
    spool.ack(first.seq)
    spool.close()
    again = BatchSpool(tmp_path, max_bytes=1 << 20)
    assert again.oldest() == 1.0
    assert drain(again) == [b"two", b"three"]
    again.append([(b"four", 1)], now=2.0)
    head = again.head()
    assert head is not None and head.seq == 3  # sequences never go back
    again.close()


def test_a_torn_last_record_is_cut_off_and_the_rest_kept(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, max_bytes=1 << 20)
    spool.append([(b"whole", 1), (b"torn-by-a-crash", 1)], now=1.0)
    spool.close()
    (seg,) = tmp_path.glob("seg-*.log")
    seg.write_bytes(seg.read_bytes()[:-4])
    again = BatchSpool(tmp_path, max_bytes=1 << 20)
    assert drain(again) == [b"whole"]
    again.append([(b"next", 1)], now=2.0)
    assert drain(again) == [b"next"]


def test_a_damaged_record_in_an_older_segment_skips_that_segment_only(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, max_bytes=1 << 20, segment_bytes=64)
    spool.append([(b"x" * 40, 1), (b"y" * 40, 1), (b"z" * 40, 1)], now=1.0)
    spool.close()
    segs = sorted(tmp_path.glob("seg-*.log"))
    assert len(segs) == 3
    damaged = bytearray(segs[0].read_bytes())
    damaged[-1] ^= 0xFF
    segs[0].write_bytes(bytes(damaged))
    again = BatchSpool(tmp_path, max_bytes=1 << 20, segment_bytes=64)
    assert drain(again) == [b"y" * 40, b"z" * 40]


def test_a_full_spool_takes_what_fits_and_says_how_many(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, max_bytes=200)
    assert spool.append([(b"a" * 60, 1), (b"b" * 60, 1), (b"c" * 60, 1)], now=1.0) == 2
    assert spool.disk_bytes <= 200
    assert drain(spool) == [b"a" * 60, b"b" * 60]
    assert spool.append([(b"d" * 60, 1)], now=2.0) == 1  # delivered batches free the space


def test_delivered_segments_are_deleted(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    spool.append([(bytes(80), 1) for _ in range(5)], now=1.0)
    assert len(list(tmp_path.glob("seg-*.log"))) == 5
    drain(spool)
    assert list(tmp_path.glob("seg-*.log")) == []
    assert spool.disk_bytes == 0


def test_a_second_user_of_the_directory_is_refused(tmp_path: Path) -> None:
    spool = BatchSpool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(SpoolLocked, match="in use by another process"):
        BatchSpool(tmp_path, max_bytes=1 << 20)
    spool.close()
    BatchSpool(tmp_path, max_bytes=1 << 20).close()
