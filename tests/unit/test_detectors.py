from __future__ import annotations

import dataclasses

from riskstream.core.candidates import Candidate
from riskstream.core.detectors import DetectionContext
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.core.state import AccountState, SymbolState
from riskstream.core.surveillance import surveil_account
from riskstream.records import Category, OrderEvent
from riskstream.records.codec import NS_PER_S
from tests.factories import context, fill, order


def run(
    events: list[OrderEvent], ctx: DetectionContext | None = None, state: AccountState | None = None
) -> list[Candidate]:
    return surveil_account(state or AccountState(), events, ctx or context(), 0.05).candidates


def test_fat_finger_price_far_through_the_touch() -> None:
    found = run([order("new", "o1", "buy", 100, 125.0, 0)])
    assert [c.category for c in found] == [Category.FAT_FINGER]
    assert found[0].evidence.order_ids == ("o1",)
    assert found[0].evidence.features["through_touch"] > 0.2
    assert [c.category for c in run([order("new", "o2", "sell", 100, 80.0, 0)])] == [Category.FAT_FINGER]


def test_fat_finger_ignores_price_inside_band() -> None:
    assert run([order("new", "o1", "buy", 100, 101.0, 0)]) == []


def test_a_resting_order_far_from_the_market_is_not_a_fat_finger() -> None:
    """Stink bids and offers 8-25 % away rest in the book; they cannot trade at those prices."""
    far = [order("new", "bid", "buy", 100, 75.0, 0), order("new", "offer", "sell", 100, 125.0, 1)]
    assert run(far) == []


def test_a_market_makers_quotes_at_a_wide_touch_are_not_fat_fingers() -> None:
    """A thin $4 name quoted 3.60 / 4.10 (a 13 % touch): quoting at it is not off-market."""
    thin = {"THIN": SymbolState(bid=3.60, ask=4.10, bid_size=500, ask_size=500, ts_ns=0)}
    quotes = [
        order("new", "b", "buy", 500, 3.60, 0, symbol="THIN"),
        order("new", "a", "sell", 500, 4.10, 1, symbol="THIN"),
    ]
    assert run(quotes, context(market=thin)) == []


def test_fat_finger_size_against_own_history() -> None:
    history = [order("new", f"h{i}", "buy", 100, 100.0, i) for i in range(25)]
    found = run([*history, order("new", "big", "buy", 5000, 100.0, 30)])
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.FAT_FINGER, ("big",))]
    assert found[0].evidence.features["size_multiple"] > 20


def test_an_outsized_stink_bid_far_behind_the_touch_is_not_a_fat_finger() -> None:
    """Fifty times the usual size, resting 20 % under the bid: it cannot trade now."""
    history = [order("new", f"h{i}", "buy", 100, 100.0, i) for i in range(25)]
    assert run([*history, order("new", "stink", "buy", 5000, 80.0, 30)]) == []


def test_one_extra_zero_on_the_usual_size_is_a_fat_finger() -> None:
    sizes = [80, 100, 120, 100, 90, 110, 150, 70, 100, 130]
    history = [order("new", f"h{i}", "buy", sizes[i % 10], 100.0, i) for i in range(40)]
    found = run([*history, order("new", "zero", "buy", 1000, 100.0, 50)])
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.FAT_FINGER, ("zero",))]


def filled_buys() -> list[OrderEvent]:
    """Forty buys of about 100, each filled: 4 000 long, the usual order about 100."""
    sizes = [80, 100, 120, 100, 90, 110, 150, 70, 100, 130]
    return [
        e
        for i in range(40)
        for e in (
            order("new", f"h{i}", "buy", sizes[i % 10], 100.01, i),
            fill(f"h{i}", "buy", sizes[i % 10], 100.01, i + 0.5),
        )
    ]


def test_selling_out_a_position_in_one_order_is_not_a_fat_finger() -> None:
    """Forty buys of about 100 filled (4 000 long), then one sale of 3 000: 30x the usual
    order, but it only reduces what the account holds."""
    history = filled_buys()
    assert run([*history, order("new", "out", "sell", 3000, 100.0, 50)]) == []


def test_an_extra_zero_beyond_the_position_it_reduces_is_a_fat_finger() -> None:
    """The same account selling 10 000 of its 4 000: it would be left 6 000 short."""
    history = filled_buys()
    found = run([*history, order("new", "oops", "sell", 10_000, 100.0, 50)])
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.FAT_FINGER, ("oops",))]


