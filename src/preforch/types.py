"""Shape legend and the result types shared across components.

Shapes used in docstrings and trailing comments:

- ``N`` prompts (or rows of a preference data set)
- ``G`` generations per prompt
- ``K`` objectives (reward models)
- ``D`` prompt-embedding width
- ``T`` tokens
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from preforch.conversation import Conversation, as_conversations

#: Weights dtype of a reward model.
TorchDType = Literal["float32", "bfloat16", "float16"]
#: Weights dtype of a policy ("auto": the dtype its config names).
PolicyDType = Literal[TorchDType, "auto"]
#: Prompt encoders: a mean-pooled sentence encoder, or the last prompt token's state of a causal LM.
EncoderKind = Literal["sentence", "causal_lm"]


@dataclass
class PreferenceData:
    """Rows (x, y⁺[, y⁻]) with optional per-objective scores.

    ``prompts`` are :class:`~preforch.conversation.Conversation` objects (plain strings, HH text and message
    lists given here are parsed into conversations).

    ``scores_chosen`` / ``scores_rejected`` are raw (not normalised) scores, Shape: [N, K], in the order
    of ``objectives``. ``kinds`` is an optional label per row (e.g. the source data set) used in reports.
    ``source`` names where the rows came from, for error messages.
    """

    prompts: list[Conversation]
    chosen: list[str]
    rejected: list[str] | None = None
    objectives: list[str] = field(default_factory=list)
    scores_chosen: np.ndarray | None = None  # [N, K]
    scores_rejected: np.ndarray | None = None  # [N, K]
    kinds: list[str] | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not all(isinstance(p, Conversation) for p in self.prompts):
            self.prompts = as_conversations(self.prompts)
        n = len(self.prompts)
        for name in ("chosen", "rejected", "kinds"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{self.source}: column {name!r} has {len(value)} rows, prompts has {n}")
        for name in ("scores_chosen", "scores_rejected"):
            value = getattr(self, name)
            if value is not None and value.shape != (n, len(self.objectives)):
                raise ValueError(
                    f"{self.source}: {name} has shape {tuple(value.shape)}, expected {(n, len(self.objectives))}"
                )

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def has_rejected(self) -> bool:
        return self.rejected is not None

    def subset(self, index: np.ndarray | list[int]) -> PreferenceData:
        """Rows at ``index`` (a new object; arrays are copied)."""
        idx = np.asarray(index, dtype=np.int64)

        def pick(values):
            return None if values is None else [values[i] for i in idx]

        return PreferenceData(
            prompts=[self.prompts[i] for i in idx],
            chosen=[self.chosen[i] for i in idx],
            rejected=pick(self.rejected),
            objectives=list(self.objectives),
            scores_chosen=None if self.scores_chosen is None else self.scores_chosen[idx].copy(),
            scores_rejected=None if self.scores_rejected is None else self.scores_rejected[idx].copy(),
            kinds=pick(self.kinds),
            source=self.source,
        )


@dataclass
class AdapterReport:
    """Quality of a trained adapter on one held-out split (``split_name``: validation or test).

    ``kl``: mean KL(w* ‖ w(x)); ``top1``: share of prompts where argmax w* = argmax w(x);
    ``entropy``: mean entropy of w(x) in nats; ``mean_weights``: objective → mean w_k(x);
    ``per_kind``: kind → objective → mean w_k(x) (empty when rows carry no kinds); ``loss``: the loss that
    trained; ``pairwise_accuracy``: share of pairs whose preferred reply gets the larger R = w(x)·s̃ (ties half;
    None without rejected replies), what the pairwise loss fits, as KL and top-1 are what forward_kl fits.
    """

    objectives: list[str]
    n_train: int
    n_val: int
    kl: float
    top1: float
    entropy: float
    target_entropy: float
    mean_weights: dict[str, float]
    mean_target_weights: dict[str, float]
    per_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    per_kind_top1: dict[str, float] = field(default_factory=dict)
    epochs: int = 0
    best_epoch: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    n_test: int = 0
    n_train_views: int = 0  # training rows including extra prompt views
    split_name: str = "validation"
    split: dict = field(default_factory=dict)
    loss: str = ""
    pairwise_accuracy: float | None = None
    per_kind_pairwise: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
