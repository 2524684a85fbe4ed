"""A floor for what best-of-N serves (issue 22): the best reply under R can still be a bad one. Before a reply is
returned it must score at least ``min_score`` (normalised, s̃) on every objective whose weight for this prompt
exceeds ``share``; the best candidate that passes is chosen, and when none does the configured fallback reply
(a refusal by default) is returned instead and the result says so.

Why weighted objectives only: a reply to a harmless coding question need not clear the harmlessness floor's
bar of a red-team prompt; the weights already say which objectives this prompt is judged on. Pure functions
over arrays; :func:`preforch.infer.best_of_n.best_of_n` and the server's chat apply them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preforch.config import field
from preforch.errors import PreforchError

DEFAULT_REPLY = "I can't help with that."


@dataclass
class Floor:
    """Per-objective floors for served replies; off unless ``enabled``."""

    enabled: bool = field(False, help="refuse to serve a reply that scores below min_score on an objective "
                                      "weighted above share; when no candidate passes, serve 'reply'")
    min_score: float = field(-1.0, help="the floor: a normalised score s~ (z-score units of the adapter's "
                                        "normaliser with the default zscore)")
    share: float = field(0.5, help="an objective's floor applies when its weight for the prompt exceeds this")
    reply: str = field(DEFAULT_REPLY, help="what is served when no candidate passes the floor")

    def __post_init__(self) -> None:
        if not np.isfinite(self.min_score) or not 0.0 <= self.share < 1.0 or not self.reply.strip():
            raise PreforchError(f"floor: min_score must be finite, share in [0, 1) and reply non-empty; got "
                                f"min_score={self.min_score!r}, share={self.share!r}, reply={self.reply!r:.40}")


def floor_passes(normalized: np.ndarray, weights: np.ndarray, min_score: float, share: float) -> np.ndarray:
    """Whether each candidate clears the floor on every objective weighted above ``share``.

    Shapes: normalized [N, G, K], weights [N, K] → [N, G].
    """
    s, w = np.asarray(normalized, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    watched = (w > share)[:, None, :]  # [N, 1, K]
    return ~((s < min_score) & watched).any(-1)  # [N, G]


def choose_with_floor(rewards: np.ndarray, passes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The highest-R candidate among those that pass (first on ties), and whether none passed.

    Shapes: rewards, passes [N, G] → best [N] (the highest-R candidate overall where none passed), floored [N].
    """
    r = np.asarray(rewards, dtype=np.float64)
    floored = ~passes.any(1)  # [N]
    masked = np.where(passes, r, -np.inf)  # [N, G]
    best = np.where(floored, np.argmax(r, 1), np.argmax(masked, 1)).astype(np.int64)  # [N]
    return best, floored
