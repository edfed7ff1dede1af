"""The holders' re-mark triggers, kept sorted per symbol, find exactly the holders a plain
comparison of the mid with every trigger finds (:class:`riskstream.core.surveillance.Holders`)."""

from __future__ import annotations

import math
import random

from riskstream.core.surveillance import _SymbolTriggers


def _model_due(model: dict[str, tuple[int, float]], mid: float) -> list[str]:
    return sorted(
        account
        for account, (sign, trigger) in model.items()
        if sign == 0 or (mid <= trigger if sign > 0 else mid >= trigger)
    )


def test_sorted_triggers_match_comparing_every_holder() -> None:
    rng = random.Random(5)
    accounts = [f"A{i}" for i in range(40)]
    specials = [math.inf, -math.inf, math.nan, 100.0, 100.0]
    for _ in range(30):
        triggers = _SymbolTriggers()
        model: dict[str, tuple[int, float]] = {}
        for _ in range(400):
            account = rng.choice(accounts)
            if rng.random() < 0.2:
                triggers.drop(account)
                model.pop(account, None)
            else:
                sign = rng.choice((-1, 0, 1))
                trigger = rng.choice(specials) if rng.random() < 0.2 else round(rng.uniform(90, 110), 1)
                triggers.put(account, sign, trigger)
                model[account] = (sign, trigger)
            for mid in (rng.uniform(85, 115), 100.0, rng.choice(specials)):
                assert triggers.due(mid) == _model_due(model, mid), (mid, model)
