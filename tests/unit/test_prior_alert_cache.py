"""The prior-alerts cache answers what the audit table would, without asking it per batch."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.core.candidates import Candidate
from riskstream.llm.base import to_alert
from riskstream.llm.prior import PriorAlertCache
from riskstream.llm.prompts import PriorAlert
from riskstream.llm.rules import assess_by_rules
from riskstream.records import AlertEntity, Category, Evidence, RiskAlert, WindowBounds
from riskstream.sinks import AuditLog

CATEGORIES = [Category.FAT_FINGER, Category.SPOOFING, Category.WASH_TRADE]


def alert(n: int, account: str | None, symbol: str, event_us: int) -> RiskAlert:
    c = Candidate(
        CATEGORIES[n % 3],
        AlertEntity(account, symbol),
        WindowBounds(event_us * 1000, event_us * 1000),
        Evidence({}, (f"o{n}",), f"summary {n}"),
        2.0,
    )
    return to_alert(c, assess_by_rules(c), event_us * 1000)


class CountingLog:
    """The real audit table (SQLite), counting the lookups made on it."""

    def __init__(self) -> None:
        self.log = AuditLog(create_async_engine("sqlite+aiosqlite://"))
        self.lookups = 0

    async def recent(
        self, entities: Sequence[AlertEntity], per_entity: int
    ) -> dict[AlertEntity, list[PriorAlert]]:
        self.lookups += 1
        return await self.log.recent_alerts(entities, per_entity)


async def test_each_account_is_read_once_then_served_from_memory() -> None:
    db = CountingLog()
    await db.log.ensure_schema()
    await db.log.write([alert(1, "A", "S", 10), alert(2, "A", "S", 20)])
    cache = PriorAlertCache(db.recent, keep=5)
    a = AlertEntity("A", "S")
    first = await cache([a], 5)
    assert [p.alert_id for p in first[a]] == [
        alert(2, "A", "S", 20).alert_id,
        alert(1, "A", "S", 10).alert_id,
    ]
    cache.remember([alert(3, "A", "T", 30)])
    again = await cache([a], 5)
    assert db.lookups == 1
    assert [p.summary for p in again[a]] == ["summary 3", "summary 2", "summary 1"]


async def test_alerts_remembered_before_the_first_read_are_not_lost() -> None:
    """Submitted but not yet written when the account is first asked for: the table does not
    have it yet, the cache does."""
    db = CountingLog()
    await db.log.ensure_schema()
    await db.log.write([alert(1, "A", "S", 10)])
    cache = PriorAlertCache(db.recent, keep=5)
    cache.remember([alert(2, "A", "S", 20)])
    found = await cache([AlertEntity("A", "S")], 5)
    assert [p.summary for p in found[AlertEntity("A", "S")]] == ["summary 2", "summary 1"]


async def test_an_update_replaces_its_alert_and_an_older_version_does_not() -> None:
    db = CountingLog()
    await db.log.ensure_schema()
    cache = PriorAlertCache(db.recent, keep=5)
    first = alert(1, "A", "S", 10)
    v2 = replace(first, score=0.99, version=2)
    cache.remember([first, v2, first])
    found = await cache([AlertEntity("A", None)], 5)
    assert [(p.alert_id, p.score) for p in found[AlertEntity("A", None)]] == [(first.alert_id, 0.99)]


async def test_clear_reads_the_table_again() -> None:
    db = CountingLog()
    await db.log.ensure_schema()
    cache = PriorAlertCache(db.recent, keep=5)
    await cache([AlertEntity("A", "S")], 5)
    cache.clear()
    await cache([AlertEntity("A", "S")], 5)
    assert db.lookups == 2


async def test_symbol_entities_always_ask_the_table() -> None:
    """A symbol's history is every worker's alerts on it: this worker's cache cannot know it."""
    db = CountingLog()
    await db.log.ensure_schema()
    await db.log.write([alert(1, "B", "S", 10)])
    cache = PriorAlertCache(db.recent, keep=5)
    for _ in range(2):
        found = await cache([AlertEntity(None, "S")], 5)
        assert [p.summary for p in found[AlertEntity(None, "S")]] == ["summary 1"]
    assert db.lookups == 2


async def test_least_recently_asked_accounts_are_dropped_past_the_bound() -> None:
    db = CountingLog()
    await db.log.ensure_schema()
    cache = PriorAlertCache(db.recent, keep=5, max_accounts=2)
    for account in ("A", "B", "C"):
        await cache([AlertEntity(account, "S")], 5)
    await cache([AlertEntity("C", "S"), AlertEntity("B", "S")], 5)
    assert db.lookups == 3
    await cache([AlertEntity("A", "S")], 5)
    assert db.lookups == 4


async def test_the_cache_answers_what_the_table_answers() -> None:
    """Random alerts over a few accounts, submitted in batches and written after each: after
    every batch the cache's answer for every account equals a fresh read of the table, with
    one table lookup per account in all."""
    rng = random.Random(7)
    db = CountingLog()
    await db.log.ensure_schema()
    cache = PriorAlertCache(db.recent, keep=3)
    accounts = [f"ACC-{i}" for i in range(5)]
    n = 0
    for _ in range(30):
        batch = []
        for _ in range(rng.randint(0, 4)):
            n += 1
            batch.append(alert(n, rng.choice(accounts), rng.choice(["S", "T"]), rng.randrange(1, 10**9)))
        cache.remember(batch)
        await db.log.write(batch)
        entities = [AlertEntity(a, rng.choice(["S", "T"])) for a in rng.sample(accounts, 3)]
        got = await cache(entities, 3)
        want = await db.log.recent_alerts(entities, 3)
        assert {e: [p.alert_id for p in got[e]] for e in entities} == {
            e: [p.alert_id for p in want[e]] for e in entities
        }
    assert db.lookups <= len(accounts)
