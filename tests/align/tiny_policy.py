"""Tiny random policy (LlamaForCausalLM from config + MiniLM's tokenizer with a chat template), a tiny adapter on
the tiny BERT encoder, and a rule/callable scorer, all built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from preforch.rewards.callable import CallableScorer

OBJECTIVES = ["length", "vowels"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")
PROMPTS = ["how do I sort a list in python", "tell me a funny joke about cats", "how can I stay safe online",
           "write a short poem about rain", "what is the capital of france", "explain gravity to a child",
           "give me a recipe for soup", "why is the sky blue"]


def make_tiny_policy(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from preforch.models.paths import minilm_path

    folder.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    tok.chat_template = CHAT_TEMPLATE
    tok.eos_token, tok.bos_token = "[SEP]", "[CLS]"
    tok.save_pretrained(folder)
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    cfg["model_input_names"] = ["input_ids", "attention_mask"]  # a causal LM takes no token_type_ids
    path.write_text(json.dumps(cfg))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                         eos_token_id=tok.sep_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def toy_scores(prompts, responses):
    """[N, 2]: number of words (more is better) and share of vowels; depends on the response only."""
    out = []
    for r in responses:
        letters = [c for c in r.lower() if c.isalpha()]
        out.append([len(r.split()), sum(c in "aeiou" for c in letters) / max(1, len(letters))])
    return np.array(out, dtype=np.float64)


def toy_scorer() -> CallableScorer:
    return CallableScorer(toy_scores, OBJECTIVES, "tests.align.toy:v1")
