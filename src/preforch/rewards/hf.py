"""A Hugging Face ``AutoModelForSequenceClassification`` reward model as a scorer.

Real reward models differ in how they want their input and which output is the reward, so those are
settings: the input template per family (``chat``: the tokenizer's chat template, as Skywork-Reward and most
current reward models; ``hh``: Anthropic HH markup, as Ray2333's GPT-2 models; ``pair``: a (question, answer)
text pair, as OpenAssistant's DeBERTa models; ``plain`` / ``reversed``), which output holds the reward (``logits``,
or a named output of a custom-code model such as ArmoRM's ``score`` and ``rewards``) and which column of it (by
index or label name), max length and truncation side, dtype and device. Nothing is downloaded when ``HF_HUB_OFFLINE=1``; a hub name is only resolved when
the user is online and the name is not a local folder.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from preforch.artifacts import folder_fingerprint, read_object
from preforch.config import field
from preforch.conversation import Conversation, as_conversation, as_conversations
from preforch.errors import PreforchError
from preforch.models.batching import length_sorted_batches
from preforch.models.paths import (
    DEFAULT_DEVICE,
    DEVICE_CHOICES,
    check_device,
    model_load_error,
    resolve_device,
)
from preforch.types import TorchDType

logger = logging.getLogger(__name__)

Template = Literal["chat", "plain", "hh", "pair", "reversed"]
TruncationSide = Literal["left", "right"]


@dataclass
class HFScorerConfig:
    """Settings of one Hugging Face sequence-classification reward model."""

    path: str = field("", help="local model folder, or a hub name (resolved only when online, i.e. "
                               "HF_HUB_OFFLINE is not 1)")
    objective: str = field("reward", help="objective name of this model's score column")
    output: str = field("logits", help="which output of the model holds the reward: logits (sequence classifiers), "
                                       "or a named output of a custom-code model (ArmoRM: score, or rewards with "
                                       "logit_index picking one of its 19 objectives)")
    logit_index: int | None = field(None, help="which column of the output is the reward (default 0 unless `label` "
                                               "is set)")
    label: str | None = field(None, help="the label name (config.label2id) whose logit is the reward")
    template: Template = field("chat", help="input text: chat = tokenizer chat template over the conversation "
                                            "and the reply; plain = the conversation's text + separator + "
                                            "response; hh = Anthropic HH markup ('\\n\\nHuman: ...\\n\\n"
                                            "Assistant: reply', what HH-trained reward models such as Ray2333's "
                                            "read); pair = the conversation's text and the reply as a tokenizer "
                                            "text pair (question, answer: OpenAssistant's DeBERTa models); reversed = response, BOS token, prompt (some summary RMs)")
    separator: str = field("\n\n", help="text between prompt and response for the plain template")
    max_length: int = field(512, help="longest input in tokens; longer inputs are truncated and counted")
    truncation_side: TruncationSide = field("left", help="which end to cut from a too-long input (left keeps "
                                                         "the end of the response for chat/plain)")
    dtype: TorchDType = field("float32", help="weights dtype")
    device: str = field(DEFAULT_DEVICE, help=f"torch device: {DEVICE_CHOICES}")
    batch_size: int = field(16, help="texts per forward pass (batches are length-sorted)")
    trust_remote_code: bool = field(False, help="allow model code from the model folder (off by default; only this "
                                                "setting in your own config allows it, never a saved artifact)")

    def __post_init__(self) -> None:
        if not self.path:
            raise PreforchError("hf scorer: setting 'path' is required (a local model folder)")
        if self.logit_index is not None and self.label is not None:
            raise PreforchError(f"hf scorer {self.path}: give logit_index or label, not both")
        if self.logit_index is not None and self.logit_index < 0:
            raise PreforchError(f"hf scorer {self.path}: logit_index must be >= 0, got {self.logit_index}")
        if self.max_length < 8:
            raise PreforchError(f"hf scorer {self.path}: max_length must be >= 8, got {self.max_length}")
        if self.batch_size < 1:
            raise PreforchError(f"hf scorer {self.path}: batch_size must be >= 1, got {self.batch_size}")
        if not self.objective:
            raise PreforchError(f"hf scorer {self.path}: objective name is empty")
        if not self.output.isidentifier():
            raise PreforchError(f"hf scorer {self.path}: output must be an output name such as logits or score, "
                                f"got {self.output!r}")
        check_device(self.device, f"hf scorer {self.path}: device")


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set to a true value."""
    return any(os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _check_classifier(config, where: str) -> None:
    archs = list(getattr(config, "architectures", None) or [])
    custom = "AutoModelForSequenceClassification" in (getattr(config, "auto_map", None) or {})  # e.g. ArmoRM
    if not custom and not any(a.endswith("ForSequenceClassification") for a in archs):
        what = f"architectures {archs}" if archs else "no architectures in config.json"
        raise PreforchError(f"{where}: not a sequence classifier ({what}; expected a *ForSequenceClassification "
                            "model, e.g. one saved from AutoModelForSequenceClassification)")


class HFScorer:
    """Scores (prompt, response) pairs with one reward model's chosen logit. Shape of ``score``: [N, 1].

    ``truncated`` / ``seen`` count the inputs cut to ``max_length`` / all inputs scored so far.
    """

    def __init__(self, config: HFScorerConfig) -> None:

        self.config = config
        local = Path(config.path).expanduser()
        if local.exists():
            if not local.is_dir() or not (local / "config.json").is_file():
                raise PreforchError(f"{config.path}: not a model folder (no config.json)")
            read_object(local / "config.json", "model config")  # our own one-line errors, before transformers
            source, local_only = str(local), True
        elif hub_offline() or config.path.startswith((".", "/", "~")) or config.path.count("/") > 1:
            raise PreforchError(f"{config.path}: reward model path does not exist (hub names are only resolved "
                                "online; HF_HUB_OFFLINE=1 is set)" if hub_offline()
                                else f"{config.path}: reward model path does not exist")
        else:
            source, local_only = config.path, False
        kwargs = {"local_files_only": local_only, "trust_remote_code": config.trust_remote_code}
        try:
            model_config = AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # a malformed config.json
            raise model_load_error(err, config.path, "reward model folder") from None
        _check_classifier(model_config, config.path)
        self.reward_index = self._reward_index(model_config)
        dtype = getattr(torch, config.dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                source, dtype=dtype, use_safetensors=True, **kwargs)
        except (OSError, ValueError, KeyError, SafetensorError) as err:
            raise model_load_error(err, config.path, "reward model folder (as a sequence classifier)") from None
        if len(self.tokenizer) <= len(set(self.tokenizer.all_special_tokens)):  # transformers builds an empty one
            raise PreforchError(f"{config.path}: the tokenizer has no vocabulary (no tokenizer files in the folder?)")
        self.device = torch.device(resolve_device(config.device, f"hf scorer {config.path}: device"))
        self.model = self.model.to(self.device).eval()
        self.model.requires_grad_(False)
        self.tokenizer.truncation_side = config.truncation_side
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        if getattr(self.model.config, "pad_token_id", None) is None:  # custom configs may lack the field
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        if config.template == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise PreforchError(f"{config.path}: template 'chat' but the tokenizer has no chat template; "
                                "set template: plain (or reversed)")
        self._fingerprint = (folder_fingerprint(local) if local_only
                             else f"hub:{config.path}@{getattr(model_config, '_commit_hash', None) or 'unknown'}")
        self.objectives = [config.objective]
        self.truncated = 0
        self.seen = 0

    def _reward_index(self, model_config) -> int:
        num_labels = int(getattr(model_config, "num_labels", 1))
        if self.config.output != "logits":  # a named output's width is known only once the model has run
            if self.config.label is not None:
                raise PreforchError(f"{self.config.path}: label names the logits' columns; with output "
                                    f"{self.config.output!r} pick the column with logit_index")
            return self.config.logit_index or 0
        if self.config.label is not None:
            label2id = {str(k): int(v) for k, v in (getattr(model_config, "label2id", None) or {}).items()}
            if self.config.label not in label2id:
                raise PreforchError(f"{self.config.path}: unknown label {self.config.label!r}; the model's labels "
                                    f"are {sorted(label2id)}")
            return label2id[self.config.label]
        index = 0 if self.config.logit_index is None else self.config.logit_index
        if index >= num_labels:
            raise PreforchError(f"{self.config.path}: logit_index {index} is out of range; the model has "
                                f"num_labels={num_labels} (valid: 0..{num_labels - 1})")
        return index

    def identity(self) -> str:
        c = self.config
        settings = [self.reward_index, c.template, c.separator, c.max_length, c.truncation_side, c.dtype]
        if c.output != "logits":  # cached scores of logits-reading configs keep their keys
            settings.append(c.output)
        settings = json.dumps(settings, ensure_ascii=True)
        return f"hf:{self._fingerprint}:{settings}"

    def format(self, prompt, response: str) -> str:
        """The text the model reads for one pair, per ``template`` (``prompt``: a conversation or text)."""
        prompt = as_conversation(prompt)
        tok = self.tokenizer
        if self.config.template == "chat":
            return tok.apply_chat_template([*prompt.to_messages(), {"role": "assistant", "content": response}],
                                           tokenize=False)
        if self.config.template == "plain":
            return f"{prompt.text()}{self.config.separator}{response}"
        if self.config.template == "hh":
            return hh_text(prompt, response)
        if self.config.template == "pair":  # shown as the text pair's two segments; the model reads them apart
            return f"{prompt.text()}{self.tokenizer.sep_token or self.config.separator}{response}"
        prompt = prompt.text()
        bos = tok.bos_token or tok.cls_token or tok.eos_token
        if bos is None:
            raise PreforchError(f"{self.config.path}: template 'reversed' needs a BOS (or CLS/EOS) token; "
                                "the tokenizer has none")
        return f"{response}{bos}{prompt}"

    def inputs(self, prompts, responses: list[str]) -> tuple[list[str], list[str] | None]:
        """What the tokenizer gets: the texts, and for the pair template the second segments (the replies)."""
        conversations = as_conversations(prompts)
        if self.config.template == "pair":
            return [c.text() for c in conversations], list(responses)
        return [self.format(c, r) for c, r in zip(conversations, responses, strict=True)], None

    def _encode(self, texts: list[str], pairs: list[str] | None, truncate: bool) -> dict:
        # The chat template already holds the special tokens it wants.
        return self.tokenizer(texts, pairs, add_special_tokens=self.config.template != "chat", truncation=truncate,
                              max_length=self.config.max_length if truncate else None,
                              padding=truncate, return_tensors="pt" if truncate else None)

    def _reward_column(self, outputs):
        """The reward of each row from the model's outputs (``output`` and its column). Shape: [B]."""
        name = self.config.output
        values = outputs.get(name) if hasattr(outputs, "get") else getattr(outputs, name, None)
        if values is None:
            names = list(outputs.keys()) if hasattr(outputs, "keys") else []
            raise PreforchError(f"{self.config.path}: the model has no output {name!r}; its outputs are {names}")
        values = values.reshape(values.shape[0], -1)  # [B, M]
        if self.reward_index >= values.shape[1]:
            raise PreforchError(f"{self.config.path}: logit_index {self.reward_index} is out of range for output "
                                f"{name!r} of width {values.shape[1]}")
        return values[:, self.reward_index]

    def score(self, prompts, responses: list[str]) -> np.ndarray:
        """Raw reward logits, higher is better. Shape: [N, 1], float64, in input order.

        ``prompts``: conversations (or texts / message lists, parsed into conversations)."""
        texts, pairs = self.inputs(prompts, responses)
        out = np.empty((len(texts), 1), dtype=np.float64)  # [N, 1]
        if not texts:
            return out
        lengths = [len(ids) for ids in self._encode(texts, pairs, truncate=False)["input_ids"]]
        cut = sum(n > self.config.max_length for n in lengths)
        self.truncated += cut
        self.seen += len(texts)
        if cut:
            logger.debug("%s: %d of %d inputs longer than %d tokens were truncated (%s)", self.config.objective,
                         cut, len(texts), self.config.max_length, self.config.truncation_side)
        with torch.inference_mode():
            for idx in length_sorted_batches(lengths, self.config.batch_size):
                batch = self._encode([texts[i] for i in idx], [pairs[i] for i in idx] if pairs else None,
                                     truncate=True).to(self.device)
                out[idx, 0] = self._reward_column(self.model(**batch)).float().cpu().numpy()
        return out


def hh_text(prompt: Conversation, response: str) -> str:
    """Anthropic HH markup of a conversation and its reply (system turns are folded into the first human turn)."""
    names = {"user": "Human", "assistant": "Assistant"}
    parts, system = [], ""
    for m in prompt.messages:
        if m.role == "system":
            system += m.content + "\n\n"
            continue
        parts.append(f"\n\n{names[m.role]}: {system + m.content if m.role == 'user' else m.content}")
        system = "" if m.role == "user" else system
    return "".join(parts) + f"\n\nAssistant: {response}"
