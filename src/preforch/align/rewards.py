"""The combined reward of the RL routes and the per-prompt weights it reads.

R(x, y) = Σ_k w_k(x)·s̃_k(x, y): raw scores from the scorers, normalised with the adapter's saved
normaliser, weighted by the prompt's weights. The weights are computed once per prompt by
:func:`preforch.weighting.resolve_weights` (adapter, fixed, or a blend) and travel in the dataset column
:data:`WEIGHTS_COLUMN`, which TRL hands to the reward
function as a keyword argument. Nothing here normalises across a group of completions: TRL's advantage
computation does that, and a group may be split across processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preforch.conversation import Conversation, as_conversations, from_key
from preforch.errors import PreforchError
from preforch.rewards.normalize import Normalizer
from preforch.weighting import check_objectives, scalarize

#: Dataset column with the K weights of each prompt (a list of floats).
WEIGHTS_COLUMN = "pro_weights"
#: Dataset column with each prompt's conversation (its canonical key), what the scorers see; the policy sees
#: the same conversation through its chat template.
CONVERSATION_COLUMN = "pro_conversation"
REWARD_NAME = "pro_reward"
#: Optional dataset columns: the adapter's confidence in each prompt's weights and the fallback share λ applied
#: (issue 22); logged as batch means ``pro/confidence`` and ``pro/lambda`` when present.
CONFIDENCE_COLUMN = "pro_confidence"
LAMBDA_COLUMN = "pro_lambda"


def completion_text(completion) -> str:
    """A TRL completion as text: a string, or the content of a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    raise PreforchError(f"reward: cannot read a completion of type {type(completion).__name__}")


def prompt_conversations(prompts, keys=None) -> list[Conversation]:
    """The conversations of a reward call: from the :data:`CONVERSATION_COLUMN` keys when the dataset has them,
    else parsed from TRL's prompts (text or chat messages)."""
    if keys:
        return [from_key(k) for k in keys]
    return as_conversations(prompts)


@dataclass
class RewardBatch:
    """One call's numbers. Shapes: raw / normalized / weights [B, K], reward [B]; ``prompts`` [B]."""

    prompts: list[Conversation]
    raw: np.ndarray
    normalized: np.ndarray
    weights: np.ndarray
    reward: np.ndarray


class ScalarizedReward:
    """The one TRL reward callable: ``reward(prompts, completions, pro_weights, prompt_text=..., **kw) -> [B]``.

    ``scorer`` is any Scorer (usually a MultiScorer) whose objectives equal ``normalizer.objectives``.
    Every call logs, through TRL's ``log_metric`` keyword, each objective's mean normalised score
    (``pro/score/<objective>``) and mean weight (``pro/weight/<objective>``), and, when the dataset carries them,
    the mean confidence (``pro/confidence``) and fallback share (``pro/lambda``); TRL averages them over the
    logging step.
    """

    __name__ = REWARD_NAME

    def __init__(self, scorer, normalizer: Normalizer) -> None:
        check_objectives(scorer.objectives, normalizer.objectives, "normaliser (adapter)")
        self.scorer = scorer
        self.normalizer = normalizer
        self.objectives = list(normalizer.objectives)
        self.last: RewardBatch | None = None

    def compute(self, prompts, responses: list[str], weights) -> RewardBatch:
        """R for conversations and responses. Shapes: weights [B, K] → RewardBatch."""
        k = len(self.objectives)
        w = np.asarray(weights, dtype=np.float64)  # [B, K]
        if w.shape != (len(responses), k):
            raise PreforchError(f"reward: weights of shape {w.shape}, expected [{len(responses)}, {k}] "
                                f"(objectives {self.objectives})")
        raw = np.asarray(self.scorer.score(list(prompts), list(responses)), dtype=np.float64)  # [B, K]
        normalized = self.normalizer.transform(raw).astype(np.float64)  # [B, K]
        reward = scalarize(w, normalized)  # [B]
        return RewardBatch(as_conversations(prompts), raw, normalized, w, reward)

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        if WEIGHTS_COLUMN not in kwargs:
            raise PreforchError(f"reward: the dataset has no {WEIGHTS_COLUMN!r} column (per-prompt weights); "
                                f"got columns {sorted(k for k in kwargs if not k.startswith(('trainer_', 'log_')))}")
        conversations = prompt_conversations(prompts, kwargs.get(CONVERSATION_COLUMN))
        batch = self.compute(conversations, [completion_text(c) for c in completions], kwargs[WEIGHTS_COLUMN])
        self.last = batch
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for j, name in enumerate(self.objectives):
                log_metric(f"pro/score/{name}", float(batch.normalized[:, j].mean()))
                log_metric(f"pro/weight/{name}", float(batch.weights[:, j].mean()))
            for column, metric in ((CONFIDENCE_COLUMN, "pro/confidence"), (LAMBDA_COLUMN, "pro/lambda")):
                if kwargs.get(column) is not None:
                    log_metric(metric, float(np.mean(kwargs[column])))
        return [float(r) for r in batch.reward]
