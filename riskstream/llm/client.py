"""The narrow interface between the LLM scorer and whatever runs the model.

An :class:`LlmClient` turns one chat request into text under the output schema. The embedded
vLLM engine and an OpenAI-compatible HTTP server both fit it, so deadlines, batching, retrieval
and fallback live once, in :class:`riskstream.llm.scorer.LlmScorer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class EngineUnavailableError(RuntimeError):
    """The engine or server cannot take requests (dead, unreachable, shutting down)."""


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    """The generated text (JSON under the output schema unless cut off)."""
    finish_reason: str | None
    """``stop`` when the grammar completed; ``length`` when max_tokens cut it off."""
    ttft_s: float | None
    """Time to first token, where the client can see it."""
    output_tokens: int
    """Tokens generated (counted by the engine, or reported by the server)."""


class LlmClient(Protocol):
    model_name: str
    """What the alert's audit trail names as the scoring model."""

    async def start(self) -> None:
        """Load the engine or check the server; raises :class:`EngineUnavailableError` if it cannot."""

    async def generate(
        self, request_id: str, messages: list[dict[str, str]], schema: dict[str, Any], seed: int
    ) -> Generation:
        """One constrained chat completion. Cancelling the awaiting task must stop the work in
        the engine (abort), so a request past its deadline frees its slot."""

    async def close(self) -> None:
        """Stop the engine or the HTTP session; nothing of it may outlive the worker."""
