"""A hand-written double of an OpenAI-compatible LLM server for the pipeline benchmark: it
answers every chat completion after a fixed delay with a schema-valid assessment that echoes
the candidate's typology. It stands in for a real server's latency, not for its judgement."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

TYPOLOGY = re.compile(r'"typology":\s*"([a-z_]+)"')


class SlowLLMServerDouble:
    def __init__(self, delay_s: float, model: str = "riskstream") -> None:
        self.delay_s = delay_s
        self.model = model
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": self.model}]})

    async def _complete(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.requests += 1
        await asyncio.sleep(self.delay_s)
        prompt = " ".join(m.get("content", "") for m in body.get("messages", []))
        found = TYPOLOGY.search(prompt)
        answer = {
            "score": 0.5,
            "category": found.group(1) if found else "none",
            "severity": "medium",
            "rationale": "server double: fixed answer",
            "recommended_action": "review",
        }
        return web.json_response(
            {
                "choices": [{"message": {"content": json.dumps(answer)}, "finish_reason": "stop"}],
                "usage": {"completion_tokens": 20},
            }
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
