"""Declarative topic specs (``topics/*.toml``) and ``riskstream topics apply``.

Apply creates missing topics and checks existing ones; a partition count that differs from the
spec is reported, never silently changed, because state tables are co-partitioned with it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from riskstream.kafka import aiokafka_kwargs
from riskstream.settings import KafkaSettings, TopicNames

ROLES = ("market_data", "trade_logs", "risk_alerts", "dead_letter", "linked_fills")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    role: str
    name: str
    partitions: int
    replication_factor: int
    key: str
    config: dict[str, str] = field(default_factory=dict)


class TopicSpecError(ValueError):
    pass


def load_specs(names: TopicNames) -> list[TopicSpec]:
    """Specs for every role, named by the settings (so a deployment can rename topics), with
    the settings' partition count where one is set."""
    by_role: dict[str, TopicSpec] = {}
    for path in sorted(Path(names.specs_dir).glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        role = doc.get("role")
        if role not in ROLES:
            raise TopicSpecError(f"{path}: role must be one of {ROLES}, got {role!r}")
        partitions = doc.get("partitions")
        if not isinstance(partitions, int) or partitions < 1:
            raise TopicSpecError(f"{path}: partitions must be a positive integer")
        partitions = names.partitions or partitions
        by_role[role] = TopicSpec(
            role=role,
            name=getattr(names, role),
            partitions=partitions,
            replication_factor=int(doc.get("replication_factor", 1)),
            key=str(doc.get("key", "")),
            config={str(k): str(v) for k, v in doc.get("config", {}).items()},
        )
    missing = set(ROLES) - set(by_role)
    if missing:
        raise TopicSpecError(f"no spec in {names.specs_dir} for {sorted(missing)}")
    return [by_role[r] for r in ROLES]


EMBEDDED_PARTITIONS = 1
"""Partitions of every topic on the embedded stack (``topics.partitions``). Partitions spread
the work over workers, and the embedded stack runs one. Each costs Tansu a listing of its stored
batches on every fetch, and each quiet one is a partition the event-time merge waits on: at the
demo's rate the four of the specs took the broker from about a third of a core to more than a
whole one once the simulator sends every 50 ms (bench/README.md, "Source watermarks")."""


async def partition_counts(kafka: KafkaSettings, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(kafka))
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described if d.get("error_code", 0) == 0}


async def apply_specs(kafka: KafkaSettings, specs: list[TopicSpec]) -> list[str]:
    """Create what is missing; return one line per topic saying what was found or done."""
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(kafka))
    await admin.start()
    report: list[str] = []
    try:
        existing = set(await admin.list_topics())
        to_create = [s for s in specs if s.name not in existing]
        if to_create:
            await admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config)
                    for s in to_create
                ]
            )
            report += [f"created {s.name} ({s.partitions} partitions)" for s in to_create]
        present = [s for s in specs if s.name in existing]
        if present:
            described = await admin.describe_topics([s.name for s in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            for s in present:
                have = counts.get(s.name)
                if have != s.partitions:
                    raise TopicSpecError(
                        f"{s.name} has {have} partitions, its spec says {s.partitions}: "
                        "repartitioning moves keys between state partitions, do it on purpose"
                    )
                report.append(f"ok {s.name} ({have} partitions)")
    finally:
        await admin.close()
    return report
