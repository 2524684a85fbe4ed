"""Shared fixtures: tiny models built offline from config, so tests never touch the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiny_models import make_tiny_bert, make_tiny_policy

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
