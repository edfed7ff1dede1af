"""Prior alerts for the LLM prompt without a database round trip per batch.

The prompt of a candidate carries the newest alerts on the same account, retrieved from the
audit table. An account's alerts are raised by one worker only (the owner of its trade-logs
partition), so once this worker has read an account's history from the table, the alerts it
publishes afterwards are all that can change it: :class:`PriorAlertCache` reads each account
once, keeps its newest alerts, and adds what the audit writer is handed. A rebalance can move
accounts to another worker and back, so the app clears the cache on every rebalance.

Symbol entities (market-wide alerts) are looked up in the table every time: their history is
every alert on the symbol, raised by every worker, and they are rare.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from riskstream.llm.prompts import PriorAlert
from riskstream.records import AlertEntity, RiskAlert

PriorAlertLoader = Callable[[Sequence[AlertEntity], int], Awaitable[dict[AlertEntity, list[PriorAlert]]]]


def prior_of(alert: RiskAlert) -> PriorAlert:
    return PriorAlert(
        alert_id=alert.alert_id,
        category=alert.category.value,
        severity=alert.severity.value,
        score=alert.score,
        event_ns=alert.timings.event_ns,
        summary=alert.evidence.summary,
    )


class _History:
    """One account's newest alerts, newest first; ``loaded`` once the table was read."""

    __slots__ = ("alerts", "loaded", "versions")

    def __init__(self) -> None:
        self.alerts: list[PriorAlert] = []
        self.versions: dict[str, int] = {}
        self.loaded = False

    def add(self, prior: PriorAlert, version: int, keep: int) -> None:
        if self.versions.get(prior.alert_id, 0) > version:
            return
        self.versions[prior.alert_id] = version
        self.alerts = [a for a in self.alerts if a.alert_id != prior.alert_id]
        self.alerts.append(prior)
        self.alerts.sort(key=lambda a: a.event_ns, reverse=True)
        for dropped in self.alerts[keep:]:
            self.versions.pop(dropped.alert_id, None)
        del self.alerts[keep:]


class PriorAlertCache:
    """A :data:`~riskstream.llm.scorer.PriorAlertSource` in front of the audit table."""

    def __init__(self, load: PriorAlertLoader, keep: int, max_accounts: int = 100_000) -> None:
        """``keep``: alerts kept per account (the scorer's ``prior_max_alerts``);
        ``max_accounts``: accounts held, least recently asked for dropped first (read again
        from the table when next asked for)."""
        self._load = load
        self._keep = keep
        self._max_accounts = max_accounts
        self._accounts: OrderedDict[str, _History] = OrderedDict()
        self.loads = 0
        """Table lookups made (one per call that found an account not yet read, or a symbol)."""

    def remember(self, alerts: Sequence[RiskAlert]) -> None:
        """Alerts handed to the audit writer (the table will hold them)."""
        for alert in alerts:
            account = alert.entity.account
            if account:
                self._history(account).add(prior_of(alert), alert.version, self._keep)

    def clear(self) -> None:
        self._accounts.clear()

    async def __call__(
        self, entities: Sequence[AlertEntity], per_entity: int
    ) -> dict[AlertEntity, list[PriorAlert]]:
        if per_entity > self._keep:
            self.loads += 1
            return await self._load(entities, per_entity)
        missing = [
            e
            for e in entities
            if not e.account or e.account not in self._accounts or not self._accounts[e.account].loaded
        ]
        found: dict[AlertEntity, list[PriorAlert]] = {}
        if missing:
            self.loads += 1
            from_table = await self._load(missing, self._keep)
            for entity in missing:
                rows = from_table.get(entity, [])
                if not entity.account:
                    found[entity] = rows[:per_entity]
                    continue
                history = self._history(entity.account)
                if not history.loaded:
                    for prior in reversed(rows):
                        if prior.alert_id not in history.versions:
                            history.add(prior, 0, self._keep)
                    history.loaded = True
        for entity in entities:
            if entity.account:
                found[entity] = self._history(entity.account).alerts[:per_entity]
        return found

    def _history(self, account: str) -> _History:
        history = self._accounts.get(account)
        if history is None:
            history = self._accounts[account] = _History()
            while len(self._accounts) > self._max_accounts:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(account)
        return history
