"""Tiny random policy (LlamaForCausalLM from config + MiniLM's tokenizer with a chat template), a tiny adapter on
the tiny BERT encoder, and a rule/callable scorer, all built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

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


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory) -> Path:
    return make_tiny_policy(tmp_path_factory.mktemp("tiny_policy"))


@pytest.fixture
def tiny_policy(tiny_policy_dir):
    from preforch.models.generation import load_policy

    return load_policy(str(tiny_policy_dir))


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_encoder_dir, tmp_path_factory) -> Path:
    """An adapter over OBJECTIVES trained a few epochs on synthetic scores; its normaliser fits toy_scores."""
    from preforch.adapter import AdapterConfig, train_adapter
    from preforch.types import PreferenceData

    rng = np.random.default_rng(0)
    prompts = [f"{p} {i}" for i in range(6) for p in PROMPTS]
    scores = np.column_stack([rng.uniform(0, 12, len(prompts)), rng.uniform(0.2, 0.5, len(prompts))])
    data = PreferenceData(prompts=prompts, chosen=["x"] * len(prompts), objectives=OBJECTIVES, scores_chosen=scores)
    config = AdapterConfig(encoder_path=str(tiny_encoder_dir), hidden=8, epochs=3, cache_embeddings=False)
    result = train_adapter(config, data, progress=False)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    result.adapter.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def prompts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return path
