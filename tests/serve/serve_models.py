"""Builders shared by the server tests (imported as ``serve_models``; conftest modules are not importable by
name when several test folders have one)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

#: The rule scorers the engine loads from specs; the adapter weighs the same objectives.
SCORERS = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "sentiment", "objective": "positive"}]
OBJECTIVES = ["concise", "positive"]


def make_adapter(folder: Path, encoder_dir: Path, dim: int = 32, **settings) -> Path:
    """A random (untrained) adapter; its normaliser is fitted on made-up raw scores. ``settings``: more
    AdapterConfig fields (e.g. encoder causal_lm, prompt_view)."""
    import torch

    from preforch.adapter import AdapterConfig, PreferenceAdapter
    from preforch.rewards.normalize import Normalizer

    torch.manual_seed(0)
    config = AdapterConfig(encoder_path=str(encoder_dir), hidden=16, dropout=0.0, cache_embeddings=False, **settings)
    rng = np.random.default_rng(0)
    raw = np.stack([-np.log1p(rng.integers(1, 40, 200)), rng.uniform(-1, 1, 200)], axis=1)  # [200, 2]
    adapter = PreferenceAdapter(config, OBJECTIVES, Normalizer(OBJECTIVES).fit(raw), dim=dim)
    with torch.no_grad():  # spread the logits so prompts get visibly different weights
        adapter.mlp.net[-1].weight.mul_(20.0)
    adapter.save_pretrained(folder)
    return folder


@contextlib.contextmanager
def server_in_thread(app, config, start_timeout_s: float):
    """The real uvicorn server for ``app`` on a free loopback port, in a thread, until the block ends; yields the
    port. ``install_logging=False``: uvicorn's records reach the root logger, so tests can read them."""
    import threading
    import time

    import uvicorn

    from preforch.serve.server import free_port, uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, config, port=port, install_logging=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
