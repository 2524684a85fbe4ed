"""Shared fixtures: tiny models built offline from config, so tests never touch the network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def make_tiny_bert(folder: Path, hidden: int = 32, seed: int = 0) -> Path:
    """A random 2-layer BertModel with MiniLM's tokenizer, saved as safetensors."""
    import torch
    from transformers import BertConfig, BertModel

    from preforch.models.paths import minilm_path

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    for name in TOKENIZER_FILES:
        src = minilm_path() / name
        if src.is_file():
            shutil.copy(src, folder / name)
    return folder


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_encoder"))
