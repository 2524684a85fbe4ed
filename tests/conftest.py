"""Shared fixtures: tiny models built offline from config, so tests never touch the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiny_models import make_tiny_bert, make_tiny_policy

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
