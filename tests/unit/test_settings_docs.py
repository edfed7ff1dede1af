"""Every setting is documented, and the README's table is the generated one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from riskstream.settings import REPO_ROOT, Settings
from riskstream.settings_doc import settings_table


def test_readme_settings_table_is_current() -> None:
    """Regenerate with: python -m riskstream.settings_doc --write"""
    assert settings_table() in (REPO_ROOT / "README.md").read_text()


def test_every_setting_has_a_description() -> None:
    assert "| None |" not in settings_table()


def test_nested_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("RISKSTREAM_KAFKA__SASL_PASSWORD", "hunter2")
    s = Settings()
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert s.kafka.sasl_password is not None
    assert "hunter2" not in repr(s)
    assert s.kafka.sasl_password.get_secret_value() == "hunter2"


def test_invalid_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKSTREAM_STREAM__BATCH_MAX_EVENTS", "0")
    with pytest.raises(ValidationError, match="batch_max_events"):
        Settings()