def test_usual_size_is_per_symbol() -> None:
    """A desk trading 2 000-lots of a $100 name and 50 000-lots of a $4 one (the same money):
    neither is an outlier, however different the share counts."""
    cheap = {
        "AAPL": SymbolState(bid=100.0, ask=100.02, bid_size=1000, ask_size=1000, ts_ns=0),
        "PENNY": SymbolState(bid=3.99, ask=4.01, bid_size=90_000, ask_size=90_000, ts_ns=0),
    }
    history = [order("new", f"a{i}", "buy", 2000, 100.0, 2 * i) for i in range(25)]
    history += [order("new", f"p{i}", "buy", 50_000, 4.0, 2 * i + 1, symbol="PENNY") for i in range(25)]
    assert run([*history, order("new", "next", "buy", 55_000, 4.0, 60, symbol="PENNY")], context(cheap)) == []
    found = run([*history, order("new", "big", "buy", 50_000, 100.0, 60)], context(cheap))
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.FAT_FINGER, ("big",))]


def _book(bid: float, ask: float, touch: float) -> SymbolState:
    """A symbol whose typical displayed size at the touch is ``touch`` (one quote's baseline)."""
    return SymbolState(
        bid=bid, ask=ask, bid_size=touch, ask_size=touch, ts_ns=0, touch_sum=touch, quotes_slow=1.0
    )


def test_a_first_order_in_a_new_symbol_is_judged_by_that_symbols_displayed_depth() -> None:
    books = {"AAPL": _book(100.0, 100.02, 1000), "MSFT": _book(400.0, 400.04, 1000)}
    history = [order("new", f"a{i}", "buy", 1000, 100.0, i) for i in range(25)]
    usual = order("new", "usual", "buy", 250, 400.0, 30, symbol="MSFT")
    assert run([*history, usual], context(books)) == []
    found = run([*history, order("new", "big", "buy", 20_000, 400.0, 30, symbol="MSFT")], context(books))
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.FAT_FINGER, ("big",))]
    assert found[0].evidence.features["touch_multiple"] == 20


def test_an_ordinary_lot_in_a_pricier_name_is_not_outsized_by_the_accounts_cheap_one() -> None:
    """An account that sent 100-share lots of a $4 name sends its first 100 shares of a $190
    one: 47x the money, an ordinary order there (the old account-wide yardstick alerted)."""
    books = {"PNYX": _book(4.09, 4.11, 2500), "KEEL": _book(190.0, 190.01, 4000)}
    history = [order("new", f"p{i}", "buy", 100, 4.10, i, symbol="PNYX") for i in range(25)]
    first = order("new", "first", "buy", 100, 190.01, 30, symbol="KEEL")
    assert run([*history, first], context(books)) == []


def test_block_from_a_desk_that_sends_blocks_is_not_a_fat_finger() -> None:
    """Small child orders with an occasional block: the next block is this desk's business."""
    history = [order("new", f"h{i}", "buy", 100, 100.0, i) for i in range(25)]
    history.insert(3, order("new", "block1", "buy", 20_000, 100.0, 3))
    assert run([*history, order("new", "block2", "buy", 25_000, 100.0, 30)]) == []


def test_a_fat_finger_does_not_become_the_accounts_usual_size_unless_it_trades() -> None:
    history = [order("new", f"h{i}", "buy", 100, 100.0, i) for i in range(25)]
    state = AccountState()
    run([*history, order("new", "big", "buy", 50_000, 100.0, 30)], state=state)
    size = state.size_in("AAPL")
    assert round(size.usual_qty, 6) == 100 and size.large_qty < 200
    run([fill("big", "buy", 50_000, 100.0, 40)], state=state)
    assert state.size_in("AAPL").large_qty == 50_000
    assert run([order("new", "block2", "buy", 60_000, 100.0, 50)], state=state) == []


def test_a_retail_accounts_own_spread_of_sizes_reaching_10x_is_not_a_fat_finger() -> None:
    """Sizes spread over a decade around a median of about 100 (log sigma about 1): an order of
    1 000 is 10x the usual and 3.3x the recent largest, yet only about two of this account's own
    size sigmas: its ordinary tail, not an extra zero."""
    spread = [30, 300, 40, 250, 50, 200, 60, 150, 35, 280]
    history = [order("new", f"h{i}", "buy", spread[i % 10], 100.0, i) for i in range(30)]
    state = AccountState()
    assert run(history, state=state) == []
    size = state.size_in("AAPL")
    assert 1000 / size.usual_qty > 8 and 1000 / size.large_qty > 3 and size.log_sigma() > 0.8
    assert run([order("new", "tail", "buy", 1000, 100.0, 40)], state=state) == []


