"""Prefill reuse: a ``causal_lm`` preference adapter built on the policy itself reads w(x) from the hidden
state that generation's prompt pass (prefill) computes anyway, so it costs only the adapter's MLP.

The prefill state is the adapter's encoder input only when four things hold; otherwise the adapter needs its
own encoder pass:

- the adapter's encoder is a causal LM from the same folder as the policy, at float32 (its training dtype);
- generation formats prompts with the chat template, as the encoder does;
- the adapter's prompt view keeps the whole conversation: always under ``context``; under ``last_user`` only
  for a conversation that is a single user turn;
- the prompt fits both the encoder's and generation's token limits (they truncate differently).
"""

from __future__ import annotations

from pathlib import Path

import torch

from preforch.adapter.views import view_messages
from preforch.conversation import Conversation
from preforch.models.generation import format_prompts
from preforch.models.policy import resolve_policy_path

#: The encoder's prompt-token limit when the adapter config leaves it null (as in load_encoder).
CAUSAL_LM_DEFAULT_MAX_LENGTH = 512


def _same_folder(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def prefill_layer(adapter, model, tokenizer, chat_template: bool) -> int | None:
    """The hidden layer whose prefill state stands in for the adapter's encoder, or None when none can."""
    config = adapter.config
    if config.encoder != "causal_lm" or not chat_template or not getattr(tokenizer, "chat_template", None):
        return None
    if next(model.parameters()).dtype != torch.float32:
        return None
    policy_folder = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
    if not _same_folder(resolve_policy_path(config.encoder_path), policy_folder):
        return None
    return int(config.encoder_layer)


def prefill_matches(adapter, conversation: Conversation, prompt_tokens: int, max_prompt_length: int) -> bool:
    """Whether this conversation's prefill state equals the adapter's encoder input (given a layer from
    :func:`prefill_layer`): the view keeps every message and nothing is truncated on either side."""
    if view_messages(conversation, adapter.config.prompt_view) != conversation.to_messages():
        return False
    limit = adapter.config.encoder_max_length or CAUSAL_LM_DEFAULT_MAX_LENGTH
    return prompt_tokens <= min(limit, max_prompt_length)


def prompt_token_count(tokenizer, conversation: Conversation, chat_template: bool) -> int:
    """Prompt tokens as generation encodes them (before its max_prompt_length cut)."""
    texts, templated = format_prompts(tokenizer, [conversation], chat_template)
    return len(tokenizer(texts[0], add_special_tokens=not templated)["input_ids"])
