"""riskstream's drain loop is adapted from Faust's own; an upgrade that changes Faust's loop must
be reviewed against it (see :mod:`riskstream.faust_compat`)."""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

from faust.transport.consumer import Consumer
from faust.types import TP

from riskstream.faust_compat import Continuity, OffsetContinuity, RiskstreamApp

ADAPTED_FROM_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
"""sha256 of ``faust.transport.consumer.Consumer._drain_messages`` in faust-streaming 0.15.3."""


def test_faust_drain_loop_is_the_one_riskstream_adapted() -> None:
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == ADAPTED_FROM_SHA256, (
        "Faust's Consumer._drain_messages changed: review riskstream.faust_compat's copy of it, "
        "then update ADAPTED_FROM_SHA256"
    )


def test_lean_drain_is_the_default_and_can_be_turned_off() -> None:
    lean = RiskstreamApp("compat-test-lean", fetch_max_wait_ms=10, autodiscover=False)
    stock = RiskstreamApp("compat-test-stock", fetch_max_wait_ms=10, lean_drain=False, autodiscover=False)
    lean_consumer: Any = lean.transport.Consumer
    stock_consumer: Any = stock.transport.Consumer
    assert lean_consumer._drain_messages is not Consumer._drain_messages
    assert stock_consumer._drain_messages is Consumer._drain_messages
    assert issubclass(lean_consumer, stock_consumer)


def test_lean_app_leaves_faust_statistics_sensor_out_and_stock_keeps_it() -> None:
    lean = RiskstreamApp("compat-test-lean-sensors", fetch_max_wait_ms=10, autodiscover=False)
    stock = RiskstreamApp(
        "compat-test-stock-sensors", fetch_max_wait_ms=10, lean_drain=False, autodiscover=False
    )
    for app in (lean, stock):
        list(app.on_init_dependencies())
    assert lean.monitor not in set(lean.sensors)
    assert stock.monitor in set(stock.sensors)


def test_continuity_delivers_the_expected_offset_and_drops_what_was_read() -> None:
    c = OffsetContinuity()
    assert c.check("tp", None, 7, fetch=1) is Continuity.DELIVER
    assert c.check("tp", 8, 8, fetch=1) is Continuity.DELIVER
    assert c.check("tp", 9, 3, fetch=2) is Continuity.DROP


def test_a_jump_reseeks_and_the_rest_of_that_fetch_is_dropped() -> None:
    """The loss seen after restarts: a fetch in flight across the seek to the committed
    offsets answers from far ahead (2955 while 2023 is expected)."""
    c = OffsetContinuity()
    assert c.check("tp", 2023, 2955, fetch=1) is Continuity.RESEEK
    assert c.check("tp", 2023, 2956, fetch=1) is Continuity.DROP
    assert c.check("tp", 2023, 2023, fetch=2) is Continuity.DELIVER
    assert c.check("tp", 2024, 2024, fetch=2) is Continuity.DELIVER


def test_a_jump_that_fresh_fetches_confirm_is_accepted_after_the_reseeks() -> None:
    """Records that are really not in the log (retention, transaction markers): the broker
    answers past them after every seek back, and the drain goes on instead of spinning."""
    c = OffsetContinuity(reseeks=3)
    verdicts = [c.check("tp", 10, 15, fetch=f) for f in range(1, 5)]
    assert verdicts == [Continuity.RESEEK, Continuity.RESEEK, Continuity.RESEEK, Continuity.DELIVER]
    assert c.check("tp", 16, 16, fetch=5) is Continuity.DELIVER
    assert c.check("other", 3, 4, fetch=5) is Continuity.RESEEK


def test_fetches_that_keep_answering_below_the_expected_offset_mean_the_log_restarted() -> None:
    """A broker that lost its data serves the partition from 0 again while 5000 is expected:
    dropping those as already read would lose every new record below 5000."""
    c = OffsetContinuity(reseeks=2)
    assert c.check("tp", 5000, 0, fetch=1) is Continuity.DROP
    assert c.check("tp", 5000, 1, fetch=1) is Continuity.DROP
    assert c.check("tp", 5000, 2, fetch=2) is Continuity.DROP
    assert c.check("tp", 5000, 3, fetch=3) is Continuity.REWOUND


def test_stale_records_below_the_expected_offset_from_one_fetch_are_only_dropped() -> None:
    c = OffsetContinuity(reseeks=2)
    assert [c.check("tp", 100, off, fetch=1) for off in range(90, 100)] == [Continuity.DROP] * 10
    assert c.check("tp", 100, 100, fetch=2) is Continuity.DELIVER


def test_faust_is_pinned_to_the_release_the_loop_was_adapted_from() -> None:
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "faust-streaming==0.15.3" in project["project"]["dependencies"]
    assert version("faust-streaming") == "0.15.3"


def test_a_full_stream_buffer_does_not_stop_fetching_a_partition_in_the_lean_consumer() -> None:
    """Faust drops a partition from its fetches when one of its records meets a nearly full
    buffer and takes it back only once the buffer runs empty; the lean drain loop waits for
    room instead, for every partition alike."""
    tp = TP("trade-logs", 0)
    for lean_drain, still_fetched in ((True, True), (False, False)):
        app = RiskstreamApp(
            f"compat-test-buffer-{lean_drain}",
            fetch_max_wait_ms=10,
            lean_drain=lean_drain,
            autodiscover=False,
        )
        consumer: Any = app.consumer
        consumer._active_partitions = {tp}
        consumer.on_buffer_full(tp)
        assert (tp in consumer._active_partitions) is still_fetched
