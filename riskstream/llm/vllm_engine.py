"""The embedded engine: one vLLM ``AsyncLLM`` per worker, behind :class:`LlmClient`.

Imported only when ``scorer.kind=vllm`` (vLLM takes seconds to import and is an optional
install). The engine is built from :class:`~riskstream.settings.VllmSettings`, so every knob
the reference deployment turns (quantization, tensor and pipeline parallelism, batch size,
memory share, prefix caching, attention backend) is a setting, and nothing is fetched from a
model hub at run time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from riskstream.llm.client import EngineUnavailableError, Generation
from riskstream.settings import ScorerSettings, VllmSettings

log = logging.getLogger(__name__)

STRUCTURED_OUTPUTS = {"backend": "guidance", "disable_any_whitespace": True}
"""guidance: valid JSON from every model tried, tiny random ones included (xgrammar let raw
control characters into strings). No whitespace between tokens: otherwise a weak model can spend
all of max_tokens on spaces. vLLM 0.32 honours this only on the engine, not per request."""


def engine_kwargs(v: VllmSettings) -> dict[str, Any]:
    """AsyncEngineArgs keyword arguments from settings (kept separate so a test can read them)."""
    if v.model_path is None:
        raise ValueError("scorer.vllm.model_path is required for the vllm scorer")
    if not v.model_path.is_dir():
        raise ValueError(f"scorer.vllm.model_path {v.model_path} is not a directory")
    kwargs: dict[str, Any] = {
        "model": str(v.model_path),
        "tokenizer": str(v.model_path),
        "dtype": v.dtype,
        "tensor_parallel_size": v.tensor_parallel_size,
        "pipeline_parallel_size": v.pipeline_parallel_size,
        "max_num_seqs": v.max_num_seqs,
        "max_model_len": v.max_model_len,
        "gpu_memory_utilization": v.gpu_memory_utilization,
        "enable_prefix_caching": v.enable_prefix_caching,
        "enforce_eager": v.enforce_eager,
        "structured_outputs_config": dict(STRUCTURED_OUTPUTS),
        "disable_log_stats": True,
    }
    if v.quantization != "auto":
        kwargs["quantization"] = v.quantization
    if v.attention_backend:
        kwargs["attention_backend"] = v.attention_backend
    if v.kv_cache_memory_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = v.kv_cache_memory_bytes
    return kwargs


def child_pids() -> set[int]:
    import psutil

    return {child.pid for child in psutil.Process().children(recursive=True)}


def lower_priority(niceness: int, existing: set[int]) -> list[int]:
    """Raise the niceness of this process's children but ``existing`` (those started since:
    the engine's core and worker processes) to at least ``niceness``; returns their pids.
    Lowering a priority needs no privilege; a child that is gone or refuses is skipped."""
    import psutil

    pids: list[int] = []
    for child in psutil.Process().children(recursive=True):
        if child.pid in existing:
            continue
        try:
            if child.nice() < niceness:
                child.nice(niceness)
            pids.append(child.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pids


class VllmEngineClient:
    def __init__(self, settings: ScorerSettings) -> None:
        self._s = settings
        self._engine: Any = None
        self._tokenizer: Any = None
        self.engine_pids: list[int] = []
        """The engine's processes, where their priority was lowered (``engine_nice``)."""
        path = settings.vllm.model_path
        self.model_name = path.name if path is not None else "unset"

    async def start(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        t0 = time.perf_counter()
        try:
            # Loading blocks for tens of seconds: off the event loop, so the consumer's
            # heartbeats go on and the group does not evict this worker meanwhile.
            args = AsyncEngineArgs(**engine_kwargs(self._s.vllm))
            existing = child_pids()
            self._engine = await asyncio.to_thread(AsyncLLM.from_engine_args, args)
            self._tokenizer = self._engine.get_tokenizer()
        except Exception as exc:
            raise EngineUnavailableError(f"vLLM engine did not start: {exc}") from exc
        if self._s.vllm.engine_nice:
            self.engine_pids = lower_priority(self._s.vllm.engine_nice, existing)
        log.info("vLLM engine up in %.1f s: %s", time.perf_counter() - t0, self._s.vllm.model_path)

    def prompt(self, messages: list[dict[str, str]]) -> str:
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    async def generate(
        self, request_id: str, messages: list[dict[str, str]], schema: dict[str, Any], seed: int
    ) -> Generation:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        engine = self._engine
        if engine is None or engine.errored:
            raise EngineUnavailableError("vLLM engine is not running")
        params = SamplingParams(
            max_tokens=self._s.max_tokens,
            temperature=self._s.temperature,
            seed=seed,
            structured_outputs=StructuredOutputsParams(json=schema),
        )
        t0 = time.perf_counter()
        ttft: float | None = None
        final: Any = None
        try:
            async for out in engine.generate(self.prompt(messages), params, request_id):
                if ttft is None and out.outputs and out.outputs[0].token_ids:
                    ttft = time.perf_counter() - t0
                final = out
        except asyncio.CancelledError:
            await engine.abort(request_id)
            raise
        except (EngineDeadError, EngineGenerateError) as exc:
            raise EngineUnavailableError(f"vLLM engine failed: {exc!r}") from exc
        if final is None or not final.outputs:
            raise EngineUnavailableError("vLLM engine returned no output")
        completion = final.outputs[0]
        return Generation(
            text=completion.text,
            finish_reason=completion.finish_reason,
            ttft_s=ttft,
            output_tokens=len(completion.token_ids),
        )

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.shutdown()
