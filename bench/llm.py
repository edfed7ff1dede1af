"""LLM tier benchmark in the spirit of LLMPerf: risk-shaped prompts at several concurrency levels.

For one model directory it measures, per concurrency level, with the vLLM engine driven
directly (the baseline) and through riskstream's ``LlmScorer`` (prompt building, deadline
bookkeeping, parsing and validation, metrics) on the same engine:

* TTFT p50/p99, inter-token latency p50, output tokens/s, requests/s, valid-JSON share;
* riskstream's requests/s as a ratio of the direct engine's: our overhead;
* energy per request from NVML when a GPU is present (total board energy over the run divided
  by requests; nothing is printed on CPU).

    python -m bench.llm --model DIR [--concurrency 1,4,16] [--requests 32] [--max-tokens 320]

Without ``--model`` it builds the tiny random Llama of the tests (CPU smoke run: the numbers
then describe the machinery, not a model worth deploying).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskstream.core.candidates import Candidate
from riskstream.llm.assessment import InvalidAssessmentError, output_schema, parse_assessment
from riskstream.llm.prompts import build_messages
from riskstream.llm.scorer import LlmScorer, LlmScorerConfig
from riskstream.llm.vllm_engine import VllmEngineClient
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds
from riskstream.settings import ScorerSettings, VllmSettings


@dataclass
class Run:
    mode: str
    concurrency: int
    wall_s: float = 0.0
    ttft_s: list[float] = field(default_factory=list)
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    requests: int = 0
    valid: int = 0
    joules: float | None = None
    peak_inflight: int | None = None
    """Most requests in the engine at once (sampled): the batch size continuous batching reached."""

    def row(self) -> dict[str, Any]:
        def pct(xs: list[float], q: float) -> float | None:
            if not xs:
                return None
            s = sorted(xs)
            return s[min(len(s) - 1, int(q * len(s)))] * 1000

        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "ttft_p50_ms": pct(self.ttft_s, 0.5),
            "ttft_p99_ms": pct(self.ttft_s, 0.99),
            "itl_p50_ms": pct(self.itl_s, 0.5),
            "output_tok_s": self.output_tokens / self.wall_s,
            "req_s": self.requests / self.wall_s,
            "valid_json": self.valid / self.requests if self.requests else 0.0,
            "joules_per_req": None if self.joules is None else self.joules / self.requests,
            "peak_batch": self.peak_inflight,
        }


class Energy:
    """Board energy counter from NVML (Volta and newer), when a GPU and pynvml are there."""

    def __init__(self) -> None:
        self._handle: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            self._handle = None

    def millijoules(self) -> float | None:
        if self._handle is None:
            return None
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))


def candidates(n: int) -> list[Candidate]:
    cats = list(Category)
    return [
        Candidate(
            cats[i % len(cats)],
            AlertEntity(f"ACC-{i:04d}", "ACME"),
            WindowBounds(1_764_000_000_000_000_000, 1_764_000_003_000_000_000),
            Evidence(
                {"order_qty": 2000.0 + i, "touch_size": 400.0, "cancel_ratio": 0.9},
                (f"ORD-{i}a", f"ORD-{i}b"),
                "large bids cancelled within 2 s while selling",
            ),
            strength=1.5 + (i % 5) / 2,
        )
        for i in range(n)
    ]


async def direct(client: VllmEngineClient, n: int, concurrency: int, energy: Energy) -> Run:
    """The engine alone: the same prompts riskstream builds, the same sampling, streamed token by
    token (what ``vllm bench serve`` measures, without the HTTP layer)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    engine = client._engine
    prompts = [client.prompt(build_messages(c)) for c in candidates(n)]
    schema = output_schema()
    run = Run("engine", concurrency)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        params = SamplingParams(
            max_tokens=client._s.max_tokens,
            temperature=0.0,
            seed=i,
            structured_outputs=StructuredOutputsParams(json=schema),
            output_kind=RequestOutputKind.DELTA,
        )
        async with sem:
            t0 = time.perf_counter()
            last: float | None = None
            text = ""
            async for out in engine.generate(prompts[i], params, f"bench-{concurrency}-{i}"):
                now = time.perf_counter()
                delta = out.outputs[0]
                if not delta.token_ids:
                    continue
                if last is None:
                    run.ttft_s.append(now - t0)
                else:
                    run.itl_s.append((now - last) / len(delta.token_ids))
                last = now
                text += delta.text
                run.output_tokens += len(delta.token_ids)
            run.requests += 1
            try:
                parse_assessment(text)
                run.valid += 1
            except InvalidAssessmentError:
                pass

    e0 = energy.millijoules()
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    run.wall_s = time.perf_counter() - t0
    e1 = energy.millijoules()
    if e0 is not None and e1 is not None:
        run.joules = (e1 - e0) / 1000
    return run


