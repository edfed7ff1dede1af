"""Records built once per event are immutable to the type checker and equal by value at run
time (:mod:`riskstream.records.immutable`)."""

from __future__ import annotations

from pathlib import Path

from mypy import api as mypy_api

from riskstream.records import OrderEvent, OrderEventType, Side


def _order(qty: float = 100.0) -> OrderEvent:
    return OrderEvent(OrderEventType.NEW, "o1", "ACC", "T", "XYZ", Side.BUY, qty, 10.0, 1)


def test_equal_and_hashed_by_value() -> None:
    assert _order() == _order()
    assert hash(_order()) == hash(_order())
    assert _order() != _order(qty=200.0)
    assert len({_order(), _order(), _order(qty=200.0)}) == 2
    assert not hasattr(_order(), "__dict__")


def test_the_type_checker_refuses_assignment(tmp_path: Path) -> None:
    snippet = tmp_path / "assign.py"
    snippet.write_text(
        "from riskstream.core.state import ActivityItem, LiveOrder\n"
        "from riskstream.records import OrderEvent, Quote\n"
        "def f(e: OrderEvent, q: Quote, o: LiveOrder, a: ActivityItem) -> None:\n"
        "    e.qty = 1.0\n"
        "    q.bid = 1.0\n"
        "    o.qty = 1.0\n"
        "    a.qty = 1.0\n"
    )
    out, _, status = mypy_api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(snippet)])
    assert status == 1, out
    for line in (4, 5, 6, 7):
        assert f"assign.py:{line}: error:" in out and "read-only" in out, out
