"""`riskstream topics apply` against the broker, checked with an outside client
(confluent-kafka / librdkafka), and the embedded demo end to end as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from riskstream.broker import EmbeddedBroker
from riskstream.settings import Settings
from riskstream.topics import TopicSpecError, apply_specs, load_specs

pytestmark = pytest.mark.integration


async def test_apply_creates_then_checks(broker: EmbeddedBroker) -> None:
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    specs = load_specs(settings.topics)
    first = await apply_specs(settings.kafka, specs)
    assert sorted(first) == sorted(f"created {s.name} ({s.partitions} partitions)" for s in specs)
    second = await apply_specs(settings.kafka, specs)
    assert sorted(second) == sorted(f"ok {s.name} ({s.partitions} partitions)" for s in specs)

    outside = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    metadata = outside.list_topics(timeout=10)
    for spec in specs:
        assert len(metadata.topics[spec.name].partitions) == spec.partitions


async def test_apply_refuses_a_partition_mismatch(broker: EmbeddedBroker) -> None:
    outside = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    outside.create_topics([NewTopic("trade-logs", num_partitions=2, replication_factor=1)])[
        "trade-logs"
    ].result(timeout=10)
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    with pytest.raises(TopicSpecError, match="trade-logs has 2 partitions, its spec says 4"):
        await apply_specs(settings.kafka, load_specs(settings.topics))


def test_demo_shows_alerts_and_leaves_nothing_running(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "riskstream.cli", "demo", "--duration-s", "25", "--rate", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    shown = re.search(r"stopped: (\d+) alerts shown", out)
    assert shown is not None and int(shown.group(1)) >= 3, out[-3000:]
    for category in ("fat_finger", "spoofing", "layering"):
        assert category in out
    pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
    assert len(pids) == 2, out[:2000]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_simulate_produces_valid_traffic_to_any_broker(broker: EmbeddedBroker) -> None:
    from click.testing import CliRunner
    from confluent_kafka import Consumer

    from riskstream.cli import main
    from riskstream.records import decode_market_data, decode_trade_log

    bs = broker.bootstrap_servers
    assert CliRunner().invoke(main, ["topics", "apply", "--bootstrap-servers", bs]).exit_code == 0
    result = CliRunner().invoke(
        main, ["simulate", "--bootstrap-servers", bs, "--duration-s", "3", "--rate", "200"]
    )
    assert result.exit_code == 0, result.output
    produced = int(re.search(r"produced (\d+) events", result.output).group(1))  # type: ignore[union-attr]
    assert produced > 300

    consumer = Consumer(
        {
            "bootstrap.servers": bs,
            "group.id": "sim-check",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(["market-data", "trade-logs"])
    seen = {"market-data": 0, "trade-logs": 0}
    try:
        idle = 0
        while sum(seen.values()) < produced and idle < 30:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                idle += 1
                continue
            value, topic = msg.value() or b"", str(msg.topic())
            if topic == "market-data":
                assert msg.key() == decode_market_data(value).symbol.encode()
            else:
                assert msg.key() == decode_trade_log(value).account.encode()
            seen[topic] += 1
    finally:
        consumer.close()
    assert sum(seen.values()) == produced
    assert min(seen.values()) > 0