def test_an_extra_zero_is_many_of_a_steady_accounts_own_size_sigmas() -> None:
    history = [order("new", f"h{i}", "buy", [90, 100, 110][i % 3], 100.0, i) for i in range(30)]
    found = run([*history, order("new", "zero", "buy", 1000, 100.0, 40)])
    assert [c.evidence.order_ids for c in found] == [("zero",)]
    assert found[0].evidence.features["own_size_sigmas"] > 20
    assert "sigmas of its own sizes" in found[0].evidence.summary


def test_a_stink_bid_does_not_raise_the_yardstick_an_extra_zero_is_judged_by() -> None:
    """A steady 100-lot account once rested 500 twenty percent under the bid: that size was
    never meant to trade now, so its next marketable 1 000 is still an extra zero."""
    history = [order("new", f"h{i}", "buy", 100, 100.0, i) for i in range(25)]
    history.insert(10, order("new", "stink", "buy", 500, 80.0, 10.5))
    state = AccountState()
    found = run([*history, order("new", "zero", "buy", 1000, 100.0, 40)], state=state)
    assert [c.evidence.order_ids for c in found] == [("zero",)]
    assert state.size_in("AAPL").orders_seen == 25


def test_an_extra_zero_that_traded_in_one_name_does_not_excuse_the_next_in_another() -> None:
    """An account trading 100-lots of two $100 names: its extra zero in AAPL trades (an error
    that executes is still an error); the same slip in MSFT is judged against the notionals it
    meant, not against the error's."""
    books = {"AAPL": _book(100.0, 100.02, 5000), "MSFT": _book(100.0, 100.02, 5000)}
    history = [
        e
        for i in range(25)
        for sym in ("AAPL", "MSFT")
        for e in (
            order("new", f"{sym}{i}", "buy", 100, 100.02, 2 * i, symbol=sym),
            fill(f"{sym}{i}", "buy", 100, 100.02, 2 * i + 0.5, symbol=sym),
        )
    ]
    state = AccountState()
    ctx = context(books)
    first = run([*history, order("new", "zero1", "buy", 1000, 100.02, 60)], ctx, state)
    assert [c.evidence.order_ids for c in first] == [("zero1",)]
    run([fill("zero1", "buy", 1000, 100.02, 60.5)], ctx, state)
    second = run([order("new", "zero2", "buy", 1000, 100.02, 61, symbol="MSFT")], ctx, state)
    assert [c.evidence.order_ids for c in second] == [("zero2",)]


def test_fat_finger_size_needs_history() -> None:
    assert run([order("new", "h0", "buy", 100, 100.0, 0), order("new", "big", "buy", 5000, 100.0, 1)]) == []


def spoof_sequence(levels: list[float], account: str = "ACC-1") -> list[OrderEvent]:
    events = [order("new", f"s{i}", "sell", 5000, px, i * 10, account) for i, px in enumerate(levels)]
    events += [
        order("new", "b1", "buy", 1000, 100.0, 50, account),
        fill("b1", "buy", 1000, 100.0, 400, account),
    ]
    events += [
        order("cancel", f"s{i}", "sell", 5000, px, 500 + i * 100, account) for i, px in enumerate(levels)
    ]
    return events


def test_spoofing_fires_when_last_spoof_order_is_cancelled() -> None:
    found = run(spoof_sequence([100.05, 100.05]))
    assert [c.category for c in found] == [Category.SPOOFING]
    assert set(found[0].evidence.order_ids) == {"s0", "s1", "b1"}
    assert found[0].evidence.features["cancel_to_fill_volume"] == 10.0
    assert found[0].window.end_ns == spoof_sequence([100.05, 100.05])[-1].ts_ns


def test_layering_needs_several_levels() -> None:
    found = run(spoof_sequence([100.05, 100.06, 100.07]))
    assert [c.category for c in found] == [Category.LAYERING]
    assert found[0].evidence.features["price_levels"] == 3


def test_one_large_order_pulled_after_a_fill_on_the_other_side_is_spoofing() -> None:
    found = run(spoof_sequence([100.05]))
    assert [c.category for c in found] == [Category.SPOOFING]
    assert set(found[0].evidence.order_ids) == {"s0", "b1"}


