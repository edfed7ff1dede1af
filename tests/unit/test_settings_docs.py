"""Every setting is documented, and the README's table lists every one of them."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from riskstream.settings import REPO_ROOT, Settings


def env_names(model: type[BaseModel], prefix: str = "RISKSTREAM_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names += env_names(ann, f"{prefix}{name.upper()}__")
        else:
            assert field.description, f"{prefix}{name.upper()} has no description"
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [n for n in env_names(Settings) if f"`{n}`" not in readme]
    assert missing == []


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
