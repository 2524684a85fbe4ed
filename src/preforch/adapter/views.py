"""The prompt view: the one function from a conversation to what the adapter's encoder reads.

It is a setting saved in the adapter's config (``prompt_view``) and used identically by training, ``preforch
weights``, the server, every alignment route and evaluation, because all of them go through
:meth:`PreferenceAdapter.predict_weights`, which calls :func:`view_inputs`.

- ``last_user``: the final user turn alone: what the reply must answer, with no trace of how a data set
  formats dialogues or how many turns came before.
- ``context``: the whole conversation, rendered by the encoder (the canonical ``Role: content`` text for a
  sentence encoder, the tokenizer's chat template for a causal LM) and truncated from the *start*, so the
  final user turn survives long histories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from preforch.conversation import Conversation

PromptView = Literal["last_user", "context"]
#: Which end of the encoder input survives truncation, per view: the context view keeps its end (the final
#: user turn); the last user turn keeps its beginning (where a request usually says what it wants).
TRUNCATION_SIDE: dict[str, str] = {"last_user": "right", "context": "left"}


class MessageFormatter(Protocol):
    def format_messages(self, messages: list[dict[str, str]]) -> str: ...


def view_messages(conversation: Conversation, view: PromptView) -> list[dict[str, str]]:
    """The messages a view keeps."""
    if view == "context":
        return conversation.to_messages()
    if view == "last_user":
        return [{"role": "user", "content": conversation.last_user}]
    raise ValueError(f"unknown prompt view {view!r}; expected one of {list(TRUNCATION_SIDE)}")


def view_inputs(conversations: Sequence[Conversation], view: PromptView, encoder: MessageFormatter) -> list[str]:
    """Encoder input texts of ``conversations`` under ``view``. Shape: [N] texts."""
    return [encoder.format_messages(view_messages(c, view)) for c in conversations]
