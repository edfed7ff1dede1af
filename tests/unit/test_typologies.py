"""The typologies added to the first four, each on hand-built sequences of orders and market data,
each with an honest look-alike that must not alert."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime

from riskstream.core.calendar import SessionCalendar
from riskstream.core.detectors.aggression import MAX_AGGRESSIVE_ORDERS, track_aggression
from riskstream.core.fold import EventTimeDetector
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.core.state import AccountState, RampEpisode, SymbolState
from riskstream.records import Category, OrderEvent, Print, Quote
from riskstream.records.market_data import MarketEvent
from tests.factories import T0, context, fill, order, quote, replay, trade_print

Events = list[OrderEvent | MarketEvent]
CLOSE_NY = SessionCalendar.parse("16:00", "America/New_York")


def calm(
    seconds: float,
    start_ms: float = 0,
    mid: float = 100.0,
    step_ms: float = 100,
    seed: int = 1,
    symbol: str = "AAPL",
) -> Events:
    """A quiet one-tick-spread market: the mid flickers a tick around ``mid``, prints of 100 now
    and then."""
    rng = random.Random(seed)
    out: Events = []
    t = start_ms
    while t < start_ms + seconds * 1000:
        now = round(mid + rng.choice((-0.01, 0.0, 0.01)), 2)
        out.append(quote(t, round(now - 0.005, 3), round(now + 0.005, 3), symbol=symbol))
        if rng.random() < 0.3:
            out.append(trade_print(t, now, 100, symbol=symbol))
        t += step_ms
    return out


def categories(found: list) -> list[Category]:  # type: ignore[type-arg]
    return [c.category for c in found]


# -- momentum ignition -------------------------------------------------------------------------
def ignition(reversal_ms: float = 2000, move: float = 0.10) -> Events:
    base = calm(60)
    t = 60_000
    burst: Events = [order("new", f"b{i}", "buy", 800, 100.2, t + i * 300) for i in range(3)]
    burst += [fill(f"b{i}", "buy", 800, 100.0 + 0.01 * i, t + i * 300 + 1) for i in range(3)]
    burst.sort(key=lambda e: e.ts_ns)
    after = [quote(t + 700, 100.0 + move, 100.01 + move)]
    reversal: Events = [
        order("new", "s1", "sell", 2400, 100.0 + move, t + 700 + reversal_ms),
        fill("s1", "sell", 2400, 100.0 + move, t + 701 + reversal_ms),
    ]
    return base + burst + after + reversal


def test_momentum_ignition_fires_on_the_reversing_fill() -> None:
    found = [c for c in replay(ignition(), context(market={})) if c.category is Category.MOMENTUM_IGNITION]
    assert len(found) == 1
    assert found[0].evidence.order_ids == ("b0", "b1", "b2", "s1")
    assert found[0].evidence.features["move_spreads"] >= 3
    assert found[0].window.end_ns == T0 + (60_000 + 2701) * 1_000_000


def test_ignition_against_an_empty_displayed_touch_alerts_with_finite_evidence() -> None:
    """Quotes with no displayed size: any burst takes out the touch, and the evidence (which the
    alert must carry as JSON) holds the touch size, not an infinite multiple of it."""
    empty = [
        dataclasses.replace(e, bid_size=0.0, ask_size=0.0) if isinstance(e, Quote) else e for e in ignition()
    ]
    found = [c for c in replay(empty, context(market={})) if c.category is Category.MOMENTUM_IGNITION]
    assert len(found) == 1
    features = found[0].evidence.features
    assert "touch_multiple" not in features and features["touch_qty"] == 0.0
    assert "an empty touch" in found[0].evidence.summary
    json.dumps(features, allow_nan=False)


def test_momentum_trader_who_holds_is_not_ignition() -> None:
    events = [e for e in ignition() if not (isinstance(e, OrderEvent) and e.order_id == "s1")]
    assert Category.MOMENTUM_IGNITION not in categories(replay(events, context(market={})))


def test_reversal_long_after_the_burst_or_without_a_move_is_not_ignition() -> None:
    assert Category.MOMENTUM_IGNITION not in categories(
        replay(ignition(reversal_ms=15_000), context(market={}))
    )
    assert Category.MOMENTUM_IGNITION not in categories(replay(ignition(move=0.01), context(market={})))


def ignition_in(spread: float, flicker: float, move: float) -> Events:
    """The burst and reversal of :func:`ignition` on a name of the given quoted spread whose mid
    flickers by ``flicker`` around 100 (its noise), the mid exactly 100 when the burst starts."""
    rng = random.Random(3)
    events: Events = []
    for k in range(600):
        mid = 100.0 + rng.choice((-flicker, 0.0, flicker))
        events.append(quote(k * 100, round(mid - spread / 2, 4), round(mid + spread / 2, 4)))
    t = 60_000
    events.append(quote(t - 1, 100.0 - spread / 2, 100.0 + spread / 2))
    events += [order("new", f"b{i}", "buy", 800, 100.0 + 2 * spread, t + i * 300) for i in range(3)]
    events += [fill(f"b{i}", "buy", 800, 100.0 + spread / 2, t + i * 300 + 1) for i in range(3)]
    events.sort(key=lambda e: e.ts_ns)
    events.append(quote(t + 700, 100.0 + move - spread / 2, 100.0 + move + spread / 2))
    events += [
        order("new", "s1", "sell", 2400, 100.0 + move - spread / 2, t + 2700),
        fill("s1", "sell", 2400, 100.0 + move - spread / 2, t + 2701),
    ]
    return events


def ignites(events: Events) -> bool:
    return Category.MOMENTUM_IGNITION in categories(replay(events, context(market={})))


def test_ignition_on_a_noisy_one_tick_name_is_judged_in_spreads() -> None:
    """Ten spreads on a one-cent name whose mid jumps 5 cents at a time: under two of its
    sigmas, but a push no spread-paying reversal could get from noise."""
    assert ignites(ignition_in(spread=0.01, flicker=0.05, move=0.10))


def test_ignition_on_a_wide_spread_name_is_judged_in_sigmas() -> None:
    """Two 30-cent spreads on a calm name: under three spreads, many sigmas."""
    assert ignites(ignition_in(spread=0.30, flicker=0.01, move=0.60))


def test_a_burst_and_reversal_inside_one_spread_is_not_ignition() -> None:
    """Half a 30-cent spread: many sigmas of a calm name, but the reversal does not even earn
    back the spread (an HFT's scalp, not a move it started)."""
    assert not ignites(ignition_in(spread=0.30, flicker=0.01, move=0.15))


def test_ignition_burst_is_one_symbol_and_side_whatever_else_the_account_does() -> None:
    """Aggressive orders in another symbol and on the other side, interleaved with the burst and
    one burst order arriving late (within grace), change neither the burst nor its evidence."""
    events = ignition()
    other = [*calm(60, mid=50.0, symbol="MSFT"), quote(60_000, 49.995, 50.005, symbol="MSFT")]
    noise: Events = []
    for i in range(6):
        t = 60_000 + i * 100 + 50
        noise.append(order("new", f"m{i}", "buy", 500, 50.5, t, symbol="MSFT"))
        noise.append(order("new", f"x{i}", "sell", 10, 99.0, t + 1))
    late_burst = [
        e for e in events if isinstance(e, OrderEvent) and e.order_id == "b1" and e.event.value == "new"
    ]
    rest = [e for e in events if e not in late_burst]
    ordered = sorted(rest + other + noise, key=lambda e: e.ts_ns)
    at = next(i for i, e in enumerate(ordered) if isinstance(e, OrderEvent) and e.order_id == "b2")
    ordered[at + 1 : at + 1] = late_burst
    found = [c for c in replay(ordered, context(market={})) if c.category is Category.MOMENTUM_IGNITION]
    assert [c.evidence.order_ids for c in found] == [("b0", "b1", "b2", "s1")]


def test_aggressive_orders_round_trip_and_load_from_the_single_list_of_older_checkpoints() -> None:
    detector = EventTimeDetector(context(market={}), 0.1)
    for e in ignition()[:-1]:
        detector.feed(e)
    state = detector.accounts["ACC-1"]
    assert set(state.aggressive) == {"AAPL|buy", "AAPL|sell"}
    again = AccountState.from_json(json.loads(json.dumps(state.to_json())))
    assert again.aggressive == state.aggressive
    legacy = state.to_json()
    by_side = legacy["momentum"]["aggressive"]
    legacy["momentum"]["aggressive"] = [row for rows in reversed(by_side.values()) for row in reversed(rows)]
    assert AccountState.from_json(legacy).aggressive == state.aggressive


def test_aggressive_record_is_bounded_per_account_oldest_first() -> None:
    market = {sym: SymbolState(bid=99.99, ask=100.01, bid_size=100, ask_size=100) for sym in ("AAPL", "MSFT")}
    ctx = context(market=market)
    state = AccountState()
    n = MAX_AGGRESSIVE_ORDERS + 10
    for i in range(n):
        symbol, side = ("AAPL", "buy") if i % 2 else ("MSFT", "sell")
        track_aggression(order("new", f"o{i}", side, 10, None, i, symbol=symbol), state, ctx)
    kept = sorted((o for record in state.aggressive.values() for o in record), key=lambda o: o.ts_ns)
    assert len(kept) == MAX_AGGRESSIVE_ORDERS
    assert kept[0].order_id == "o10"
    assert set(state.aggressive) == {"AAPL|buy", "MSFT|sell"}


# -- ramping ---------------------------------------------------------------------------------------
def ramp(market_print: float) -> Events:
    events = calm(120)
    t = 120_000
    for i in range(10):
        px = round(100.0 + 0.05 * i, 2)
        events += [
            quote(t + i * 5000, px - 0.005, px + 0.005),
            trade_print(t + i * 5000, px, market_print),
            order("new", f"r{i}", "buy", 1000, px + 0.01, t + i * 5000 + 1),
            fill(f"r{i}", "buy", 1000, px, t + i * 5000 + 2),
            trade_print(t + i * 5000 + 2, px, 1000),
        ]
    t += 55_000
    events.append(quote(t, 100.595, 100.605))
    events += [order("new", "dump", "sell", 8000, 100.5, t + 10), fill("dump", "sell", 8000, 100.6, t + 20)]
    return events


def test_ramping_fires_when_the_position_is_sold_into_the_move() -> None:
    found = [c for c in replay(ramp(market_print=1000), context(market={})) if c.category is Category.RAMPING]
    assert len(found) == 1
    ids = found[0].evidence.order_ids
    assert ids[:10] == tuple(f"r{i}" for i in range(10)) and ids[-1] == "dump"
    assert found[0].evidence.features["participation"] >= 0.15
    assert found[0].evidence.features["move_sigmas"] >= 3


def test_small_share_of_volume_is_not_ramping() -> None:
    """An accumulator at a few percent of volume whose stock rises is lucky, not a ramper."""
    assert Category.RAMPING not in categories(replay(ramp(market_print=50_000), context(market={})))


def test_off_book_blocks_do_not_dilute_a_ramps_share_of_the_lit_tape() -> None:
    """Blocks negotiated off book moved no price on the lit book; the ramper's share is of the
    lit tape it traded against."""
    events = ramp(market_print=1000)
    t_build = 120_000 + 20_000
    events.append(Print("AAPL", "XOFF", T0 + t_build * 1_000_000, 100.2, 60_000))
    events.sort(key=lambda e: e.ts_ns)
    found = [c for c in replay(events, context(market={})) if c.category is Category.RAMPING]
    assert len(found) == 1
    assert found[0].evidence.features["participation"] >= 0.4


def build_and_dump(
    t: float,
    start_px: float,
    tag: str,
    dump_qty: float,
    buys: int = 10,
    step: float = 0.05,
    every_ms: float = 5000,
) -> Events:
    """``buys`` buys of 1 000 as half the lit tape, ``every_ms`` apart, the price up ``step``
    each, then one sale."""
    events: Events = []
    for i in range(buys):
        px = round(start_px + step * i, 3)
        events += [
            quote(t + i * every_ms, px - 0.005, px + 0.005),
            trade_print(t + i * every_ms, px, 1000),
            order("new", f"{tag}{i}", "buy", 1000, px + 0.01, t + i * every_ms + 1),
            fill(f"{tag}{i}", "buy", 1000, px, t + i * every_ms + 2),
            trade_print(t + i * every_ms + 2, px, 1000),
        ]
    top = round(start_px + step * (buys - 0.1), 3)
    t += (buys - 1) * every_ms + 10_000
    events.append(quote(t, top - 0.005, top + 0.005))
    events += [
        order("new", f"{tag}-dump", "sell", dump_qty, top - 0.1, t + 10),
        fill(f"{tag}-dump", "sell", dump_qty, top, t + 20),
    ]
    return events


def test_a_second_ramp_on_top_of_what_the_first_left_is_judged_on_its_own_build() -> None:
    """The first ramp leaves 4 000 of 10 000; selling part of that builds nothing, and the
    second ramp, minutes later on top of the rest, is its own episode: two alerts."""
    events = calm(120) + build_and_dump(120_000, 100.0, "a", 6000)
    t = 200_000
    events += [quote(t, 100.495, 100.505)]
    for i in range(2):
        events += [
            order("new", f"out{i}", "sell", 1000, 100.4, t + 10_000 * i + 1),
            fill(f"out{i}", "sell", 1000, 100.5, t + 10_000 * i + 2),
        ]
    events += calm(180, start_ms=230_000, mid=100.5)
    events += build_and_dump(420_000, 100.5, "b", 8000)
    found = [c for c in replay(events, context(market={})) if c.category is Category.RAMPING]
    assert [c.evidence.order_ids[-1] for c in found] == ["a-dump", "b-dump"]
    second = found[1].evidence
    assert second.order_ids[0] == "b0"
    assert second.features["duration_s"] < 120


def test_a_ramp_that_lifts_a_name_beyond_its_noise_but_under_a_few_sigmas_is_ramping() -> None:
    """Twelve buys as half the tape lift a one-tick name 12 cents in a minute: 12 spreads, about
    one and a half of its sigmas over that minute. SEC pump-and-dump cases include pushes this
    small; the campaign and the sale back into the move carry the case."""
    events = calm(120) + build_and_dump(120_000, 100.0, "r", 10_000, buys=12, step=0.01)
    found = [c for c in replay(events, context(market={})) if c.category is Category.RAMPING]
    assert len(found) == 1
    features = found[0].evidence.features
    assert 1.0 <= features["move_sigmas"] < 3.5 and features["build_fills"] == 12
    assert "in 12 fills" in found[0].evidence.summary


def test_a_handful_of_lots_as_a_large_share_of_a_thin_tape_is_not_ramping() -> None:
    """A hedger's five buys, each half of a thin tape, then a sale while the price happened to
    run 25 cents: a large share and a large move, but not a campaign."""
    events = calm(120) + build_and_dump(120_000, 100.0, "h", 4000, buys=5, step=0.05, every_ms=10_000)
    assert Category.RAMPING not in categories(replay(events, context(market={})))
    more = calm(120) + build_and_dump(120_000, 100.0, "h", 4000, buys=5, step=0.05, every_ms=10_000)
    assert Category.RAMPING in categories(replay(more, context(market={}, ramp_min_build_fills=5)))


# -- marking the close -----------------------------------------------------------------------------
CLOSE_MS = (int(datetime(2025, 11, 25, 21, 0, tzinfo=UTC).timestamp() * 1e9) - T0) // 1_000_000


def closing(aggressive: bool) -> Events:
    start = CLOSE_MS - 400_000
    events = calm(200, start_ms=start)
    t = CLOSE_MS - 120_000
    for i in range(4):
        px = round(100.0 + 0.2 * i, 2)
        limit = px + 0.05 if aggressive else px - 0.005
        events += [
            quote(t + i * 10_000, px - 0.005, px + 0.005),
            order("new", f"c{i}", "buy", 3000, limit, t + i * 10_000 + 1),
            fill(f"c{i}", "buy", 3000, px, t + i * 10_000 + 2),
            trade_print(t + i * 10_000 + 2, px, 3000),
        ]
    events.append(quote(t + 40_000, 100.795, 100.805))
    events.append(order("new", "c4", "buy", 1500, 100.9, t + 40_001))
    return events


def test_marking_the_close_fires_once_per_close() -> None:
    found = [c for c in replay(closing(True), context(market={})) if c.category is Category.MARKING_THE_CLOSE]
    assert len(found) == 1
    assert set(found[0].evidence.order_ids) >= {"c0", "c1", "c2"}
    assert 0 < found[0].evidence.features["seconds_to_close"] <= 300


def test_passive_orders_at_the_close_are_not_marking() -> None:
    assert Category.MARKING_THE_CLOSE not in categories(replay(closing(False), context(market={})))


def test_aggressive_orders_long_before_the_close_are_not_marking() -> None:
    shift = 3_600 * 10**9
    moved = [dataclasses.replace(e, ts_ns=e.ts_ns - shift) for e in closing(True)]
    assert Category.MARKING_THE_CLOSE not in categories(replay(moved, context(market={})))


def test_a_push_minutes_before_the_close_is_not_marking_the_close() -> None:
    """The same aggressive buying, 290 to 250 s before the close: inside the watched window but
    not where the close is marked; the market has minutes to undo it."""
    shift = 170 * 10**9
    moved = [dataclasses.replace(e, ts_ns=e.ts_ns - shift) for e in closing(True)]
    assert Category.MARKING_THE_CLOSE not in categories(replay(moved, context(market={})))
    assert Category.MARKING_THE_CLOSE in categories(replay(closing(True), context(market={})))


def test_a_dealer_trading_both_ways_into_the_close_is_not_marking() -> None:
    """The same aggressive buys, each a second after an aggressive sale of almost as much: a
    large gross share of the closing volume and a rising price, but little net pressure."""
    t = CLOSE_MS - 120_000
    both = closing(True)
    for i in range(5):
        px = round(100.0 + 0.2 * max(i - 1, 0), 2)
        at = t + i * 10_000 - 1000
        both += [
            order("new", f"s{i}", "sell", 2800, px - 0.05, at),
            fill(f"s{i}", "sell", 2800, px - 0.005, at + 1),
            trade_print(at + 1, px - 0.005, 2800),
        ]
    both.sort(key=lambda e: e.ts_ns)
    assert Category.MARKING_THE_CLOSE not in categories(replay(both, context(market={})))
    gross = context(market={}, close_min_participation=0.01)
    assert Category.MARKING_THE_CLOSE in categories(replay(both, gross))


def test_session_calendar_gives_the_first_close_whatever_was_asked_before() -> None:
    """A question about the evening must not make the afternoon's close look like tomorrow's."""
    cal = SessionCalendar.parse("16:00", "America/New_York")
    close = SessionCalendar.parse("16:00", "America/New_York").next_close_ns(T0)
    assert cal.next_close_ns(close + 3_600 * 10**9) > close
    assert cal.next_close_ns(close - 60 * 10**9) == close
    assert cal.next_close_ns(close) == close


def test_session_calendar_handles_dst_and_weekends() -> None:
    cal = SessionCalendar.parse("16:00", "America/New_York")
    summer = int(datetime(2026, 7, 1, 12, tzinfo=UTC).timestamp() * 1e9)
    assert cal.next_close_ns(summer) == int(datetime(2026, 7, 1, 20, tzinfo=UTC).timestamp() * 1e9)
    friday_late = int(datetime(2026, 11, 27, 22, tzinfo=UTC).timestamp() * 1e9)
    assert cal.next_close_ns(friday_late) == int(datetime(2026, 11, 30, 21, tzinfo=UTC).timestamp() * 1e9)


# -- quote stuffing --------------------------------------------------------------------------------
def stuffing(pairs: int, span_ms: float) -> Events:
    events = calm(60, step_ms=100)
    t = 60_000
    gap = span_ms / pairs
    for i in range(pairs):
        events += [
            order("new", f"q{i}", "sell", 100, 100.5, t + i * gap),
            order("cancel", f"q{i}", "sell", 100, 100.5, t + i * gap + gap / 2),
        ]
    return events


def test_quote_stuffing_fires_once_per_burst() -> None:
    found = [
        c for c in replay(stuffing(100, 800), context(market={})) if c.category is Category.QUOTE_STUFFING
    ]
    assert len(found) == 1
    assert found[0].evidence.features["rate_multiple"] >= 4
    assert found[0].evidence.features["order_to_trade"] >= 20


def test_market_maker_pace_is_not_stuffing() -> None:
    """20 messages a second against a market quoting 10 a second: busy, not stuffing."""
    assert Category.QUOTE_STUFFING not in categories(replay(stuffing(100, 10_000), context(market={})))


def test_a_market_maker_re_quoting_faster_in_a_volatile_minute_is_not_stuffing() -> None:
    """A maker at 20 messages a second for a minute, then 60 a second for two seconds: six
    times the market's quote rate, but three times its own pace."""
    events = calm(64, step_ms=100)
    t = 0.0
    k = 0
    while t < 64_000:
        gap = 100 if t < 62_000 else 100 / 3
        events += [
            order("new", f"m{k}", "sell", 100, 100.5, t),
            order("cancel", f"m{k}", "sell", 100, 100.5, t + gap / 2),
        ]
        t += gap
        k += 1
    events.sort(key=lambda e: e.ts_ns)
    found = [c for c in replay(events, context(market={})) if c.category is Category.QUOTE_STUFFING]
    assert found == []


def test_a_burst_from_a_maker_far_beyond_its_own_pace_is_stuffing() -> None:
    """The same maker, then 400 messages in half a second, many times its own pace."""
    events = calm(64, step_ms=100)
    for k in range(600):
        t = k * 100
        events += [
            order("new", f"m{k}", "sell", 100, 100.5, t),
            order("cancel", f"m{k}", "sell", 100, 100.5, t + 50),
        ]
    for k in range(200):
        at = 62_000 + k * 2.5
        events += [
            order("new", f"x{k}", "sell", 100, 100.6, at),
            order("cancel", f"x{k}", "sell", 100, 100.6, at + 1),
        ]
    events.sort(key=lambda e: e.ts_ns)
    found = [c for c in replay(events, context(market={})) if c.category is Category.QUOTE_STUFFING]
    assert len(found) == 1
    assert found[0].evidence.features["own_rate_multiple"] >= 5


# -- loss limit, marked to market ------------------------------------------------------------------
def test_loss_limit_breach_from_a_market_move_alone() -> None:
    limits = RiskLimits(AccountLimits(1e6, 5e7, 5e5, max_loss=5_000))
    events: Events = [
        quote(0, 99.995, 100.005),
        order("new", "o1", "buy", 1000, 100.0, 1),
        fill("o1", "buy", 1000, 100.0, 2),
    ]
    events += [quote(1000 + i, 100.0 - i, 100.01 - i) for i in range(1, 10)]
    accounts: dict[str, AccountState] = {}
    found = [
        c
        for c in replay(events, context(market={}, limits=limits), accounts)
        if c.category is Category.LIMIT_BREACH
    ]
    assert len(found) == 1, found
    assert found[0].entity.account == "ACC-1"
    assert found[0].evidence.features["unrealized_pnl"] < -5_000
    assert found[0].window.end_ns == T0 + 1006 * 1_000_000


def test_realised_loss_is_booked_at_average_cost() -> None:
    state = AccountState()
    replay(
        [
            order("new", "a", "buy", 100, 10.0, 0),
            fill("a", "buy", 100, 10.0, 1),
            fill("a", "buy", 100, 12.0, 2),
            fill("a", "sell", 150, 9.0, 3),
        ],
        context(market={}),
        {"ACC-1": state},
    )
    assert state.avg_cost["AAPL"] == 11.0
    assert state.realized_pnl == -300.0
    assert state.positions == {"AAPL": 50.0}
    again = AccountState.from_json(state.to_json())
    assert (again.avg_cost, again.realized_pnl) == (state.avg_cost, state.realized_pnl)


# -- market-wide shocks ----------------------------------------------------------------------------
def shocks(found: list) -> list:  # type: ignore[type-arg]
    return [c for c in found if c.category is Category.MARKET_SHOCK]


def test_calm_market_raises_no_shock() -> None:
    assert shocks(replay(calm(600), context(market={}))) == []


def test_price_gap_is_one_shock_alert() -> None:
    events = [*calm(120), quote(120050, 101.495, 101.505), *calm(30, start_ms=120100, mid=101.5)]
    found = shocks(replay(events, context(market={})))
    assert len(found) == 1
    assert found[0].entity.account is None and found[0].entity.symbol == "AAPL"
    assert found[0].evidence.features["gap_sigmas"] >= 8
    assert found[0].window.end_ns == T0 + 120_050 * 1_000_000


def test_spread_blowout_and_volume_spike_are_shocks() -> None:
    wide = calm(120) + [quote(120_050 + i * 100, 99.9, 100.1) for i in range(5)]
    assert shocks(replay(wide, context(market={})))[0].evidence.features["spread_multiple"] >= 5
    spike = calm(120) + [trade_print(120_050 + i * 100, 100.0, 5000) for i in range(10)]
    assert shocks(replay(spike, context(market={})))[0].evidence.features["volume_multiple"] >= 6


def test_off_book_blocks_and_the_closing_cross_are_not_volume_shocks() -> None:
    close_ms = (CLOSE_NY.next_close_ns(T0) - T0) / 1e6
    before = calm(150, start_ms=close_ms - 150_000)
    blocks = [
        dataclasses.replace(trade_print(close_ms - 20_000 + i * 100, 100.0, 5000), venue="XOFF")
        for i in range(10)
    ]
    cross = [trade_print(close_ms, 100.0, 50_000), trade_print(close_ms + 2_000, 100.0, 40_000)]
    events = sorted([*before, *blocks, *cross], key=lambda e: e.ts_ns)
    assert shocks(replay(events, context(market={}))) == []
    lit = [trade_print(close_ms - 20_000 + i * 100, 100.0, 5000) for i in range(10)]
    spiked = sorted([*before, *lit], key=lambda e: e.ts_ns)
    assert shocks(replay(spiked, context(market={})))[0].evidence.features["volume_multiple"] >= 6


def test_flicker_inside_a_wide_spread_is_not_a_gap_and_a_jump_of_several_spreads_is() -> None:
    """A $4 name quoted five ticks wide whose mid flickers a tick: noise; a 9 % jump: a gap."""
    rng = random.Random(3)
    thin: Events = []
    for i in range(1500):
        mid = 4.10 + rng.choice((-0.005, 0.0, 0.005))
        thin.append(quote(i * 100, round(mid - 0.025, 3), round(mid + 0.025, 3), symbol="PNYX"))
    assert shocks(replay(thin, context(market={}))) == []
    jumped = [*thin, *(quote(150_000 + i * 100, 4.45, 4.50, symbol="PNYX") for i in range(30))]
    found = shocks(replay(jumped, context(market={})))
    assert len(found) == 1 and found[0].evidence.features["gap_sigmas"] >= 15


def test_no_shock_before_the_baseline_has_warmed_up() -> None:
    events = [*calm(20), quote(20050, 101.495, 101.505)]
    assert shocks(replay(events, context(market={}))) == []


def test_symbol_state_round_trips_its_features() -> None:
    market: dict[str, SymbolState] = {}
    replay(calm(30), context(market=market))
    state = market["AAPL"]
    assert SymbolState.from_json(state.to_json()) == state
    assert state.quote_rate() > 5 and state.variance_rate() > 0


def test_a_quote_re_marks_only_holders_it_could_push_past_their_loss_limit() -> None:
    limits = RiskLimits(AccountLimits(1e6, 5e7, 5e5, max_loss=10_000))
    ctx = context(market={}, limits=limits)
    accounts: dict[str, AccountState] = {}
    events: Events = [quote(0, 99.995, 100.005)]
    for i, qty in enumerate((100, 1000)):
        events += [
            order("new", f"o{i}", "buy", qty, 100.0, 1, f"A{i}"),
            fill(f"o{i}", "buy", qty, 100.0, 2, f"A{i}"),
        ]
    detector = EventTimeDetector(ctx, 0.05, accounts)
    for e in events:
        detector.feed(e)
    # A1 (1 000 shares) would need a 10.0 drop to lose 10 000; A0 (100 shares) a 100.0 drop.
    assert detector.holders.due("AAPL", 95.0) == []
    assert detector.holders.due("AAPL", 89.9) == ["A1"]
    # Re-marks run once every quote of a timestamp is in (here: at the end of the history).
    detector.feed(quote(10, 89.895, 89.905))
    found = [c for c in detector.finish() if c.category is Category.LIMIT_BREACH]
    assert [c.entity.account for c in found] == ["A1"]
    assert detector.holders.due("AAPL", 89.9) == ["A1"], "a breached account is re-marked on every quote"


def test_ramp_episodes_round_trip_and_load_from_checkpoints_without_the_peak_mid_or_base() -> None:
    episode = RampEpisode(1, 5, 100.0, 10.0, 1e-8, 3000.0, 20.0, 9, 4, ["a"], ["b"], 100.4, 1000.0)
    assert RampEpisode.from_json(json.loads(json.dumps(episode.to_json()))) == episode
    old = episode.to_json()[:11]
    loaded = RampEpisode.from_json(old)
    assert (loaded.peak_mid, loaded.base_qty) == (0.0, 0.0)
    assert loaded.peak_qty == 3000.0 and loaded.unwind_order_ids == ["b"]
