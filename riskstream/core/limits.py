"""Per-account limits and beneficial-owner links, parsed from a TOML file.

```toml
[default]                       # optional; falls back to the settings' limit defaults
max_position_qty = 100000
[accounts.ACC-7]                # any subset of the four limits
max_gross_notional = 2500000
[owners]                        # accounts with one beneficial owner
FUND-A = ["ACC-3", "ACC-4"]
[symbols.XOM]                   # optional reference data per symbol
adv_qty = 15000000              # average daily volume (shares), for alerts' share of ADV
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

LIMIT_FIELDS = ("max_position_qty", "max_gross_notional", "max_order_qty", "max_loss")


@dataclass(frozen=True, slots=True)
class AccountLimits:
    max_position_qty: float
    """Largest absolute net position per symbol, in units."""
    max_gross_notional: float
    """Largest sum over symbols of |position| x mark price."""
    max_order_qty: float
    """Largest single order quantity."""
    max_loss: float = float("inf")
    """Largest loss, realised plus unrealised at market marks."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    default: AccountLimits
    accounts: dict[str, AccountLimits] = field(default_factory=dict)
    owner_of: dict[str, str] = field(default_factory=dict)
    """Account -> beneficial owner, for the accounts the file links."""
    adv_qty: dict[str, float] = field(default_factory=dict)
    """Symbol -> average daily volume from the firm's reference data, for the symbols given."""

    def for_account(self, account: str) -> AccountLimits:
        return self.accounts.get(account, self.default)

    def same_owner(self, a: str, b: str) -> bool:
        """True when both are one account or the file links them to one beneficial owner."""
        if a == b:
            return True
        owner = self.owner_of.get(a)
        return owner is not None and owner == self.owner_of.get(b)


class LimitsFileError(ValueError):
    pass


def _limits(obj: Any, base: AccountLimits, where: str) -> AccountLimits:
    if not isinstance(obj, dict):
        raise LimitsFileError(f"{where} must be a table")
    unknown = set(obj) - set(LIMIT_FIELDS)
    if unknown:
        raise LimitsFileError(f"{where}: unknown keys {sorted(unknown)}")
    values: dict[str, float] = {}
    for name, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise LimitsFileError(f"{where}.{name} must be a positive number")
        values[name] = float(value)
    return replace(base, **values)


def parse_limits(text: str, default: AccountLimits) -> RiskLimits:
    """Parse the limits file; errors name the offending key so a typo cannot go unnoticed."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LimitsFileError(f"not valid TOML: {exc}") from None
    unknown = set(doc) - {"default", "accounts", "owners", "symbols"}
    if unknown:
        raise LimitsFileError(f"unknown sections {sorted(unknown)}")
    base = _limits(doc.get("default", {}), default, "default")
    accounts_doc = doc.get("accounts", {})
    if not isinstance(accounts_doc, dict):
        raise LimitsFileError("accounts must be a table")
    accounts = {acc: _limits(v, base, f"accounts.{acc}") for acc, v in accounts_doc.items()}
    owner_of: dict[str, str] = {}
    owners_doc = doc.get("owners", {})
    if not isinstance(owners_doc, dict):
        raise LimitsFileError("owners must be a table")
    for owner, members in owners_doc.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise LimitsFileError(f"owners.{owner} must be a list of account ids")
        for member in members:
            if member in owner_of:
                raise LimitsFileError(f"account {member} is listed under two owners")
            owner_of[member] = owner
    return RiskLimits(base, accounts, owner_of, _symbols(doc.get("symbols", {})))


def _symbols(doc: Any) -> dict[str, float]:
    if not isinstance(doc, dict):
        raise LimitsFileError("symbols must be a table")
    adv: dict[str, float] = {}
    for symbol, entry in doc.items():
        if not isinstance(entry, dict) or set(entry) - {"adv_qty"}:
            raise LimitsFileError(f"symbols.{symbol} takes only adv_qty")
        value = entry.get("adv_qty")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise LimitsFileError(f"symbols.{symbol}.adv_qty must be a positive number")
        adv[symbol] = float(value)
    return adv
