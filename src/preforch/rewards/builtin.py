"""The built-in reward models as one scorer: the shipped harmless and helpful heads on one MiniLM pass, plus the
conciseness rule (where the heads live: :mod:`preforch.models.builtin`)."""

from __future__ import annotations

from preforch.models.builtin import BUILTIN_HEADS, BUILTIN_OBJECTIVES
from preforch.rewards.heads import SharedEncoderHeads
from preforch.rewards.multi import MultiScorer
from preforch.rewards.rules import ConcisenessScorer
from preforch.weighting import check_objectives

__all__ = ["BUILTIN_HEADS", "BUILTIN_OBJECTIVES", "load_builtin_heads", "load_builtin_scorer"]


def load_builtin_heads(device: str = "cpu") -> SharedEncoderHeads:
    """The shipped harmless and helpful heads as one SharedEncoderHeads (one encoder pass for both)."""
    heads = SharedEncoderHeads.from_folders(list(dict.fromkeys(BUILTIN_HEADS.values())), device=device)
    check_objectives(list(BUILTIN_HEADS), heads.objectives, "built-in heads'", "the expected")
    return heads


def load_builtin_scorer(device: str = "cpu", batch_size: int = 256, progress: bool = False) -> MultiScorer:
    """A Scorer with objectives ``BUILTIN_OBJECTIVES``: raw scores [N, 3] (harmless, helpful, concise).

    harmless/helpful are Bradley–Terry logits; concise is −log1p(word count) of the response.
    """
    scorer = MultiScorer([load_builtin_heads(device), ConcisenessScorer("concise")], batch_size=batch_size,
                         progress=progress)
    check_objectives(BUILTIN_OBJECTIVES, scorer.objectives, "built-in scorer's", "the expected")
    return scorer
