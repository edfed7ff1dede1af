from __future__ import annotations

import json
import random

import pytest

from riskstream.core.detectors import record_order_size
from riskstream.core.state import AccountState, KeySet, SymbolState
from riskstream.core.windows import NS_PER_S, SlidingWindow, WindowState
from riskstream.records import Quote
from tests.factories import T0, context, fill, order

SPEC = SlidingWindow.of_seconds(10, 2, 100)


def enc(ts: int, item: object) -> bytes:
    return json.dumps([ts, item]).encode()


def test_window_keeps_only_its_span() -> None:
    w: WindowState[str] = WindowState(enc)
    for i in range(30):
        assert w.aggregate(SPEC, i * NS_PER_S, f"e{i}")
    assert [it for _, it in w.items(SPEC)] == [f"e{i}" for i in range(20, 30)]
    assert len(w) <= 13


def test_window_uses_event_time_not_arrival() -> None:
    w: WindowState[str] = WindowState(enc)
    w.aggregate(SPEC, 100 * NS_PER_S, "late-arriving-future")
    w.aggregate(SPEC, 95 * NS_PER_S, "slightly-late")
    assert [it for _, it in w.items(SPEC)] == ["slightly-late", "late-arriving-future"]
    assert w.watermark_ns == 100 * NS_PER_S


def test_window_rejects_events_beyond_grace() -> None:
    w: WindowState[str] = WindowState(enc)
    w.aggregate(SPEC, 100 * NS_PER_S, "now")
    assert not w.aggregate(SPEC, 87 * NS_PER_S, "too-late")
    assert w.aggregate(SPEC, 89 * NS_PER_S, "within-grace")


def test_window_caps_items() -> None:
    spec = SlidingWindow.of_seconds(10, 2, 5)
    w: WindowState[int] = WindowState(enc)
    for i in range(50):
        w.aggregate(spec, i, i)
    assert [it for _, it in w.items(spec)] == [45, 46, 47, 48, 49]


def test_account_state_round_trips_through_json() -> None:
    s = AccountState()
    for e in [
        order("new", "o1", "buy", 100, 100.0, 0),
        order("new", "o2", "sell", 50, 101.0, 1),
        order("cancel", "o2", "sell", 50, 101.0, 2),
        fill("o1", "buy", 40, 100.0, 3),
    ]:
        s.apply(e, SPEC, 0.1)
    s.flagged.add("o2")
    s.open_breaches.add("gross_notional")
    back = AccountState.from_json(json.loads(json.dumps(s.to_json())))
    assert back.to_json() == s.to_json()
    assert back.positions == {"AAPL": 40}
    assert back.live_orders["o1"].qty == 60


def test_symbol_state_ignores_older_quotes() -> None:
    s = SymbolState()
    s.apply(Quote("AAPL", "X", T0 + 10, 100, 100.02, 5, 5))
    s.apply(Quote("AAPL", "X", T0, 90, 90.02, 5, 5))
    assert s.mid == pytest.approx(100.01)
    assert SymbolState.from_json(s.to_json()) == s


def test_recent_returns_only_the_span_oldest_first() -> None:
    w: WindowState[int] = WindowState(enc)
    for i in range(10):
        w.aggregate(SPEC, i * NS_PER_S, i)
    assert [it for _, it in w.recent(SPEC, 3 * NS_PER_S, 9 * NS_PER_S)] == [7, 8, 9]
    assert [it for _, it in w.recent(SPEC, 100 * NS_PER_S, 9 * NS_PER_S)] == list(range(10))


def _symbol(item: tuple[str, int]) -> str:
    return item[0]


