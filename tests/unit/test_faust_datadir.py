"""Faust's data directory goes beside the worker's state file, not into the directory the worker
was started from (every run of a worker or a bench left an empty `<app_id>-data/` there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskstream.app import build_runtime
from riskstream.settings import Settings


def test_faust_data_directory_is_beside_the_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started_in = tmp_path / "cwd"
    started_in.mkdir()
    monkeypatch.chdir(started_in)
    state_dir = tmp_path / "not-yet" / "state"
    settings = Settings(stream={"state_dir": str(state_dir)})
    runtime = build_runtime(settings, {settings.topics.trade_logs: 1, settings.topics.market_data: 1})

    runtime.app._create_directories()  # what Faust runs as the worker starts

    assert list(started_in.iterdir()) == []
    assert runtime.app.conf.datadir == state_dir / f"{settings.app_id}-faust"
    assert runtime.app.conf.tabledir.is_dir()
