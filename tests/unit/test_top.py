"""``riskstream top``: rates and percentiles from two scrapes, and the command against a real
prometheus-client endpoint serving riskstream's metrics."""

from __future__ import annotations

import math

from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from riskstream.broker import free_port
from riskstream.cli import main
from riskstream.metrics import Metrics
from riskstream.ops.top import Scrape, quantile, rates


def scrape(metrics: Metrics, at_s: float) -> Scrape:
    return Scrape.parse(generate_latest(metrics.registry).decode(), at_s)


def test_rates_and_quantiles_come_from_the_difference_of_two_scrapes() -> None:
    m = Metrics(CollectorRegistry())
    m.events_consumed.labels("trade-logs").inc(1000)
    for _ in range(50):
        m.event_to_alert.observe(5.0)
    before = scrape(m, 0.0)
    m.events_consumed.labels("trade-logs").inc(500)
    m.events_consumed.labels("market-data").inc(100)
    for i in range(100):
        m.event_to_alert.observe(0.02 if i < 98 else 0.4)
    now = scrape(m, 10.0)
    assert rates(before, now, "riskstream_events_consumed_total", "topic") == {
        "trade-logs": 50.0,
        "market-data": 10.0,
    }
    p50 = quantile(before, now, "riskstream_event_to_alert_seconds", 0.5)
    p99 = quantile(before, now, "riskstream_event_to_alert_seconds", 0.99)
    assert 0.0 < p50 <= 0.025, "the 5 s observations before the first scrape must not count"
    assert 0.25 < p99 <= 0.5
    assert math.isnan(quantile(now, now, "riskstream_event_to_alert_seconds", 0.99))


def test_top_once_reads_a_worker_endpoint() -> None:
    m = Metrics(CollectorRegistry())
    m.events_consumed.labels("trade-logs").inc(10)
    m.alerts.labels("spoofing", "high").inc(3)
    m.event_to_alert.observe(0.03)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=m.registry)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        result = CliRunner().invoke(main, ["top", "--once", "--interval-s", "0.1", "--url", url])
    finally:
        server.shutdown()
        thread.join()
    assert result.exit_code == 0, result.output
    for text in ("Throughput", "trade-logs", "event -> alert", "spoofing", "LLM"):
        assert text in result.output


def test_top_on_a_dead_endpoint_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = CliRunner().invoke(main, ["top", "--once", "--url", url])
    assert result.exit_code == 1
    assert "cannot read" in result.output and "Traceback" not in result.output
