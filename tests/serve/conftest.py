"""Tiny models for the server tests: a random Llama policy with MiniLM's tokenizer and a chat template, a
random adapter on the tiny BERT encoder over the objectives of two rule scorers, and the loaded engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_models import SCORERS, make_adapter

from tiny_models import make_tiny_policy


@pytest.fixture(scope="session")
def serve_policy_dir(tmp_path_factory) -> Path:
    return make_tiny_policy(tmp_path_factory.mktemp("serve_policy"), hidden=16, layers=1)


@pytest.fixture(scope="session")
def serve_adapter_dir(tmp_path_factory, tiny_encoder_dir) -> Path:
    return make_adapter(tmp_path_factory.mktemp("serve") / "adapter", tiny_encoder_dir)


@pytest.fixture(scope="session")
def serve_config(serve_policy_dir, serve_adapter_dir):
    from preforch.serve.config import ServeConfig

    return ServeConfig(adapter=str(serve_adapter_dir), scorers=SCORERS, policy=str(serve_policy_dir),
                       model_name="tiny", best_of=3, max_best_of=4, default_max_tokens=6, max_tokens=16,
                       max_batch=8, max_prompt_chars=400, access_log=True, api_key_env="PREFORCH_TEST_UNSET_KEY",
                       max_messages=16)


@pytest.fixture(scope="session")
def engine(serve_config):
    from preforch.serve.engine import ServeEngine

    return ServeEngine.load(serve_config)


@pytest.fixture(scope="session")
def client(engine):
    from fastapi.testclient import TestClient

    from preforch.serve.app import create_app

    with TestClient(create_app(engine), base_url="http://localhost") as c:
        yield c


@pytest.fixture(scope="session")
def live_server(engine):
    """The real uvicorn server on a free loopback port, in a thread; yields its base URL."""
    from serve_models import server_in_thread

    from preforch.serve.app import create_app

    with server_in_thread(create_app(engine), engine.config, start_timeout_s=30) as port:
        yield f"http://127.0.0.1:{port}"
