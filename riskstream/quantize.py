"""``riskstream quantize``: a 4-bit (W4A16) checkpoint that vLLM serves, with llm-compressor.

AutoAWQ is archived and does not install beside current vLLM; llm-compressor is its maintained
successor and writes compressed-tensors checkpoints that vLLM loads on GPU (Marlin kernels) and
on CPU (its WNA16 kernel). Calibration uses prompts shaped like the ones the scorer sends: the
same system prompt, evidence of every typology, so the activation statistics AWQ and GPTQ fit
to are those the model will see in production. A file of one text per line can replace them.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from riskstream.core.candidates import Candidate
from riskstream.llm.prompts import PriorAlert, build_messages
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds

log = logging.getLogger(__name__)

Scheme = Literal["awq", "gptq"]
SCHEMES: tuple[Scheme, ...] = ("awq", "gptq")


@dataclass(frozen=True, slots=True)
class QuantizeResult:
    out_dir: Path
    scheme: Scheme
    samples: int
    seconds: float


def calibration_messages(samples: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """Scorer-shaped chats over every typology, with varied evidence and prior alerts."""
    rng = random.Random(seed)
    categories = list(Category)
    chats: list[list[dict[str, str]]] = []
    for i in range(samples):
        category = categories[i % len(categories)]
        t0 = 1_764_000_000_000_000_000 + rng.randrange(10**15)
        orders = tuple(f"ORD-{rng.randrange(10**6):06d}" for _ in range(rng.randint(1, 6)))
        features = {
            "order_qty": float(rng.choice([100, 500, 2000, 50_000])),
            "touch_size": float(rng.randint(100, 5000)),
            "cancel_ratio": round(rng.random(), 3),
            "price_offset_pct": round(rng.uniform(-8, 8), 3),
        }
        candidate = Candidate(
            category,
            AlertEntity(f"ACC-{rng.randrange(1000):04d}", rng.choice(["AAPL", "MSFT", "ACME", "XYZ"])),
            WindowBounds(t0, t0 + rng.randrange(1, 10) * 10**9),
            Evidence(features, orders, f"{category.value.replace('_', ' ')} pattern on {len(orders)} orders"),
            strength=round(1 + rng.random() * 4, 3),
        )
        prior = [
            PriorAlert(f"{rng.getrandbits(128):032x}", category.value, "medium", 0.6, t0 - 10**12, "earlier")
            for _ in range(rng.randint(0, 2))
        ]
        chats.append(build_messages(candidate, prior))
    return chats


@contextlib.contextmanager
def _no_pinned_memory_without_accelerator() -> Iterator[None]:
    """llm-compressor pins cached activations for faster host-to-device copies; without an
    accelerator pinning raises ("Cannot access accelerator device"). There is no copy to speed
    up then, so it is skipped, for the duration of the call only."""
    import torch
    from llmcompressor.pipelines.cache import IntermediatesCache

    if torch.accelerator.is_available():
        yield
        return
    original = IntermediatesCache.pin_memory
    IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        IntermediatesCache.pin_memory = original


def _recipe(scheme: Scheme) -> list[Any]:
    """AWQ: activation-aware scaling, then round-to-nearest 4-bit (asymmetric, as AutoAWQ).
    GPTQ: second-order error compensation per layer, symmetric 4-bit."""
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier

    if scheme == "awq":
        return [
            AWQModifier(duo_scaling="both"),
            QuantizationModifier(scheme="W4A16_ASYM", targets=["Linear"], ignore=["lm_head"]),
        ]
    return [GPTQModifier(scheme="W4A16", targets=["Linear"], ignore=["lm_head"])]


def quantize(
    model_dir: Path,
    out_dir: Path,
    scheme: Scheme = "awq",
    samples: int = 64,
    max_seq_len: int = 1024,
    calibration_file: Path | None = None,
) -> QuantizeResult:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} is not a model directory (no config.json)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} exists and is not empty")
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    if calibration_file is not None:
        texts = [ln for ln in calibration_file.read_text().splitlines() if ln.strip()][:samples]
    else:
        texts = [
            str(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))
            for chat in calibration_messages(samples)
        ]
    if not texts:
        raise ValueError("no calibration text")
    encoded = tokenizer(texts, truncation=True, max_length=max_seq_len, add_special_tokens=False)
    dataset = Dataset.from_dict(
        {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    )
    with _no_pinned_memory_without_accelerator():
        oneshot(
            model=model,
            dataset=dataset,
            recipe=_recipe(scheme),
            max_seq_length=max_seq_len,
            num_calibration_samples=len(texts),
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, save_compressed=True)
    tokenizer.save_pretrained(out_dir)
    seconds = time.perf_counter() - t0
    log.info("quantized %s -> %s (%s, %d samples) in %.1f s", model_dir, out_dir, scheme, len(texts), seconds)
    return QuantizeResult(out_dir, scheme, len(texts), seconds)
