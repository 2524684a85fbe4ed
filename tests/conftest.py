"""Shared fixtures: tiny models built offline from config, so tests never touch the network (a tiny random
policy, adapter and toy scorer: see tiny_models.py and tiny_policy.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tiny_models import make_tiny_bert, make_tiny_policy
from tiny_policy import OBJECTIVES, PROMPTS

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Some machines name a CA bundle that is not on disk; httpx (the test clients, openai) then fails to build
# even a plain-http client. Tests talk to loopback only, so such names are dropped, not worked around.
for _var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    if os.environ.get(_var) and not os.path.exists(os.environ[_var]):
        del os.environ[_var]
if os.environ.get("SSL_CERT_DIR") and not os.path.isdir(os.environ["SSL_CERT_DIR"]):
    del os.environ["SSL_CERT_DIR"]


def pytest_configure(config):
    # Tests run tiny models, where thread start-up and spinning cost more than they save; on a shared
    # 2-core machine two spinning threads made a tiny adapter fit 30x slower (12 s vs 0.35 s).
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_encoder"))


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
