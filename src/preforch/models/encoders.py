"""Frozen text encoders: a sentence encoder (mean-pooled, like sentence-transformers) and the hidden state
of the last prompt token of a causal LM (so the policy itself can be the encoder, as ArmoRM does)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from preforch.artifacts import folder_fingerprint
from preforch.conversation import TEXT_LABELS
from preforch.errors import PreforchError
from preforch.models.batching import length_sorted_batches
from preforch.models.paths import model_load_error, resolve_device, resolve_encoder_path
from preforch.models.policy import resolve_policy_path
from preforch.types import EncoderKind

__all__ = ["CausalLMEncoder", "EncoderKind", "SentenceEncoder", "TextEncoder", "length_sorted_batches", "load_encoder"]


class TextEncoder(Protocol):
    """texts → embeddings. Shape: [N, D]. ``format_messages`` renders a message list as this encoder's input."""

    dim: int

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor: ...

    def format_messages(self, messages: list[dict[str, str]]) -> str: ...

    def identity(self) -> str: ...


def plain_text(messages: list[dict[str, str]]) -> str:
    """A message list as the canonical text of :meth:`preforch.conversation.Conversation.text`."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{TEXT_LABELS.get(m['role'], m['role'])}: {m['content']}" for m in messages)


def _check_folder(path: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise PreforchError(
            f"{path}: encoder folder not found (give a local folder; hub names are not downloaded offline)"
        )
    if not any(folder.glob("*.safetensors")):
        raise PreforchError(f"{path}: no *.safetensors weights in the encoder folder (pickle weights are refused)")
    return folder


class SentenceEncoder:
    """A BERT-style encoder with mean pooling over real tokens, optionally L2-normalised.

    Defaults match all-MiniLM-L6-v2 (mean pooling, normalised, 256 tokens). ``truncation_side`` says which
    end of a long input survives ("right" keeps the beginning).
    """

    def __init__(self, path: str, max_length: int = 256, normalize: bool = True, device: str = "cpu",
                 trust_remote_code: bool = False, truncation_side: str = "right") -> None:
        folder = _check_folder(path)
        if truncation_side not in ("left", "right"):
            raise PreforchError(f"truncation_side {truncation_side!r}: expected 'left' or 'right'")
        self.path = str(folder)
        self.max_length = max_length
        self.truncation_side = truncation_side
        self.normalize = normalize
        self.device = torch.device(resolve_device(device, "encoder device"))
        self.trust_remote_code = trust_remote_code
        self._tokenizer = None
        self._model = None
        self._post_load: list = []
        self.lora_fingerprint = ""  # set when adapters are merged into the weights (reward heads' encoder LoRA)
        self._fingerprint = folder_fingerprint(folder)
        try:
            self.dim = int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])
        except (OSError, ValueError, KeyError):
            self.dim = int(self.model.config.hidden_size)

    # The weights load on first use: a fully cached scoring run never needs them (loading MiniLM is about half
    # of a cached re-run).
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True,
                                                                trust_remote_code=self.trust_remote_code)
            except (OSError, ValueError, KeyError) as err:
                raise model_load_error(err, self.path, "encoder folder") from None
            self._tokenizer.truncation_side = self.truncation_side
        return self._tokenizer

    @property
    def model(self):
        if self._model is None:
            try:
                model = AutoModel.from_pretrained(self.path, local_files_only=True, use_safetensors=True,
                                                  trust_remote_code=self.trust_remote_code)
            except (OSError, ValueError, KeyError) as err:
                raise model_load_error(err, self.path, "encoder folder") from None
            for hook in self._post_load:
                hook(model)
            self._model = model.to(self.device).eval().requires_grad_(False)
        return self._model

    def add_post_load(self, hook) -> None:
        """Run ``hook(model)`` on the weights once they load (now, if they already have): e.g. merging LoRA."""
        self._post_load.append(hook)
        if self._model is not None:
            hook(self._model)

    def identity(self) -> str:
        side = "" if self.truncation_side == "right" else ":left"
        return f"sentence:{self._fingerprint}:{self.max_length}:{int(self.normalize)}{side}"

    def format_messages(self, messages: list[dict[str, str]]) -> str:
        return plain_text(messages)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def token_states(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden states and attention mask of one batch. Shapes: [N, T, D], [N, T]."""
        batch = self.tokenize(texts)
        out = self.model(**batch)
        return out.last_hidden_state, batch["attention_mask"]

    @staticmethod
    def mean_pool(states: torch.Tensor, mask: torch.Tensor, normalize: bool) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(states.dtype)  # [N, T, 1]
        pooled = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)  # [N, D]
        return torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        out = torch.empty(len(texts), self.dim)
        batches = length_sorted_batches([len(t) for t in texts], batch_size)
        for idx in tqdm(batches, desc="encode", disable=not progress, unit="batch"):
            states, mask = self.token_states([texts[i] for i in idx])
            out[idx] = self.mean_pool(states, mask, self.normalize).float().cpu()
        return out