async def through_scorer(client: VllmEngineClient, n: int, concurrency: int, energy: Energy) -> Run:
    """riskstream's path: micro-batches of ``concurrency`` candidates through LlmScorer."""
    metrics = Metrics()
    scorer = LlmScorer(client, LlmScorerConfig(600.0, 600.0, 30.0, 0, 0), metrics)
    batch = candidates(n)
    run = Run("riskstream", concurrency)
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, int(metrics.registry.get_sample_value("riskstream_llm_inflight_requests") or 0))
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    e0 = energy.millijoules()
    t0 = time.perf_counter()
    for start in range(0, n, concurrency):
        out = await scorer.score(batch[start : start + concurrency])
        run.valid += sum(1 for a in out if a.llm is not None)
        run.requests += len(out)
    run.wall_s = time.perf_counter() - t0
    sampler.cancel()
    run.peak_inflight = peak
    e1 = energy.millijoules()
    if e0 is not None and e1 is not None:
        run.joules = (e1 - e0) / 1000
    reg = metrics.registry
    run.output_tokens = int(reg.get_sample_value("riskstream_llm_output_tokens_total") or 0)
    ttft_sum = reg.get_sample_value("riskstream_llm_ttft_seconds_sum") or 0.0
    ttft_n = reg.get_sample_value("riskstream_llm_ttft_seconds_count") or 0.0
    if ttft_n:
        run.ttft_s = [ttft_sum / ttft_n]
    return run


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3f}" if v < 10 else f"{v:,.1f}"
    return str(v)


async def main_async(args: argparse.Namespace) -> None:
    model = args.model
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if model is None:
        from tests.tiny_llama import build_tiny_llama

        tmp = tempfile.TemporaryDirectory()
        model = build_tiny_llama(Path(tmp.name) / "tiny")
        print(f"no --model: built the tests' tiny random Llama at {model}")
    vllm_settings: dict[str, Any] = {
        "model_path": model,
        "max_model_len": args.max_model_len,
        "max_num_seqs": max(args.concurrency),
        "enforce_eager": args.enforce_eager,
    }
    if args.kv_cache_bytes:
        vllm_settings["kv_cache_memory_bytes"] = args.kv_cache_bytes
    if args.quantization:
        vllm_settings["quantization"] = args.quantization
    client = VllmEngineClient(
        ScorerSettings(kind="vllm", max_tokens=args.max_tokens, vllm=VllmSettings(**vllm_settings))
    )
    t0 = time.perf_counter()
    await client.start()
    print(f"engine start: {time.perf_counter() - t0:.1f} s")
    energy = Energy()
    rows: list[dict[str, Any]] = []
    try:
        await direct(client, min(4, args.requests), 2, energy)
        for c in args.concurrency:
            eng = await direct(client, args.requests, c, energy)
            ours = await through_scorer(client, args.requests, c, energy)
            e, o = eng.row(), ours.row()
            o["vs_engine"] = o["req_s"] / e["req_s"]
            rows += [e, o]
    finally:
        await client.close()
        if tmp is not None:
            tmp.cleanup()
    cols = ["mode", "concurrency", "requests", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms",
            "output_tok_s", "req_s", "valid_json", "joules_per_req", "peak_batch", "vs_engine"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(rows, indent=2))
    print("riskstream rows: TTFT is the run's mean (from its histogram); ITL is not seen per token.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model", type=Path, default=None, help="Local model directory (default: tiny test model)."
    )
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    p.add_argument("--requests", type=int, default=32, help="Requests per concurrency level and mode.")
    p.add_argument("--max-tokens", type=int, default=ScorerSettings().max_tokens)
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--quantization", default=None, help="awq, gptq, fp8 (default: the checkpoint's).")
    p.add_argument("--kv-cache-bytes", type=int, default=None, help="Fixed KV cache (CPU runs).")
    p.add_argument("--enforce-eager", action="store_true", help="No CUDA graphs (faster start).")
    p.add_argument("--json", default=None, help="Also write the rows to this file.")
    args = p.parse_args()
    if args.model is None and args.kv_cache_bytes is None:
        args.kv_cache_bytes = 64 << 20
        args.enforce_eager = True
        args.max_model_len = 1024
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
