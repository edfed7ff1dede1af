"""The quantize round trip on CPU: tiny model -> ``riskstream quantize`` (llm-compressor) ->
a W4A16 checkpoint the vLLM CPU engine loads -> valid constrained assessments."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
from click.testing import CliRunner

from riskstream.cli import main
from riskstream.core.candidates import Candidate
from riskstream.llm.assessment import output_schema
from riskstream.llm.scorer import LlmScorer, LlmScorerConfig
from riskstream.llm.vllm_engine import VllmEngineClient
from riskstream.metrics import Metrics
from riskstream.quantize import calibration_messages
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds
from tests.llm.conftest import tiny_scorer_settings

# Not imported here: importing llm-compressor patches how transformers loads checkpoints.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llmcompressor") is None,
    reason="the llm extra (llm-compressor) is not installed",
)


def test_calibration_prompts_cover_every_typology() -> None:
    chats = calibration_messages(10)
    typologies = {
        json.loads(c[1]["content"].split("<data>")[1].split("</data>")[0])["typology"] for c in chats
    }
    assert typologies == {c.value for c in Category}


def test_refuses_a_directory_that_is_not_a_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["quantize", "--model", str(tmp_path), "--out", str(tmp_path / "q")])
    assert result.exit_code != 0
    assert "no config.json" in result.output


VLLM_CPU_HAS_WNA16 = bool(torch.cpu._is_avx512_supported())
"""vLLM's CPU int4 GEMM (cpu_gemm_wna16) is built only into its AVX-512 library; the AVX2 build
on machines without AVX-512 lacks it, and the engine dies on the first forward pass."""


@pytest.fixture(scope="module", params=["awq", "gptq"])
def quantized(
    request: pytest.FixtureRequest, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("quantized") / str(request.param)
    args = ["quantize", "--model", str(tiny_model), "--out", str(out), "--scheme", str(request.param)]
    # A process of its own, as users run it: llm-compressor patches transformers' loading
    # in the process that quantizes, which would hide how a fresh process reads the output.
    done = subprocess.run(
        [sys.executable, "-m", "riskstream.cli", *args, "--samples", "8", "--max-seq-len", "256"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "W4A16 checkpoint" in done.stdout
    return out


COMPARE = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
original = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
reloaded = AutoModelForCausalLM.from_pretrained(sys.argv[2], dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(sys.argv[1])
ids = tok("spoofing on ACME: 5000 bid cancelled", return_tensors="pt").input_ids
with torch.no_grad():
    a, b = original(ids).logits.flatten(), reloaded(ids).logits.flatten()
w = reloaded.model.layers[0].self_attn.q_proj.weight  # decompressed by the first forward pass
print(json.dumps({
    "levels": w[0, :128].unique().numel(),
    "changed": not torch.equal(w, original.model.layers[0].self_attn.q_proj.weight),
    "cosine": torch.nn.functional.cosine_similarity(a, b, dim=0).item(),
}))
"""
"""In a process of its own, so nothing the test process imported (vLLM, llm-compressor) changes
how transformers reads the checkpoint."""


def test_checkpoint_is_4_bit_and_close_to_the_original(quantized: Path, tiny_model: Path) -> None:
    q = json.loads((quantized / "config.json").read_text())["quantization_config"]
    assert q["quant_method"] == "compressed-tensors"
    assert q["config_groups"]["group_0"]["weights"]["num_bits"] == 4
    assert q["ignore"] == ["lm_head"]
    done = subprocess.run(
        [sys.executable, "-c", COMPARE, str(tiny_model), str(quantized)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["levels"] <= 16
    assert got["changed"]
    assert got["cosine"] > 0.9


@pytest.mark.skipif(not VLLM_CPU_HAS_WNA16, reason="vLLM's CPU W4A16 kernel needs AVX-512; this CPU has none")
async def test_vllm_serves_the_quantized_checkpoint(quantized: Path) -> None:
    client = VllmEngineClient(tiny_scorer_settings(quantized))
    scorer = LlmScorer(client, LlmScorerConfig(120.0, 120.0, 30.0, 0, 0), Metrics())
    await scorer.start()
    try:
        candidates = [
            Candidate(
                Category.FAT_FINGER,
                AlertEntity(f"ACC-{i}", "ACME"),
                WindowBounds(1, 2),
                Evidence({"qty": 1e5}, (f"f{i}",), "size 500x usual"),
                strength=5.0,
            )
            for i in range(4)
        ]
        assessments = await scorer.score(candidates)
    finally:
        await scorer.close()
    for a in assessments:
        assert not a.degraded
        assert a.llm is not None
        jsonschema.validate(a.llm, output_schema())
