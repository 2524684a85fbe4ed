"""Any Python function as a scorer: ``f(prompts, responses) -> [N]`` or ``[N, K]``, where ``prompts`` are the
conversations' canonical texts (:meth:`preforch.conversation.Conversation.text`: a single user turn is its
text)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from preforch.conversation import as_conversations
from preforch.errors import PreforchError

ScoreFn = Callable[[list[str], list[str]], Any]


def as_score_matrix(values: Any, n: int, objectives: Sequence[str], who: str) -> np.ndarray:
    """Check a scorer's output and return it as float64. Shape: [N] (when K = 1) or [N, K] → [N, K].

    Finiteness is not checked here; :class:`~preforch.rewards.multi.MultiScorer` names the bad row.
    """
    k = len(objectives)
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise PreforchError(f"scorer {who}: output is not numeric ({err})") from None
    shape = tuple(out.shape)
    if out.ndim == 1 and k == 1:
        out = out[:, None]  # [N, 1]
    if out.shape != (n, k):
        raise PreforchError(f"scorer {who}: returned shape {shape} for {n} responses, "
                            f"expected [{n}, {k}] (objectives {list(objectives)})")
    return out


class CallableScorer:
    """Wraps ``fn(prompts, responses)`` with objective names and an identity string.

    ``identity`` is what the score cache keys on: change it whenever ``fn`` would score differently.
    """

    def __init__(self, fn: ScoreFn, objectives: Sequence[str] | str, identity: str) -> None:
        if not callable(fn):
            raise PreforchError(f"CallableScorer: fn must be callable, got {type(fn).__name__}")
        self.objectives = [objectives] if isinstance(objectives, str) else list(objectives)
        if not self.objectives:
            raise PreforchError("CallableScorer: give at least one objective name")
        if not identity:
            raise PreforchError("CallableScorer: identity must be a non-empty string (the cache keys on it)")
        self.fn = fn
        self._identity = identity

    def identity(self) -> str:
        return f"callable:{self._identity}"

    def score(self, prompts, responses: list[str]) -> np.ndarray:
        """Raw scores. Shape: [N, K]."""
        texts = [c.text() for c in as_conversations(prompts)]
        return as_score_matrix(self.fn(texts, list(responses)), len(prompts), self.objectives,
                               repr(self._identity))