class CausalLMEncoder:
    """Hidden state of the last prompt token of a causal LM (``layer`` = −1 for the last layer).

    With ``chat_template`` the prompt is wrapped as a user turn with the generation prompt appended, so
    the state is the one the policy has when it starts its reply.
    """

    def __init__(self, path: str, max_length: int = 512, layer: int = -1, chat_template: bool = True,
                 device: str = "cpu", trust_remote_code: bool = False) -> None:
        folder = _check_folder(path)
        self.path = str(folder)
        self.max_length = max_length
        self.layer = layer
        self.device = torch.device(resolve_device(device, "encoder device"))
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True,
                                                           trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True,
                                                              use_safetensors=True, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError) as err:
            raise model_load_error(err, self.path, "encoder folder") from None
        self.chat_template = chat_template and bool(getattr(self.tokenizer, "chat_template", None))
        self.tokenizer.truncation_side = "left"  # keep the end of the prompt, where the reply starts
        self.model = self.model.to(self.device).eval()
        self.model.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self._fingerprint = folder_fingerprint(folder)

    def identity(self) -> str:
        return f"causal_lm:{self._fingerprint}:{self.max_length}:{self.layer}:{int(self.chat_template)}"

    def format_messages(self, messages: list[dict[str, str]]) -> str:
        """The policy's view of a prompt: its chat template with the generation prompt, or plain text."""
        if not self.chat_template:
            return plain_text(messages)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    @staticmethod
    def last_token_state(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden state at each row's last real token (right padding). Shapes: [N, T, D], [N, T] → [N, D]."""
        last = mask.sum(1).long() - 1  # [N]
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 16, progress: bool = False) -> torch.Tensor:
        """States of already formatted inputs (see :meth:`format_messages`). Shape: [N, D]."""
        out = torch.empty(len(texts), self.dim)
        formatted = list(texts)
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        batches = length_sorted_batches([len(t) for t in formatted], batch_size)
        for idx in tqdm(batches, desc="encode", disable=not progress, unit="batch"):
            batch = self.tokenizer([formatted[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, add_special_tokens=not self.chat_template,
                                   return_tensors="pt").to(self.device)
            hidden = self.model(**batch, output_hidden_states=True).hidden_states[self.layer]  # [B, T, D]
            out[idx] = self.last_token_state(hidden, batch["attention_mask"]).float().cpu()
        return out


def load_encoder(kind: EncoderKind, path: str | None, max_length: int | None = None, device: str = "cpu",
                 trust_remote_code: bool = False, layer: int = -1, truncation_side: str = "right") -> TextEncoder:
    """Build the encoder an adapter config names; ``path`` None means the embedded default.

    ``truncation_side`` applies to the sentence encoder; a causal LM always keeps the end of its input.
    """
    if kind == "sentence":
        return SentenceEncoder(resolve_encoder_path(path), max_length=max_length or 256, device=device,
                               trust_remote_code=trust_remote_code, truncation_side=truncation_side)
    if kind == "causal_lm":
        return CausalLMEncoder(resolve_policy_path(path), max_length=max_length or 512, layer=layer,
                               device=device, trust_remote_code=trust_remote_code)
    raise PreforchError(f"encoder kind {kind!r}: expected 'sentence' or 'causal_lm'")
