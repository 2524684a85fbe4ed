"""The one interface every reward scorer implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from preforch.conversation import Conversation

#: What a scorer spec's ``type`` may be; :data:`preforch.rewards.registry.SCORER_TYPES` builds each.
SCORER_TYPE_NAMES = ("builtin", "heads", "hf", "python", "rule")


@runtime_checkable
class Scorer(Protocol):
    """Scores (prompt, response) pairs on one or more objectives.

    ``objectives``: the names of the K columns ``score`` returns, in order.
    ``identity()``: a string that changes whenever the scores could change (weights, template, settings);
    the score cache keys on it.
    ``score(prompts, responses)``: raw scores, higher is better. Shape: [N, K], float64. ``prompts`` are
    :class:`~preforch.conversation.Conversation` objects; each scorer renders them as its model expects
    (a chat template, the canonical text, HH markup). Scorers also accept plain texts, parsed with
    :func:`~preforch.conversation.as_conversations`.
    """

    objectives: list[str]

    def identity(self) -> str: ...

    def score(self, prompts: Sequence[Conversation], responses: list[str]) -> np.ndarray: ...
