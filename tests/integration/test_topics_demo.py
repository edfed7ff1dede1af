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
