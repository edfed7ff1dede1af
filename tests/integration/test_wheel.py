"""The built wheel, installed into a fresh virtual environment away from the source tree, runs a
worker that alerts: everything the code reads at run time (message schemas, topic specs, the
migrations) ships inside the package."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from riskstream.broker import EmbeddedBroker
from riskstream.settings import REPO_ROOT
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_outages import alerted, fat_finger_after_history

pytestmark = pytest.mark.integration


def run(*cmd: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", d / "dist", REPO_ROOT, cwd=d)
    (wheel,) = (d / "dist").glob("riskstream-*.whl")
    run(sys.executable, "-m", "venv", d / "venv", cwd=d)
    run(d / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=d)
    return d / "venv"


def test_the_wheel_carries_what_the_code_reads(wheel_venv: Path, tmp_path: Path) -> None:
    out = run(
        wheel_venv / "bin" / "python",
        "-c",
        "import riskstream, riskstream.llm.assessment as a, riskstream.settings as s;"
        "print(riskstream.__file__); print(a.SCHEMA_PATH.is_file());"
        "print(sorted(p.name for p in s.Settings().topics.specs_dir.glob('*.toml')))",
        cwd=tmp_path,
    )
    location, schema_found, specs = out.splitlines()
    assert location.startswith(str(wheel_venv)), location
    assert schema_found == "True"
    assert specs == str(
        ["dead_letter.toml", "linked_fills.toml", "market_data.toml", "risk_alerts.toml", "trade_logs.toml"]
    )


async def test_a_worker_from_the_wheel_alerts(
    wheel_venv: Path, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    env.pop("RISKSTREAM_LIMITS_FILE")
    env["PATH"] = f"{wheel_venv / 'bin'}{os.pathsep}{env['PATH']}"
    env.pop("PYTHONPATH", None)
    worker = WorkerProcess(
        env, tmp_path / "worker.log", command=[str(wheel_venv / "bin" / "riskstream"), "worker"]
    )
    worker.start(cwd=tmp_path)
    try:
        await asyncio.to_thread(worker.wait_ready)
        oid = await fat_finger_after_history(broker.bootstrap_servers, "ACC-WHEEL")
        assert await alerted(broker.bootstrap_servers, oid, 60)
    finally:
        worker.stop()
