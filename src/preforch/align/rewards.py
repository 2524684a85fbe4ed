"""The combined reward of the RL routes and the per-prompt weights it reads.

R(x, y) = Σ_k w_k(x)·s̃_k(x, y): raw scores from the scorers, normalised with the adapter's saved
normaliser, weighted by the prompt's weights. The weights are computed once per prompt (adapter, fixed,
or a blend) and travel in the dataset column :data:`WEIGHTS_COLUMN`, which TRL hands to the reward
function as a keyword argument. Nothing here normalises across a group of completions: TRL's advantage
computation does that, and a group may be split across processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preforch.errors import PreforchError
from preforch.rewards.normalize import Normalizer
from preforch.weighting import blend_weights, check_weights

#: Dataset column with the K weights of each prompt (a list of floats).
WEIGHTS_COLUMN = "pro_weights"
#: Dataset column with the prompt as plain text (what the scorers see; the policy may see a chat template).
PROMPT_TEXT_COLUMN = "prompt_text"
REWARD_NAME = "pro_reward"


def check_objectives(adapter_objectives: list[str], scorer_objectives: list[str], what: str = "adapter") -> None:
    """The adapter's (or normaliser's) objectives must equal the scorers', in order; the error names both lists."""
    if list(adapter_objectives) != list(scorer_objectives):
        raise PreforchError(f"{what} objectives {list(adapter_objectives)} differ from the scorers' objectives "
                            f"{list(scorer_objectives)}; use scorers with the same objectives in the same order")


def prompt_weights(prompts: list[str], mode: str, k: int, adapter=None, user_weights=None, blend: float = 0.5,
                   batch_size: int = 64) -> np.ndarray:
    """Weights of each prompt. Shape: [N, K], rows on the simplex.

    ``mode``: 'adapter' → w(x); 'fixed' → ``user_weights`` for every prompt; 'blend' → blend·user + (1−blend)·w(x).
    """
    if mode == "fixed":
        w = check_weights(user_weights, k, "user_weights")
        return np.tile(w, (len(prompts), 1))  # [N, K]
    if adapter is None:
        raise PreforchError(f"weights mode {mode!r} needs a preference adapter")
    inferred = adapter.predict_weights(list(prompts), batch_size=batch_size)  # [N, K]
    if mode == "adapter":
        return inferred
    if mode == "blend":
        return blend_weights(inferred, user_weights, blend)
    raise PreforchError(f"unknown weights mode {mode!r}; expected adapter, fixed or blend")


def completion_text(completion) -> str:
    """A TRL completion as text: a string, or the content of a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    raise PreforchError(f"reward: cannot read a completion of type {type(completion).__name__}")


def prompt_text(prompt) -> str:
    """A TRL prompt as text: a string, or the last user message of a list of chat messages."""
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1]) if users else completion_text(prompt)


@dataclass
class RewardBatch:
    """One call's numbers. Shapes: raw / normalized / weights [B, K], reward [B]."""

    raw: np.ndarray
    normalized: np.ndarray
    weights: np.ndarray
    reward: np.ndarray


class ScalarizedReward:
    """The one TRL reward callable: ``reward(prompts, completions, pro_weights, prompt_text=..., **kw) -> [B]``.

    ``scorer`` is any Scorer (usually a MultiScorer) whose objectives equal ``normalizer.objectives``.
    Every call logs, through TRL's ``log_metric`` keyword, each objective's mean normalised score
    (``pro/score/<objective>``) and mean weight (``pro/weight/<objective>``); TRL averages them over the
    logging step.
    """

    __name__ = REWARD_NAME

    def __init__(self, scorer, normalizer: Normalizer) -> None:
        check_objectives(normalizer.objectives, scorer.objectives, "normaliser (adapter)")
        self.scorer = scorer
        self.normalizer = normalizer
        self.objectives = list(normalizer.objectives)
        self.last: RewardBatch | None = None

    def compute(self, prompts: list[str], responses: list[str], weights) -> RewardBatch:
        """R for plain-text prompts and responses. Shapes: weights [B, K] → RewardBatch."""
        k = len(self.objectives)
        w = np.asarray(weights, dtype=np.float64)  # [B, K]
        if w.shape != (len(responses), k):
            raise PreforchError(f"reward: weights of shape {w.shape}, expected [{len(responses)}, {k}] "
                                f"(objectives {self.objectives})")
        raw = np.asarray(self.scorer.score(list(prompts), list(responses)), dtype=np.float64)  # [B, K]
        normalized = self.normalizer.transform(raw).astype(np.float64)  # [B, K]
        reward = (w * normalized).sum(-1)  # [B]
        return RewardBatch(raw, normalized, w, reward)

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        if WEIGHTS_COLUMN not in kwargs:
            raise PreforchError(f"reward: the dataset has no {WEIGHTS_COLUMN!r} column (per-prompt weights); "
                                f"got columns {sorted(k for k in kwargs if not k.startswith(('trainer_', 'log_')))}")
        texts = kwargs.get(PROMPT_TEXT_COLUMN) or [prompt_text(p) for p in prompts]
        batch = self.compute(list(texts), [completion_text(c) for c in completions], kwargs[WEIGHTS_COLUMN])
        self.last = batch
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for j, name in enumerate(self.objectives):
                log_metric(f"pro/score/{name}", float(batch.normalized[:, j].mean()))
                log_metric(f"pro/weight/{name}", float(batch.weights[:, j].mean()))
        return [float(r) for r in batch.reward]
