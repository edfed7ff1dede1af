"""The watchdog's verdicts from end offsets, processed offsets and an injected clock."""

from __future__ import annotations

from riskstream.agents.watchdog import StreamWatchdog


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def watchdog() -> tuple[StreamWatchdog[str], Clock]:
    clock = Clock()
    return StreamWatchdog(stall_after_s=30, exit_after_s=120, clock=clock), clock


def test_progress_or_no_lag_is_never_a_stall() -> None:
    w, clock = watchdog()
    for step in range(10):
        clock.now_s = step * 20.0
        health = w.observe({"p0": 1000 + step, "p1": 50}, {"p0": 999 + step, "p1": 49}, {})
        assert health.stalled == [] and health.exit_reason is None
    assert health.lag == {"p0": 0, "p1": 0}


def test_records_waiting_without_progress_stall_then_exit() -> None:
    w, clock = watchdog()
    assert w.observe({"p0": 100}, {"p0": 10}, {}).stalled == []
    clock.now_s = 31
    health = w.observe({"p0": 200}, {"p0": 10}, {})
    assert health.stalled == ["p0"] and health.lag == {"p0": 189} and health.exit_reason is None
    clock.now_s = 121
    assert "no progress for 121 s" in (w.observe({"p0": 300}, {"p0": 10}, {}).exit_reason or "")


def test_before_anything_is_processed_lag_counts_from_the_committed_offset() -> None:
    """After a restart nothing is processed yet: the lag is what lies past the committed offset,
    not the whole partition."""
    w, _ = watchdog()
    assert w.observe({"p0": 5000}, {}, {"p0": 4990}).lag == {"p0": 10}
    assert w.observe({"p0": 5000}, {}, {"p0": None}).lag == {"p0": 5000}


def test_a_paused_partition_is_waiting_on_purpose() -> None:
    w, clock = watchdog()
    w.observe({"p0": 100}, {"p0": 10}, {}, paused={"p0"})
    clock.now_s = 200
    assert w.observe({"p0": 100}, {"p0": 10}, {}, paused={"p0"}).exit_reason is None


def test_an_end_offset_moving_backwards_means_the_broker_lost_its_log() -> None:
    """Even across the rebalance that a broker restart brings."""
    w, _ = watchdog()
    w.observe({"p0": 5000, "p1": 10}, {"p0": 4999}, {})
    w.forget(["p0", "p1"])
    health = w.observe({"p0": 12, "p1": 10}, {"p0": 4999}, {})
    assert health.rewound == ["p0"]
    assert "broker lost its log" in (health.exit_reason or "")


def test_an_unanswering_broker_is_down_and_its_outage_is_not_a_stall() -> None:
    w, clock = watchdog()
    w.observe({"p0": 100}, {"p0": 10}, {})
    clock.now_s = 500
    down = w.observe(None, {"p0": 10}, {})
    assert not down.broker_up and down.exit_reason is None
    clock.now_s = 510
    back = w.observe({"p0": 100}, {"p0": 10}, {})
    assert back.broker_up and back.stalled == []


def test_a_fold_holding_events_and_releasing_none_is_stalled_though_its_partitions_are_paused() -> None:
    w, clock = watchdog()
    ends, processed = {"p0": 500}, {"p0": 100}
    assert w.observe(ends, processed, {}, paused={"p0"}, fold=(4000, (7, 1))).fold_stalled_s is None
    clock.now_s = 31
    health = w.observe(ends, processed, {}, paused={"p0"}, fold=(4000, (7, 1)))
    assert health.stalled == [] and health.fold_stalled_s == 31 and health.exit_reason is None
    clock.now_s = 121
    reason = w.observe(ends, processed, {}, paused={"p0"}, fold=(4000, (7, 1))).exit_reason
    assert "held 4000 events and released none for 121 s" in (reason or "")


def test_a_fold_that_releases_or_holds_nothing_is_moving() -> None:
    (releasing, clock), (idle, idle_clock) = watchdog(), watchdog()
    for step in range(8):
        clock.now_s = idle_clock.now_s = step * 20.0
        moved = releasing.observe({"p0": 500}, {"p0": 100}, {}, paused={"p0"}, fold=(4000, (step, 1)))
        empty = idle.observe({"p0": 500}, {"p0": 100}, {}, paused={"p0"}, fold=(0, (0, 1)))
        assert moved.fold_stalled_s is None and empty.fold_stalled_s is None
