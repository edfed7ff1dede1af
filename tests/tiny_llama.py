"""A tiny Llama with random weights and a locally trained tokenizer: no hub, ~5 s to build.

Shapes the CPU kernels accept: head_dim 32 (16 is refused by the CPU attention kernel) and
linear dimensions that are multiples of 128 (the W4A16 group size). Random weights
say nothing useful; what the tests check is everything around them: prompts, the constrained
grammar, deadlines, aborts, fallbacks, quantization and loading.
"""

from __future__ import annotations

import json
from pathlib import Path

from riskstream.llm.prompts import SYSTEM_PROMPT, TYPOLOGY_RULES

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _corpus() -> list[str]:
    """Text the BPE is trained on: our prompts and JSON, so tokens look like real ones."""
    lines = [SYSTEM_PROMPT, *TYPOLOGY_RULES.values()]
    for i in range(200):
        lines.append(
            json.dumps(
                {
                    "score": round((i % 21) * 0.05, 2),
                    "category": ["spoofing", "wash_trade", "fat_finger", "none"][i % 4],
                    "severity": ["low", "medium", "high", "critical"][i % 4],
                    "rationale": f"Account ACC-{i} cancelled {i % 7} large orders within {i % 5} seconds.",
                    "recommended_action": ["dismiss", "monitor", "review", "escalate", "block"][i % 5],
                }
            )
        )
    return lines


def build_tiny_llama(out: Path, *, hidden_size: int = 128, layers: int = 2) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "</s>", "<pad>", "<unk>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=layers,
        num_attention_heads=hidden_size // 32,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    return out
