"""A remote OpenAI-compatible server behind :class:`LlmClient`: ``vllm serve`` on a GPU host,
or llama.cpp's server at the edge.

The request carries the output schema as ``response_format`` (the field both servers honour;
vLLM ignores the older ``guided_json`` with only a log line, leaving the output unconstrained).
Retries with exponential backoff cover connection errors, 429 and 5xx; the scorer's deadline
bounds them all, since cancelling the awaiting task closes the connection and the server
aborts the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from riskstream.llm.client import EngineUnavailableError, Generation
from riskstream.settings import ScorerSettings

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class ServerRejectedError(RuntimeError):
    """The server answered 4xx: the request itself is wrong, retrying will not help."""


class OpenAIClient:
    def __init__(self, settings: ScorerSettings) -> None:
        self._s = settings
        self._o = settings.openai
        self.model_name = self._o.model
        self._session: aiohttp.ClientSession | None = None
        self._url = self._o.base_url.rstrip("/") + "/chat/completions"

    def _headers(self) -> dict[str, str]:
        if self._o.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self._o.api_key.get_secret_value()}"}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers=self._headers())
        try:
            async with self._session.get(
                self._o.base_url.rstrip("/") + "/models", timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                resp.raise_for_status()
                served = [m.get("id") for m in (await resp.json()).get("data", [])]
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The session stays: requests after the scorer's retry interval try the server again.
            raise EngineUnavailableError(f"LLM server {self._o.base_url} unreachable: {exc}") from exc
        if self._o.model not in served:
            raise EngineUnavailableError(
                f"LLM server {self._o.base_url} serves {served}, not {self._o.model!r}"
            )

    def body(self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int) -> dict[str, Any]:
        return {
            "model": self._o.model,
            "messages": messages,
            "max_tokens": self._s.max_tokens,
            "temperature": self._s.temperature,
            "seed": seed,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "llm_assessment", "schema": schema, "strict": True},
            },
        }

    async def generate(
        self, request_id: str, messages: list[dict[str, str]], schema: dict[str, Any], seed: int
    ) -> Generation:
        if self._session is None:
            raise EngineUnavailableError("OpenAI client is not started")
        body = self.body(messages, schema, seed)
        delay_s = self._o.backoff_ms / 1000
        attempt = 0
        while True:
            t0 = time.perf_counter()
            try:
                async with self._session.post(
                    self._url, json=body, headers={"X-Request-Id": request_id}
                ) as resp:
                    if resp.status < 400:
                        payload = await resp.json()
                        return self._generation(payload, time.perf_counter() - t0)
                    text = (await resp.text())[:300]
                    if resp.status not in RETRYABLE_STATUS:
                        raise ServerRejectedError(f"LLM server answered {resp.status}: {text}")
                    failure: Exception = EngineUnavailableError(f"LLM server answered {resp.status}: {text}")
            except aiohttp.ClientError as exc:
                failure = EngineUnavailableError(f"LLM server unreachable: {exc}")
            if attempt >= self._o.max_retries:
                raise failure
            attempt += 1
            log.debug("retrying %s in %.3f s after: %s", request_id, delay_s, failure)
            await asyncio.sleep(delay_s)
            delay_s *= 2

    @staticmethod
    def _generation(payload: dict[str, Any], elapsed_s: float) -> Generation:
        choice = payload["choices"][0]
        usage = payload.get("usage") or {}
        return Generation(
            text=choice["message"]["content"] or "",
            finish_reason=choice.get("finish_reason"),
            ttft_s=None,
            output_tokens=int(usage.get("completion_tokens", 0)),
        )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
