"""Which accounts have been idle, in event time, for longer than a time to live.

An account's live state (decoded windows, profiles, indexes) is what the fold needs while the
account trades; an account that has not sent an event for a while needs only its stored form,
which is several times smaller. The fold's owner (the worker's state store, the backtest's dict)
asks :meth:`IdleExpiry.due` which accounts went quiet before ``ttl_s`` of event time ago, and
keeps those in stored form only until their next event (or until a quote crosses a re-mark
trigger of one of their positions: the holders index keeps the triggers, not the states), when
they are decoded again: the same state, so the same alerts. Nothing is dropped: a position held
overnight, the sizes an account usually trades and an open limit breach must outlive any time
to live.

Event time, not wall time: a replay at any speed expires the same accounts at the same events.
"""

from __future__ import annotations

from collections import OrderedDict


class IdleExpiry:
    """Accounts by the event time of their last event, oldest first."""

    __slots__ = ("_last_ns", "now_ns", "ttl_ns")

    def __init__(self, ttl_s: float) -> None:
        self.ttl_ns = int(ttl_s * 1e9)
        self.now_ns = -1
        """The latest event time seen (late events do not move it back)."""
        self._last_ns: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last_ns)

    def seen(self, account: str, ts_ns: int) -> None:
        """An event of ``account`` at ``ts_ns``. A late event goes to the back with its own
        time: it is expired no sooner than the accounts ahead of it, a little late at worst."""
        last_ns = self._last_ns
        last_ns[account] = max(ts_ns, last_ns.get(account, ts_ns))
        last_ns.move_to_end(account)
        if ts_ns > self.now_ns:
            self.now_ns = ts_ns

    def due(self, limit: int | None = None) -> list[str]:
        """Accounts whose last event is more than the time to live behind the latest event
        time, oldest first, at most ``limit``; they leave the index (their next event puts
        them back)."""
        horizon_ns = self.now_ns - self.ttl_ns
        out: list[str] = []
        last_ns = self._last_ns
        while last_ns and (limit is None or len(out) < limit):
            account, ts_ns = next(iter(last_ns.items()))
            if ts_ns >= horizon_ns:
                break
            last_ns.popitem(last=False)
            out.append(account)
        return out

    def defer(self, account: str) -> None:
        """Put back, at the front, an account that :meth:`due` returned but that could not be
        expired yet (its latest changes are not stored): the next sweep returns it again."""
        if account not in self._last_ns:
            self._last_ns[account] = self.now_ns - self.ttl_ns - 1
            self._last_ns.move_to_end(account, last=False)

    def clear(self) -> None:
        self._last_ns.clear()
