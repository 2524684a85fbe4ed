"""Tiny random reward models built from config, saved offline (shared by the scoring tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
#: A minimal chat template: "<|user|>P\n<|assistant|>R\n".
CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"


def copy_minilm_tokenizer(folder: Path, chat_template: str | None = None) -> None:
    from transformers import AutoTokenizer

    from preforch.models.paths import minilm_path

    for name in TOKENIZER_FILES:
        src = minilm_path() / name
        if src.is_file():
            shutil.copy(src, folder / name)
    if chat_template is not None:
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        tok.chat_template = chat_template
        tok.save_pretrained(folder)


def make_bert_classifier(folder: Path, labels: tuple[str, ...] = ("bad", "good"), chat_template: str | None = None,
                         seed: int = 0) -> Path:
    """A random 2-layer BertForSequenceClassification (hidden 32) with MiniLM's tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=len(labels),
                        initializer_range=0.3, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    BertForSequenceClassification(config).save_pretrained(folder)
    copy_minilm_tokenizer(folder, chat_template)
    return folder


def make_llama_classifier(folder: Path, seed: int = 0) -> Path:
    """A random 2-layer LlamaForSequenceClassification (hidden 32, one label) with MiniLM's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=64, max_position_embeddings=512, num_labels=1,
                         pad_token_id=0, initializer_range=0.3)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    copy_minilm_tokenizer(folder, CHAT_TEMPLATE)
    return folder
