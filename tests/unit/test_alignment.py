"""Event-time alignment across input partitions, with an injected wall clock."""

from __future__ import annotations

from riskstream.core.alignment import Decision, EventTimeAligner

S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def aligner(clock: Clock) -> EventTimeAligner[str]:
    return EventTimeAligner(max_skew_ns=S // 2, idle_after_s=0.5, clock=clock)


def test_backlog_holds_the_partitions_that_run_ahead_until_the_others_catch_up() -> None:
    clock = Clock()
    a = aligner(clock)
    a.observe({"trades-0": 60 * S, "market-0": 2 * S, "market-1": 3 * S})
    assert a.release_limit_ns() == 2 * S
    assert a.decide() == Decision(frozenset({"trades-0", "market-1"}), frozenset())
    clock.now_s += 0.1
    a.observe({"market-0": 59 * S})
    assert a.release_limit_ns() == 3 * S
    assert a.decide() == Decision(frozenset({"market-0"}), frozenset({"market-1"}))
    clock.now_s += 0.1
    a.observe({"market-1": 59 * S + S // 5})
    assert a.release_limit_ns() == 59 * S
    assert a.decide() == Decision(frozenset(), frozenset({"market-0"}))
    clock.now_s += 0.1
    a.observe({"market-0": 60 * S, "market-1": 60 * S})
    assert a.decide() == Decision(frozenset(), frozenset({"trades-0"}))
    assert a.paused == set()


def test_a_partition_that_has_gone_silent_is_not_waited_for() -> None:
    clock = Clock()
    a = aligner(clock)
    a.observe({"trades-0": 60 * S, "market-0": 2 * S})
    assert a.decide().pause == {"trades-0"}
    clock.now_s += 0.6
    assert a.release_limit_ns() == 60 * S
    clock.now_s += 0.6
    assert a.decide().resume == {"trades-0"}
    assert a.release_limit_ns() == 60 * S


def test_live_traffic_with_a_quiet_partition_is_never_held() -> None:
    """Event time follows the wall clock; one partition speaks every 2 s, the other every 10 ms."""
    clock = Clock()
    a = aligner(clock)
    for step in range(1000):
        clock.now_s = step * 0.01
        now_ns = int(clock.now_s * S)
        progress = {"market-0": now_ns}
        if step % 200 == 0:
            progress["trades-0"] = now_ns
        a.observe(progress)
        decision = a.decide()
        assert not decision.pause, f"held at {clock.now_s:.2f} s"
        limit = a.release_limit_ns()
        assert limit is not None
        assert now_ns - limit <= S // 2, "a live event waited on the quiet partition too long"


def test_forget_drops_progress_and_holds_of_partitions_gone() -> None:
    clock = Clock()
    a = aligner(clock)
    a.observe({"trades-0": 60 * S, "market-0": 2 * S})
    a.decide()
    a.forget(["trades-0"])
    assert a.paused == set()
    assert set(a.progress_ns) == {"market-0"}