def test_a_spoof_order_the_market_took_a_sliver_of_is_still_spoofing() -> None:
    events = spoof_sequence([100.05])
    events.insert(3, fill("s0", "sell", 300, 100.05, 450))
    assert [c.category for c in run(events)] == [Category.SPOOFING]


def test_a_spoof_order_mostly_filled_is_not_spoofing() -> None:
    events = spoof_sequence([100.05])
    events.insert(3, fill("s0", "sell", 2000, 100.05, 450))
    assert run(events) == []


def _layers(sides: tuple[str, ...]) -> list[OrderEvent]:
    """Five levels of 600 (0.6 of a 1 000 touch, 3 000 together) on each of ``sides``, a buy
    fill of 200, then every level withdrawn."""
    events: list[OrderEvent] = []
    for side in sides:
        sign = 1 if side == "sell" else -1
        events += [
            order("new", f"{side}{k}", side, 600, round(100.02 + sign * (0.03 + 0.01 * k), 2), k)
            for k in range(5)
        ]
    events += [order("new", "b1", "buy", 200, 100.02, 100), fill("b1", "buy", 200, 100.02, 300)]
    for side in sides:
        sign = 1 if side == "sell" else -1
        events += [
            order("cancel", f"{side}{k}", side, 600, round(100.02 + sign * (0.03 + 0.01 * k), 2), 900 + k)
            for k in range(5)
        ]
    return events


def test_layers_each_under_the_touch_that_together_dominate_it_are_layering() -> None:
    """Avalon-style: no single layer is large, the stack is three touches."""
    found = run(_layers(("sell",)))
    assert [c.category for c in found] == [Category.LAYERING]
    assert found[0].evidence.features["price_levels"] == 5
    assert found[0].evidence.features["cancelled_qty"] == 3000


def test_a_market_makers_ladder_on_both_sides_is_not_layering() -> None:
    assert run(_layers(("sell", "buy"))) == []


def test_long_lived_layers_withdrawn_after_the_fill_are_layering() -> None:
    """Sarao-style: the layers rested a minute before the execution on the other side."""
    events = _layers(("sell",))
    late = [
        dataclasses.replace(e, ts_ns=e.ts_ns + 60 * NS_PER_S)
        if e.order_id.startswith("b") or e.event.value == "cancel"
        else e
        for e in events
    ]
    assert [c.category for c in run(late)] == [Category.LAYERING]


def test_market_maker_trading_both_sides_is_not_spoofing() -> None:
    events = spoof_sequence([100.05, 100.06, 100.07])
    events.insert(5, order("new", "mm", "sell", 100, 100.02, 300))
    events.insert(6, fill("mm", "sell", 100, 100.02, 350))
    assert run(events) == []


def test_small_cancels_are_not_spoofing() -> None:
    events = [order("new", f"s{i}", "sell", 200, 100.05, i) for i in range(3)]
    events += [order("new", "b1", "buy", 50, 100.0, 5), fill("b1", "buy", 50, 100.0, 10)]
    events += [order("cancel", f"s{i}", "sell", 200, 100.05, 20 + i) for i in range(3)]
    assert run(events) == []


def test_slow_cancels_are_not_spoofing() -> None:
    events = spoof_sequence([100.05, 100.05])
    late = [e for e in events if e.event.value != "cancel"]
    late += [order("cancel", f"s{i}", "sell", 5000, 100.05, 9000 + i) for i in range(2)]
    assert run(late) == []


def test_wash_trade_with_linked_account() -> None:
    limits = RiskLimits(AccountLimits(1e6, 5e7, 5e5), owner_of={"ACC-1": "F", "ACC-2": "F"})
    found = run(
        [order("new", "w1", "buy", 800, 100.0, 0), fill("w1", "buy", 800, 100.0, 5, counterparty="ACC-2")],
        context(limits=limits),
    )
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.WASH_TRADE, ("w1",))]


def test_trade_with_unlinked_counterparty_is_fine() -> None:
    assert (
        run(
            [order("new", "w1", "buy", 800, 100.0, 0), fill("w1", "buy", 800, 100.0, 5, counterparty="ACC-9")]
        )
        == []
    )


def test_wash_round_trip_same_price_same_qty() -> None:
    """The account's buy and sell meet in one match: both reports within a millisecond."""
    found = run([fill("a", "buy", 300, 100.0, 0), fill("b", "sell", 300, 100.0, 1)])
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.WASH_TRADE, ("a", "b"))]


