"""A floor for what best-of-N serves (issue 22): the best reply under R can still be a bad one. Before a reply is
returned it must score at least ``min_score`` (normalised, s̃) on every objective whose weight for this prompt
exceeds ``share``; the best candidate that passes is chosen, and when none does the configured fallback reply
(a refusal by default) is returned instead and the result says so.

Why weighted objectives only: a reply to a harmless coding question need not clear the harmlessness floor's
bar of a red-team prompt; the weights already say which objectives this prompt is judged on. Pure functions
over arrays; :func:`preforch.infer.best_of_n.best_of_n` and the server's chat apply them.

``against``: ``score`` compares with the fixed ``min_score``; ``reply`` compares with what the fallback reply
itself scores for this prompt (the reward models score the refusal as one more candidate): a candidate is served
only if it does at least as well as refusing would, on every watched objective. The bar then moves with the
prompt and with the reward models' scale, where a fixed z-score either never fires or fires on benign prompts
(BENCHMARKS.md, "Knowing when it does not know").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from preforch.config import field
from preforch.errors import PreforchError

DEFAULT_REPLY = "I can't help with that."
FloorAgainst = Literal["score", "reply"]


@dataclass
class Floor:
    """Per-objective floors for served replies; off unless ``enabled``. Users set it through
    :class:`FloorSettings` (``floor``, ``floor_min_score``, ...), which documents each field."""

    enabled: bool = False
    min_score: float = -1.0  # the bar with against "score": a normalised score s~
    share: float = 0.5  # an objective's floor applies when its weight for the prompt exceeds this
    reply: str = DEFAULT_REPLY  # served when no candidate passes
    against: FloorAgainst = "score"  # "reply": the bar is what ``reply`` itself scores for the prompt

    def __post_init__(self) -> None:
        if (not np.isfinite(self.min_score) or not 0.0 <= self.share < 1.0 or not self.reply.strip()
                or self.against not in ("score", "reply")):
            raise PreforchError(f"floor: min_score must be finite, share in [0, 1), reply non-empty and against "
                                f"score or reply; got min_score={self.min_score!r}, share={self.share!r}, "
                                f"reply={self.reply!r:.40}, against={self.against!r}")

    @property
    def scores_reply(self) -> bool:
        """Whether the reply itself must be scored: the floor is on and compares with the reply."""
        return self.enabled and self.against == "reply"

    def with_reply(self, texts: list[str]) -> list[str]:
        """The candidates to score: ``texts``, and the reply as one more when :attr:`scores_reply`."""
        return [*texts, self.reply] if self.scores_reply else list(texts)

    def bar(self, reply_scores: np.ndarray | None = None) -> float | np.ndarray:
        """What a candidate must score: ``min_score``, or (``against: reply``) the reply's own normalised scores
        ``reply_scores`` [N, K]."""
        if self.against == "score":
            return self.min_score
        if reply_scores is None:
            raise PreforchError("floor against the reply: the reply's scores are needed")
        return np.asarray(reply_scores, dtype=np.float64)


@dataclass
class FloorSettings:
    """The floor as the settings of a job or the server (``floor``, ``floor_min_score``, ...): one part that
    `preforch serve` and `preforch generate` both take."""

    floor: bool = field(False, help="best-of-N: serve only a reply that clears the floor on every objective weighted "
                                    "above floor_share; when none does, serve floor_reply (the result's floored "
                                    "says so)")
    floor_min_score: float = field(-1.0, help="the floor with floor_against: score, in the adapter normaliser's "
                                              "units (z-scores by default)")
    floor_share: float = field(0.5, help="an objective's floor applies when its weight for the prompt exceeds this")
    floor_reply: str = field(DEFAULT_REPLY, help="what is served when no candidate passes the floor")
    floor_against: FloorAgainst = field("score", help="score: the bar is floor_min_score; reply: the bar is what "
                                                      "floor_reply itself scores for the prompt (the reward models "
                                                      "score it as one more candidate)")

    def floor_rule(self) -> Floor:
        return Floor(self.floor, self.floor_min_score, self.floor_share, self.floor_reply, self.floor_against)


def floor_passes(normalized: np.ndarray, weights: np.ndarray, min_score: float | np.ndarray,
                 share: float) -> np.ndarray:
    """Whether each candidate clears the floor on every objective weighted above ``share``.

    Shapes: normalized [N, G, K], weights [N, K], min_score a number or [N, K] (a bar per prompt and objective)
    → [N, G].
    """
    s, w = np.asarray(normalized, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    bar = np.asarray(min_score, dtype=np.float64)
    bar = bar[:, None, :] if bar.ndim == 2 else bar  # [N, 1, K] or a scalar
    watched = (w > share)[:, None, :]  # [N, 1, K]
    return ~((s < bar) & watched).any(-1)  # [N, G]


def choose_with_floor(rewards: np.ndarray, passes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The highest-R candidate among those that pass (first on ties), and whether none passed.

    Shapes: rewards, passes [N, G] → best [N] (the highest-R candidate overall where none passed), floored [N].
    """
    r = np.asarray(rewards, dtype=np.float64)
    floored = ~passes.any(1)  # [N]
    masked = np.where(passes, r, -np.inf)  # [N, G]
    best = np.where(floored, np.argmax(r, 1), np.argmax(masked, 1)).astype(np.int64)  # [N]
    return best, floored
