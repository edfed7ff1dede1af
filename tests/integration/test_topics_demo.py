"""`riskstream topics apply` against the broker, checked with an outside client
(confluent-kafka / librdkafka), and the embedded demo end to end as a newcomer runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
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


async def test_a_partition_count_in_settings_replaces_the_specs_everywhere(broker: EmbeddedBroker) -> None:
    """The embedded stack's one partition per topic: every topic made so, and checked so."""
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap_servers}, topics={"partitions": 1})
    specs = load_specs(settings.topics)
    assert {s.partitions for s in specs} == {1}
    await apply_specs(settings.kafka, specs)
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)
    assert {len(metadata.topics[s.name].partitions) for s in specs} == {1}
    with pytest.raises(TopicSpecError, match="has 1 partitions, its spec says 4"):
        await apply_specs(settings.kafka, load_specs(Settings().topics))


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


def test_the_demo_restarts_a_worker_that_exits_and_alerts_go_on(tmp_path: Path) -> None:
    """A worker killed under the demo is started again, as a deployment's supervisor would, and
    alerts show again: the demo does not go on sending traffic with nothing to show."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskstream.cli", "demo", "--duration-s", "75", "--rate", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", "TMPDIR": str(tmp_path)},
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("starting simulated traffic" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)[-3000:]
            time.sleep(0.2)
        first = int(re.findall(r"worker pid (\d+)", "".join(lines))[0])
        time.sleep(10)
        os.kill(first, signal.SIGKILL)
        proc.wait(timeout=200)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    out = "".join(lines)
    assert proc.returncode == 0, out[-3000:]
    _, restarted, after = out.partition("worker exited with code -9; restarting it")
    assert restarted, out[-3000:]
    second = re.search(r"worker restarted: pid (\d+)", after)
    assert second is not None, after[-3000:]
    _, ready, shown_after = after.partition("worker ready again")
    assert ready, after[-3000:]
    categories = ("fat_finger", "spoofing", "layering", "wash_trade", "limit_breach", "momentum")
    assert any(category in shown_after for category in categories), shown_after[-3000:]
    for pid in (first, int(second.group(1))):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_simulate_produces_valid_traffic_to_any_broker(broker: EmbeddedBroker) -> None:
    from aiokafka.partitioner import DefaultPartitioner
    from click.testing import CliRunner
    from confluent_kafka import Consumer

    from riskstream.cli import main
    from riskstream.records import SourceWatermark, decode_market_input, decode_trade_input

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
    # Per partition: the last watermark and the last event time read.
    marks: dict[tuple[str, int], int] = {}
    last_event: dict[tuple[str, int], int] = {}
    partitions = list(range(4))
    try:
        idle = 0
        everywhere = {(t, p) for t in seen for p in partitions}
        # Every event, and a watermark from every partition (one of market-data may hold no
        # symbol: watermarks only); after the last event only its tick's watermarks follow.

        def closed() -> bool:
            return set(marks) == everywhere and all(marks[w] > ts for w, ts in last_event.items())

        while idle < 30 and (sum(seen.values()) < produced or not closed()):
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                idle += 1
                continue
            value, topic = msg.value() or b"", str(msg.topic())
            where = (topic, int(msg.partition() or 0))
            record = decode_market_input(value) if topic == "market-data" else decode_trade_input(value)
            if isinstance(record, SourceWatermark):
                # Unkeyed, and a partition's watermarks never go back.
                assert msg.key() is None
                assert record.ts_ns >= marks.get(where, 0)
                marks[where] = record.ts_ns
                continue
            key = record.symbol if topic == "market-data" else record.account  # type: ignore[union-attr]
            assert msg.key() == key.encode()
            # Where the producer's default partitioner puts the key, as any other producer would.
            assert where[1] == DefaultPartitioner()(key.encode(), partitions, partitions)
            # The promise kept: no event earlier than a watermark read before it.
            assert record.ts_ns >= marks.get(where, 0)
            last_event[where] = record.ts_ns
            seen[topic] += 1
    finally:
        consumer.close()
    # Every partition of both topics, quiet or not, ends with a watermark past its last event.
    assert closed()
    assert sum(seen.values()) == produced
    assert min(seen.values()) > 0