def test_round_trip_across_the_spread_is_not_wash() -> None:
    assert run([fill("a", "buy", 300, 100.0, 0), fill("b", "sell", 300, 100.01, 1)]) == []


def test_a_scratch_trade_tens_of_milliseconds_later_is_not_wash() -> None:
    """An HFT buys 300 and sells them 60 ms later at the same price: two executions against
    two other parties, each a change of ownership; not one match with itself."""
    entered = [order("new", "a", "buy", 300, 100.0, 0), order("new", "b", "sell", 300, 100.0, 2)]
    assert run([*entered, fill("a", "buy", 300, 100.0, 3), fill("b", "sell", 300, 100.0, 63)]) == []


def test_position_limit_alerts_once_per_breach() -> None:
    limits = RiskLimits(AccountLimits(1000, 5e7, 5e5))
    events = [fill(f"f{i}", "buy", 600, 100.0, i * 10) for i in range(4)]
    found = run(events, context(limits=limits))
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.LIMIT_BREACH, ("f1",))]
    assert found[0].evidence.features["position"] == 1200


def test_position_limit_realerts_after_coming_back_inside() -> None:
    limits = RiskLimits(AccountLimits(1000, 5e7, 5e5))
    events = [
        fill("f1", "buy", 1200, 100.0, 0),
        fill("f2", "sell", 500, 100.1, 10),
        fill("f3", "buy", 500, 100.2, 20),
    ]
    found = run(events, context(limits=limits))
    assert [c.evidence.order_ids for c in found] == [("f1",), ("f3",)]


def test_gross_notional_marks_to_market_mid() -> None:
    limits = RiskLimits(AccountLimits(1e6, 50_000, 5e5))
    found = run([fill("f1", "buy", 600, 90.0, 0)], context(limits=limits))
    assert [c.discriminator for c in found] == ["gross_notional"]
    assert found[0].evidence.features["gross_notional"] == round(600 * 100.01, 2)


def test_order_size_limit() -> None:
    limits = RiskLimits(AccountLimits(1e6, 5e7, 1000))
    found = run([order("new", "o1", "buy", 5000, 100.0, 0)], context(limits=limits))
    assert [c.discriminator for c in found] == ["order_qty:new"]


def test_order_size_limit_applies_to_a_replace_that_grows_the_order() -> None:
    limits = RiskLimits(AccountLimits(1e6, 5e7, 1000))
    found = run(
        [order("new", "o1", "buy", 500, 100.0, 0), order("replace", "o1", "buy", 5000, 100.0, 5)],
        context(limits=limits),
    )
    assert [(c.discriminator, c.evidence.order_ids) for c in found] == [("order_qty:replace", ("o1",))]


def test_alert_id_is_deterministic_and_evidence_specific() -> None:
    a = run(spoof_sequence([100.05, 100.05]))[0]
    b = run(spoof_sequence([100.05, 100.05]))[0]
    c = run(spoof_sequence([100.05, 100.05], account="ACC-2"))[0]
    assert a.alert_id == b.alert_id
    assert a.alert_id != c.alert_id


def test_a_desks_block_in_a_name_it_traded_in_child_orders_is_not_a_fat_finger() -> None:
    """Blocks of $2M traded in MSFT; in AAPL so far only 300-share child orders. A $1.5M block
    in AAPL is 50x its AAPL habit but within what the desk trades: not a fat finger. A block
    beyond anything it has traded is."""
    market = {
        "AAPL": SymbolState(bid=100.0, ask=100.02, bid_size=1000, ask_size=1000, ts_ns=0),
        "MSFT": SymbolState(bid=400.0, ask=400.04, bid_size=1000, ask_size=1000, ts_ns=0),
    }
    ctx = context(market)
    blocks = [
        order("new", "m1", "buy", 5000, 400.0, 0, symbol="MSFT"),
        fill("m1", "buy", 5000, 400.0, 1, symbol="MSFT"),
    ]
    children = [order("new", f"c{i}", "buy", 300, 100.0, 10 + i) for i in range(25)]
    state = AccountState()
    assert run([*blocks, *children], ctx, state) == []
    assert run([order("new", "blk", "buy", 15_000, 100.0, 100)], ctx, state) == []
    found = run([order("new", "huge", "buy", 60_000, 100.0, 200)], ctx, state)
    assert [(c.category, c.evidence.order_ids) for c in found] == [(Category.FAT_FINGER, ("huge",))]
    assert found[0].evidence.features["notional_over_largest"] == 3.0
