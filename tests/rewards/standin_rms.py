"""Tiny stand-ins for the reward-model families, built offline: custom-code models that score what they are fed
by a fixed rule, so a test can tell a correctly fed model from a wrongly fed one.

Each stand-in reads only the reply as its family marks it, and scores it (count of GOOD words) − (count of BAD
words): ``chat`` (Skywork-Reward-like) reads the tokens after the last ``<|assistant|>`` of the chat template,
``hh`` (Ray2333-like) those after the last ``Assistant:``, ``pair`` (OpenAssistant DeBERTa-like) the second segment
of a text pair (token_type_ids 1). An input without its family's marker scores 0, as a confused model would give
no ordering. ``armo`` (ArmoRM-like) reads like ``chat`` but returns ``score`` [B, 1] and ``rewards`` [B, 3]
(helpful = good words, harmless = −bad words, length) instead of ``logits``, and its architecture is not a
*ForSequenceClassification (it is reached through ``auto_map``, so it needs trust_remote_code).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from tiny_rm import CHAT_TEMPLATE, copy_minilm_tokenizer

GOOD = ("glad", "great")
BAD = ("hate", "stupid")
#: A prompt that holds a BAD word, and a reply of each kind: a model that reads the prompt as reply is fooled.
PROMPT = "I hate mondays, any tips?"
GOOD_REPLY = "glad to help, here are great tips"
BAD_REPLY = "stupid question, I hate it"

MODELING = '''
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ModelOutput, SequenceClassifierOutput
from dataclasses import dataclass


class StandinConfig(PretrainedConfig):
    model_type = "preforch_standin_rm"

    def __init__(self, mode="chat", good_ids=(), bad_ids=(), marker_ids=(), armo=False, **kwargs):
        self.mode, self.good_ids, self.bad_ids = mode, list(good_ids), list(bad_ids)
        self.marker_ids, self.armo = list(marker_ids), armo
        super().__init__(**kwargs)


@dataclass
class ArmoOutput(ModelOutput):
    score: torch.FloatTensor = None
    rewards: torch.FloatTensor = None


class StandinRewardModel(PreTrainedModel):
    config_class = StandinConfig

    def __init__(self, config):
        super().__init__(config)
        self.unused = torch.nn.Linear(1, 1)  # a model needs a parameter to save and load
        self.post_init()

    def _reply(self, ids, types):
        if self.config.mode == "pair":
            return [t for t, k in zip(ids, types) if k == 1]
        m = self.config.marker_ids
        starts = [i for i in range(len(ids) - len(m) + 1) if ids[i:i + len(m)] == m]
        return ids[starts[-1] + len(m):] if starts else None

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        rows = []
        for b in range(input_ids.shape[0]):
            keep = attention_mask[b].bool() if attention_mask is not None else slice(None)
            ids = input_ids[b][keep].tolist()
            types = token_type_ids[b][keep].tolist() if token_type_ids is not None else [0] * len(ids)
            reply = self._reply(ids, types)
            if not reply:
                rows.append([0.0, 0.0, 0.0])
                continue
            good = sum(t in self.config.good_ids for t in reply)
            bad = sum(t in self.config.bad_ids for t in reply)
            rows.append([float(good), -float(bad), float(len(reply))])
        values = torch.tensor(rows, dtype=torch.float32)  # [B, 3]
        score = (values[:, 0] + values[:, 1]).unsqueeze(-1)  # [B, 1]
        if self.config.armo:
            return ArmoOutput(score=score, rewards=values)
        return SequenceClassifierOutput(logits=score)
'''

MARKERS = {"chat": "<|assistant|>", "armo": "<|assistant|>", "hh": "Assistant:", "pair": ""}


def make_standin(folder: Path, family: str) -> Path:
    """A stand-in of ``family`` (chat, hh, pair, armo) saved to ``folder`` with MiniLM's tokenizer."""
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    copy_minilm_tokenizer(folder, CHAT_TEMPLATE)
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)

    def ids(words):
        return [tok.convert_tokens_to_ids(w) for w in words]

    (folder / "modeling_standin.py").write_text(MODELING)
    spec = importlib.util.spec_from_file_location(f"standin_{family}_{id(folder)}", folder / "modeling_standin.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    config = module.StandinConfig(mode="pair" if family == "pair" else "marker", good_ids=ids(GOOD), bad_ids=ids(BAD),
                                  marker_ids=tok.encode(MARKERS[family], add_special_tokens=False),
                                  armo=family == "armo", num_labels=1)
    module.StandinRewardModel(config).save_pretrained(folder)
    data = json.loads((folder / "config.json").read_text())
    arch = "StandinRewardModelWithGating" if family == "armo" else "StandinForSequenceClassification"
    data.update(architectures=[arch], auto_map={"AutoConfig": "modeling_standin.StandinConfig",
                                                "AutoModelForSequenceClassification":
                                                    "modeling_standin.StandinRewardModel"})
    (folder / "config.json").write_text(json.dumps(data))
    return folder


def keyword_scores(prompts: list[str], responses: list[str]) -> list[float]:
    """A `{type: python}` scorer: GOOD words minus BAD words of each reply. Shape: [N]."""
    return [float(sum(w in GOOD for w in r.lower().replace(",", " ").split())
                  - sum(w in BAD for w in r.lower().replace(",", " ").split())) for r in responses]
