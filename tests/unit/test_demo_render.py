"""The demo prints text from messages as text: no Rich markup, no terminal escapes."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from riskstream.core.candidates import Candidate
from riskstream.demo import LatencyDrift, _alert_row
from riskstream.llm.base import to_alert
from riskstream.llm.rules import assess_by_rules
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds

HOSTILE_ACCOUNT = "\x1b[2J\x1b]0;pwned\x07[link=https://evil.example]ACC[/link]"
HOSTILE_SUMMARY = "[bold red]fake[/] \x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ \u202eevil"


def rendered() -> str:
    candidate = Candidate(
        Category.FAT_FINGER,
        AlertEntity(HOSTILE_ACCOUNT, "AAPL"),
        WindowBounds(1, 2),
        Evidence({}, ("o1",), HOSTILE_SUMMARY),
        2.0,
    )
    alert = to_alert(candidate, assess_by_rules(candidate), 3).published(4)
    table = Table("category", "severity", "score", "account", "symbol", "ms", "summary")
    _alert_row(alert, table)
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=400).print(table)
    return out.getvalue()


def test_terminal_escapes_from_a_message_are_shown_not_executed() -> None:
    text = rendered()
    assert "\x1b[2J" not in text and "\x1b]0;" not in text and "\x07" not in text
    assert "\x1b]8;" not in text, "a hyperlink was emitted"
    assert "\u202e" not in text
    assert "\\u001b[2J" in text


def test_markup_in_a_message_is_printed_literally() -> None:
    text = rendered()
    assert "[link=https://evil.example]ACC[/link]" in text
    assert "[bold red]fake[/]" in text


def test_the_demo_prints_its_own_latency_and_warns_when_the_embedded_broker_drifts() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    drift = LatencyDrift(console, broker_pids=[], every_s=0.0)
    for ms in (20.0, 25.0, 30.0, 40.0):
        drift.record(ms)
    drift.tick()
    for ms in (900.0, 1500.0, 4000.0):
        drift.record(ms)
    drift.tick()
    drift.tick()
    first, second, third = out.getvalue().splitlines()
    assert "4 alerts, event->alert p50 30 ms, p99 40 ms" in first and "short of CPU" not in first
    assert "p99 4000 ms" in second and "embedded broker is short of CPU" in second
    assert "no alerts" in third