def test_one_keys_recent_items_are_the_windows_filtered_through_adds_late_inserts_and_evictions() -> None:
    """The per-key index is asked for some keys early, others late, while items arrive out of
    order within grace and are evicted by time and by count: every read equals filtering the
    whole window."""
    rng = random.Random(7)
    spec = SlidingWindow.of_seconds(10, 2, 60)
    w: WindowState[tuple[str, int]] = WindowState(enc)
    ts = 0
    for n in range(3000):
        ts += rng.randint(0, 400) * 1_000_000
        late = rng.random() < 0.1
        at = max(0, ts - rng.randint(0, 1500) * 1_000_000) if late else ts
        w.aggregate(spec, at, (rng.choice("ABCDE"), n))
        for key in "ABCDE"[: 1 + n // 600]:
            span = rng.choice((1, 3, 10, 30)) * NS_PER_S
            end = ts - rng.randint(0, 2000) * 1_000_000
            want = [(t, it) for t, it in w.recent(spec, span, end) if it[0] == key]
            assert w.recent_of(spec, span, end, _symbol, key) == want
            newest = list(w.newest_of(spec, span, end, _symbol, key))
            assert newest == want[::-1]


def test_late_event_within_grace_is_kept_in_event_time_order() -> None:
    w: WindowState[str] = WindowState(enc)
    for i, name in ((10, "a"), (12, "c"), (11, "b"), (13, "d")):
        w.aggregate(SPEC, i * NS_PER_S, name)
    assert [it for _, it in w.recent(SPEC, 2 * NS_PER_S, 13 * NS_PER_S)] == ["c", "d"]
    assert [it for _, it in w.items(SPEC)] == ["a", "b", "c", "d"]


def test_window_bytes_round_trip_after_eviction_and_late_insert() -> None:
    spec = SlidingWindow.of_seconds(10, 2, 4)
    w: WindowState[str] = WindowState(enc)
    for ts, name in ((1, "a"), (2, "b"), (4, "d"), (3, "c"), (5, "e"), (6, "f")):
        w.aggregate(spec, ts * NS_PER_S, name)
    back: WindowState[str] = WindowState.from_json(json.loads(w.to_bytes()), enc, str)
    assert list(back.items(spec)) == list(w.items(spec))
    assert [it for _, it in back.items(spec)] == ["c", "d", "e", "f"]
    assert back.watermark_ns == w.watermark_ns


V1_STATE = {
    "o": [["o1", "AAPL", "buy", 60, 100.0, 1]],
    "p": {"AAPL": 40},
    "m": {"AAPL": 100.0},
    "u": 75.0,
    "n": 2,
    "b": ["gross_notional"],
    "f": ["o2"],
    "l": 0,
    "a": {"items": [], "watermark": 0},
}
"""An account state as the flat, unversioned codec before slices wrote it."""


def test_account_state_is_sliced_by_concern_and_each_slice_is_versioned() -> None:
    s = AccountState()
    s.apply(fill("o1", "buy", 40, 100.0, 3), SPEC, 0.1)
    body = s.to_json()
    assert body["v"] == 2
    for name in ("orders", "limits", "spoofing", "momentum", "ramping", "patterns"):
        assert body[name]["v"] == 1, name
    assert body["stuffing"]["v"] == 2
    assert body["fat_finger"]["v"] == 3
    assert body["limits"]["positions"] == {"AAPL": 40}


def test_a_state_of_the_previous_codec_is_still_read() -> None:
    window = AccountState().to_json()["window"]
    back = AccountState.from_json({**V1_STATE, "a": window})
    assert back.positions == {"AAPL": 40}
    assert set(back.open_breaches) == {"gross_notional"}
    # The account-wide size history cannot be split by symbol: each symbol's is learnt again.
    assert back.sizes == {}
    assert back.to_json()["v"] == 2


def test_per_symbol_sizes_survive_the_codec_and_a_v1_size_slice_is_dropped() -> None:
    s = AccountState()
    for i in range(3):
        record_order_size(order("new", f"o{i}", "buy", 100 * (i + 1), 100.0, i), s, context(), 0.5)
    back = AccountState.from_json(s.to_json())
    assert back.sizes == s.sizes and back.size_in("AAPL").orders_seen == 3
    assert back.size_in("AAPL").log_dispersion > 0
    body = s.to_json()
    v1_sizes = {"v": 1, "usual_qty": 7.0, "orders_seen": 30, "large_qty": 9.0}
    old = AccountState.from_json({**body, "fat_finger": v1_sizes})
    assert old.sizes == {}


def test_a_v2_size_slice_is_read_with_its_dispersion_learnt_again() -> None:
    """fat_finger 2 rows had no size dispersion: usual, count and peak are kept, the dispersion
    starts at 0 and is learnt from the next orders."""
    body = AccountState().to_json()
    v2_sizes = {"v": 2, "symbols": {"AAPL": [100.0, 30, 250.0]}, "notional": [5000.0, 12, 9000.0]}
    old = AccountState.from_json({**body, "fat_finger": v2_sizes})
    size = old.size_in("AAPL")
    assert (size.usual_qty, size.orders_seen, size.large_qty, size.log_dispersion) == (100.0, 30, 250.0, 0.0)
    assert old.notional.large_qty == 9000.0


def test_a_state_of_an_unknown_codec_or_slice_version_is_refused() -> None:
    body = AccountState().to_json()
    with pytest.raises(ValueError, match="codec version 3"):
        AccountState.from_json({**body, "v": 3})
    with pytest.raises(ValueError, match="slice 'ramping' version 2"):
        AccountState.from_json({**body, "ramping": {**body["ramping"], "v": 2}})


def test_key_set_behaves_as_a_set_and_holds_nothing_while_empty() -> None:
    keys = KeySet()
    assert len(keys) == 0 and "o1" not in keys and keys._keys is None
    keys.update(["o1", "o2"])
    keys.add("o3")
    assert sorted(keys) == ["o1", "o2", "o3"] and set(keys) == {"o1", "o2", "o3"}
    keys.keep_only({"o2", "o3", "o9"})
    assert set(keys) == {"o2", "o3"}
    keys.discard("o2")
    keys.discard("o3")
    keys.discard("o3")
    assert len(keys) == 0 and keys._keys is None
