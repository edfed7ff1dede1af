"""The event-time merge on its own: the order it releases events in is a function of the
partitions' contents, not of how deliveries interleave; a silent partition holds back until it
is read to its end and then for the allowed lateness only; positions never pass a held event."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from riskstream.core.event_time import MARKET_RANK, ORDER_RANK, EventTimeMerge

M0, M1, T0 = ("m", 0), ("m", 1), ("t", 0)


def merge(lateness_s: float = 0.25) -> EventTimeMerge[tuple[str, int], str]:
    m: EventTimeMerge[tuple[str, int], str] = EventTimeMerge(lateness_s, 10**12)
    m.track(M0, 0, 0)
    m.track(M1, 1, 0)
    m.track(T0, 0, 0)
    return m


def rank(p: tuple[str, int]) -> int:
    return MARKET_RANK if p[0] == "m" else ORDER_RANK


@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=30),
    st.lists(st.integers(0, 40), max_size=30),
    st.lists(st.integers(0, 40), max_size=30),
    st.randoms(use_true_random=False),
)
def test_release_order_does_not_depend_on_how_deliveries_interleave(
    a: list[int], b: list[int], c: list[int], rng: random.Random
) -> None:
    """Each partition in event-time order; delivered all at once, or record by record in a
    random interleaving with releases between: the same events in the same order."""
    parts = {M0: sorted(a), M1: sorted(b), T0: sorted(c)}

    def run(interleave: bool) -> list[str]:
        m = merge()
        out: list[str] = []
        cursors = dict.fromkeys(parts, 0)
        pending = [p for p in parts for _ in parts[p]]
        if interleave:
            rng.shuffle(pending)
        for p in pending:
            i = cursors[p]
            m.offer(p, i, parts[p][i], rank(p), f"{p[0]}{p[1]}@{i}")
            cursors[p] += 1
            if interleave:
                out += [r.item for r in m.release()]
        for p in parts:
            m.at_end(p, True, 0.0)
            m.at_end(p, True, 1.0)
        out += [r.item for r in m.release()]
        return out

    together = run(False)
    assert together == run(True)
    assert len(together) == sum(len(v) for v in parts.values())
    # Sorted by (event time, market before orders, partition).
    keys = []
    for item in together:
        p = (item[0], int(item[1]))
        i = int(item.split("@")[1])
        keys.append((parts[p][i], rank(p), p[1]))
    assert keys == sorted(keys)


def test_a_silent_partition_not_at_its_end_holds_back_however_long() -> None:
    m = merge()
    m.offer(M0, 0, 10, MARKET_RANK, "q")
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.at_end(M1, False, 0.0)
    m.at_end(M1, False, 10_000.0)
    assert m.release() == []
    assert m.waiting_on() == [M1]
    assert m.position(M0) == 0


def test_a_partition_at_its_end_is_waited_for_the_allowed_lateness_only() -> None:
    m = merge()
    m.offer(M0, 0, 10, MARKET_RANK, "q")
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.at_end(M1, True, 100.0)
    m.at_end(M1, True, 100.2)
    assert m.release() == []
    m.at_end(M1, True, 100.3)
    # The quote goes (M1 idle); the order waits for market data past its time on M0.
    assert [r.item for r in m.release()] == ["q"]
    assert m.position(M0) == 1 and m.position(T0) == 0
    m.offer(M0, 1, 25, MARKET_RANK, "q2")
    assert [r.item for r in m.release()] == ["o"]
    assert m.last_key == (20, ORDER_RANK, 0, 0)


def test_an_event_at_a_partitions_watermark_waits_for_it_to_move_on() -> None:
    """Market data at the same time as an order goes first, wherever it comes from."""
    m = merge()
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.offer(M0, 0, 20, MARKET_RANK, "q0")
    m.offer(M1, 0, 5, MARKET_RANK, "q1")
    assert [r.item for r in m.release()] == ["q1"]
    m.offer(M1, 1, 20, MARKET_RANK, "q1b")
    m.offer(M0, 1, 30, MARKET_RANK, "q0b")
    m.offer(M1, 2, 31, MARKET_RANK, "q1c")
    assert [r.item for r in m.release()] == ["q0", "q1b", "o"]


def test_records_that_are_not_events_move_the_position_once_everything_before_is_released() -> None:
    m = merge()
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.passed(T0, 1)
    assert m.position(T0) == 0
    m.offer(M0, 0, 30, MARKET_RANK, "q")
    m.offer(M1, 0, 30, MARKET_RANK, "q")
    m.release()
    assert m.position(T0) == 2


def test_only_fetches_count_for_lateness_not_time_without_them() -> None:
    """A loaded worker that has not fetched for a while has not learnt that a partition stayed
    quiet: one fetch at its end, however long ago, does not make it idle."""
    m = merge()
    m.offer(M0, 0, 10, MARKET_RANK, "q")
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.at_end(M1, True, 100.0)
    m.at_end(M1, True, 100.0)
    assert m.release() == []
    m.at_end(M1, False, 100.4)
    m.at_end(M1, True, 100.5)
    assert m.release() == []


def test_a_record_offered_twice_or_out_of_sequence_is_ignored() -> None:
    m = merge()
    assert m.offer(T0, 0, 20, ORDER_RANK, "o")
    assert not m.offer(T0, 0, 20, ORDER_RANK, "o")
    assert m.held() == 1


def test_a_partition_far_ahead_is_paused_and_resumed_when_the_others_catch_up() -> None:
    m: EventTimeMerge[tuple[str, int], str] = EventTimeMerge(0.25, 100)
    m.track(M0, 0, 0)
    m.track(T0, 0, 0)
    m.offer(M0, 0, 10, MARKET_RANK, "q")
    for i in range(5):
        m.offer(T0, i, 200 + i, ORDER_RANK, f"o{i}")
    decision = m.pauses()
    assert decision.pause == {T0}
    m.offer(M0, 1, 300, MARKET_RANK, "q2")
    m.release()
    assert m.pauses().resume == {T0}


def test_a_record_arriving_after_its_partition_was_given_up_on_is_counted_late() -> None:
    m = merge()
    m.offer(M0, 0, 10, MARKET_RANK, "q")
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.offer(M0, 1, 30, MARKET_RANK, "q2")
    m.at_end(M1, True, 100.0)
    m.at_end(M1, True, 100.3)
    assert [r.item for r in m.release()] == ["q", "o"]
    assert m.late == 0
    # M1's first record, older than the order already folded: in order on M1, late overall.
    m.offer(M1, 0, 15, MARKET_RANK, "late")
    assert m.late == 1
    m.offer(M1, 1, 40, MARKET_RANK, "on time")
    assert m.late == 1


def test_a_source_watermark_lets_a_quiet_partition_stop_holding_back() -> None:
    """A producer's watermark says what the partition's next event would: nothing earlier
    follows. Without it, the order waits for M1; with it, only events before the mark go."""
    m = merge()
    m.offer(M0, 0, 10, MARKET_RANK, "q")
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.offer(M0, 1, 40, MARKET_RANK, "q2")
    assert m.release() == []
    m.advance(M1, 0, 20)
    # The order at the mark itself still waits: M1 may yet send market data of 20, which goes first.
    assert [r.item for r in m.release()] == ["q"]
    m.advance(M1, 1, 25)
    assert [r.item for r in m.release()] == ["o"]
    assert m.position(M1) == 2
    assert m.late == 0


def test_a_watermark_never_moves_a_partition_back_and_an_event_breaking_it_is_late() -> None:
    m = merge()
    m.advance(M1, 0, 50)
    m.advance(M1, 1, 30)
    m.offer(M0, 0, 40, MARKET_RANK, "q")
    m.offer(M0, 1, 60, MARKET_RANK, "q2")
    m.offer(T0, 0, 45, ORDER_RANK, "o")
    assert [r.item for r in m.release()] == ["q", "o"]
    m.offer(M1, 2, 35, MARKET_RANK, "broken promise")
    assert m.late == 1
    assert [r.item for r in m.release()] == ["broken promise"]


def test_a_watermark_behind_held_events_moves_the_position_only_when_they_go() -> None:
    m = merge()
    m.offer(T0, 0, 20, ORDER_RANK, "o")
    m.advance(T0, 1, 30)
    assert m.position(T0) == 0
    m.advance(M0, 0, 30)
    m.advance(M1, 0, 30)
    assert [r.item for r in m.release()] == ["o"]
    assert m.position(T0) == 2
    # Offered again (a redelivery): ignored.
    m.advance(T0, 1, 10)
    assert m.position(T0) == 2


def test_an_idle_partition_holds_back_events_that_arrived_after_its_latest_fetch_was_asked() -> None:
    """An answer at its end tells of the broker as of when the fetch was asked, which is no
    earlier than the answer before it: an event that arrived after that waits for the next one."""
    m = merge()
    m.offer(M0, 0, 10, MARKET_RANK, "q", arrived_s=99.0)
    for t in (100.0, 100.1, 100.3):
        m.at_end(M1, True, t)
        m.at_end(T0, True, t)
    assert [r.item for r in m.release()] == ["q"]
    m.offer(T0, 0, 20, ORDER_RANK, "o", arrived_s=100.35)
    m.offer(M0, 1, 30, MARKET_RANK, "q2", arrived_s=100.35)
    assert m.release() == []
    m.at_end(M1, True, 100.4)
    assert m.release() == []
    assert m.waiting_on() == [M1]
    m.at_end(M1, True, 100.4)
    assert m.release() == []
    m.at_end(M1, True, 100.45)
    assert [r.item for r in m.release()] == ["o"]


def test_a_record_fetched_after_an_event_that_arrived_since_goes_before_it() -> None:
    m = merge()
    for t in (100.0, 100.3):
        m.at_end(M1, True, t)
    m.offer(M0, 0, 30, MARKET_RANK, "q0", arrived_s=100.35)
    m.offer(T0, 0, 20, ORDER_RANK, "o", arrived_s=100.35)
    assert m.release() == []
    m.at_end(M1, False, 100.4)
    m.offer(M1, 0, 19, MARKET_RANK, "q1", arrived_s=100.41)
    assert [r.item for r in m.release()] == ["q1"]
    m.offer(M1, 1, 25, MARKET_RANK, "q1b", arrived_s=100.42)
    assert [r.item for r in m.release()] == ["o"]
    assert m.late == 0


def test_the_wait_for_an_idle_partitions_fresh_answer_is_bounded_by_the_allowed_lateness() -> None:
    """A reader that does not fetch the partition again must not stop the stream: past the
    allowed lateness since the event came, it goes, counted."""
    m = merge()
    for t in (100.0, 100.3):
        m.at_end(M0, True, t)
        m.at_end(M1, True, t)
    m.offer(T0, 0, 20, ORDER_RANK, "o", arrived_s=100.35)
    assert m.release(now_s=100.5) == []
    assert m.unconfirmed == 0
    assert [r.item for r in m.release(now_s=100.6)] == ["o"]
    assert m.unconfirmed == 1
