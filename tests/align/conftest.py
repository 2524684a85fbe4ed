"""Fixtures of the align tests: a tiny random policy, a tiny adapter and a toy scorer (see tiny_policy.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_policy import OBJECTIVES, PROMPTS


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
