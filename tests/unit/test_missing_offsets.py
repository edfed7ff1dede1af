"""A jump in a partition's offsets is suspected when the reader answers past the same expected
offset in several deliveries, and taken as the log's only where the broker says its log starts
past that offset (records deleted by retention); otherwise it is sought back, however often."""

from __future__ import annotations

from riskstream.agents.missing_offsets import MissingOffsets
from riskstream.agents.pipeline import SourceRecord
from riskstream.records import Side
from riskstream.records.codec import dumps
from riskstream.records.linked_fills import LinkedFill
from tests.unit.test_pipeline_event_time import LINKED, MARKET, TRADES, Clock, o, pipeline, q

A = (MARKET, 0)


def test_a_jump_seen_in_three_deliveries_is_taken() -> None:
    missing: MissingOffsets[tuple[str, int]] = MissingOffsets(after=3)
    assert not missing.gone(A, 0, delivery=1)
    assert not missing.gone(A, 0, delivery=1), "the same delivery counts once"
    assert not missing.gone(A, 0, delivery=2)
    assert missing.gone(A, 0, delivery=3)
    # Taken: a later jump starts its own count.
    assert not missing.gone(A, 0, delivery=4)


def test_progress_between_jumps_starts_the_count_over() -> None:
    missing: MissingOffsets[tuple[str, int]] = MissingOffsets(after=3)
    missing.gone(A, 0, delivery=1)
    missing.gone(A, 0, delivery=2)
    assert not missing.gone(A, 7, delivery=3)
    assert not missing.gone(A, 7, delivery=4)
    assert missing.gone(A, 7, delivery=5)


async def test_market_data_whose_start_was_deleted_goes_on_from_the_first_record_kept() -> None:
    """Every restart of the fold reads market data from offset 0; retention deleted 0..4, and
    every fetch answers from 5. Sought back three times, the partition is suspected; the broker
    says its log starts at 5, and the next answer is taken: the quote of offset 5 is folded and
    the order that waited for the market goes."""
    p, accounts = pipeline(Clock())
    await p.on_batch([o(0, 1500)])
    for _ in range(3):
        await p.on_batch([q(5, 1000)])
        assert p.take_ahead() == {A: 0}
        assert p.merge.next_offset(A) == 0
    assert p.take_suspected() == {A: 0}
    p.log_starts_are({A: (0, 5)})
    await p.on_batch([q(5, 1000), q(6, 2000)])
    assert p.take_ahead() == {}
    assert p.merge.next_offset(A) == 7
    assert accounts.applied_offset("A", 0) == 0
    assert p.merge.next_offset((TRADES, 0)) == 1


async def test_records_still_in_the_log_are_never_skipped_however_long_they_come_late() -> None:
    """A restart on a backlog: records fetched before the seek back to the committed offset
    keep coming after it, for as many deliveries as they fill. However many, nothing is
    skipped without the broker's word that the log starts past the offset expected (CI lost
    447 records of a partition to the count of deliveries alone)."""
    p, _ = pipeline(Clock())
    for n in range(12):
        await p.on_batch([q(5 + n, 1000 + n)])
        assert p.take_ahead() == {A: 0}
        assert p.merge.next_offset(A) == 0
        if p.take_suspected():
            p.log_starts_are({})  # the broker: the log starts at 0, nothing to take
    await p.on_batch([q(0, 900), q(1, 950)])
    assert p.take_ahead() == {}
    assert p.merge.next_offset(A) == 2


async def test_a_log_start_between_the_offset_expected_and_the_record_skips_only_what_is_gone() -> None:
    """The broker's log starts at 3; the record in hand is 5 (an older fetch's): 0..2 are
    gone, 3 and 4 are read again."""
    p, _ = pipeline(Clock())
    for _ in range(3):
        await p.on_batch([q(5, 1000)])
    assert p.take_suspected() == {A: 0}
    p.log_starts_are({A: (0, 3)})
    await p.on_batch([q(5, 1000)])
    assert p.take_ahead() == {A: 3}
    assert p.merge.next_offset(A) == 3


async def test_a_jump_seen_once_is_sought_back_and_nothing_is_skipped() -> None:
    p, _ = pipeline(Clock())
    await p.on_batch([q(0, 1000), q(3, 1200)])
    assert p.take_ahead() == {A: 1}
    await p.on_batch([q(1, 1100), q(2, 1150), q(3, 1200)])
    assert p.take_ahead() == {}
    assert p.merge.next_offset(A) == 4


def linked_fill(offset: int, order_id: str) -> SourceRecord:
    fill = LinkedFill("OWNER", "A", 0, order_id, "AAPL", Side.BUY, 5.0, 100.0, 0)
    return SourceRecord(LINKED, 0, offset, b"OWNER", dumps(fill.to_json()))


async def test_linked_fills_whose_start_was_deleted_go_on_from_the_first_record_kept() -> None:
    """The linked accounts' fills are read from offset 0 at every restart too, outside the
    merge: the same rule keeps their reader from seeking back for ever."""
    p, _ = pipeline(Clock(), linked=True)
    for _ in range(3):
        await p.on_batch([linked_fill(9, "x1")])
        assert p.take_linked_ahead() == {0: 0}
    assert p.take_suspected() == {(LINKED, 0): 0}
    p.log_starts_are({(LINKED, 0): (0, 9)})
    await p.on_batch([linked_fill(9, "x1"), linked_fill(10, "x2")])
    assert p.take_linked_ahead() == {}
    assert p.linked_next[0] == 11
