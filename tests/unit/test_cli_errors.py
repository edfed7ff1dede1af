"""Bad configuration gives a one-line error naming the problem, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from riskstream.broker import free_port
from riskstream.cli import main


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RISKSTREAM_DATABASE__URL": "mysql://x/y"}, "must be postgresql+asyncpg"),
        ({"RISKSTREAM_LIMITS_FILE": "/nonexistent/limits.toml"}, "No such file"),
        (
            {
                "RISKSTREAM_KAFKA__SECURITY_PROTOCOL": "SSL",
                "RISKSTREAM_KAFKA__SSL_CAFILE": "/nonexistent/ca.pem",
            },
            "invalid configuration",
        ),
    ],
)
def test_worker_refuses_bad_configuration(env: dict[str, str], message: str) -> None:
    result = CliRunner().invoke(main, ["worker"], env=env)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_worker_with_a_typo_in_the_limits_file(tmp_path: Path) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text("[accounts.A]\nmax_positon_qty = 5\n")
    result = CliRunner().invoke(main, ["worker"], env={"RISKSTREAM_LIMITS_FILE": str(limits)})
    assert result.exit_code == 1
    assert "unknown keys ['max_positon_qty']" in result.output


def test_topics_apply_without_a_broker_says_so() -> None:
    address = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["topics", "apply", "--bootstrap-servers", address])
    assert result.exit_code == 1
    assert f"cannot use the broker at {address}" in result.output


def test_simulate_start_must_be_iso_8601(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--parquet", str(tmp_path), "--start", "yesterday"])
    assert result.exit_code == 2
    assert "--start" in result.output and "ISO-8601" in result.output


def test_simulate_with_seed_and_start_is_reproducible(tmp_path: Path) -> None:
    args = ["simulate", "--events", "3000", "--seed", "5", "--start", "2026-11-24T20:50:00Z", "--parquet"]
    for out in ("a", "b"):
        result = CliRunner().invoke(main, [*args, str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    for name in ("market_data.parquet", "trade_logs.parquet", "labels.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
