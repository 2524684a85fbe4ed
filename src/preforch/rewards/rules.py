"""Rule scorers: conciseness, sentiment (vaderSentiment) and profanity (alt-profanity-check).

Each scores the response alone (the prompt is ignored) and returns one column, higher is better:

- ``concise``: −log1p(number of whitespace-separated words). An empty reply scores 0, ten words −2.40,
  a hundred −4.62; the log makes the difference between 10 and 20 words count as much as between 100
  and 200, and scores stay on a scale comparable to a reward model's logits.
- ``sentiment``: VADER's compound score in [−1, 1] (objective name ``positive`` by default).
- ``profanity``: 1 − P(profane) from alt-profanity-check's linear model, in [0, 1] (objective
  ``non_profane`` by default).

The optional packages are imported on first use (``pip install 'preforch[rules]'``).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import math

import numpy as np

from preforch.errors import PreforchError


def _require(module: str, pip_name: str, load: bool = True):
    """Import ``module`` (or, with ``load=False``, only check that it is installed)."""
    try:
        if not load:
            if importlib.util.find_spec(module.split(".")[0]) is None:
                raise ImportError(module)
            return None
        return importlib.import_module(module)
    except (ImportError, ValueError):  # ValueError: find_spec of a module set to None in sys.modules
        raise PreforchError(f"rule scorer needs the package {pip_name!r}: pip install {pip_name} "
                            "(or pip install 'preforch[rules]')") from None


def _version(pip_name: str) -> str:
    try:
        return md.version(pip_name)
    except md.PackageNotFoundError:
        return "missing"


def word_count(text: str) -> int:
    return len(text.split())


class ConcisenessScorer:
    """Score = −log1p(words in the response). Shape of ``score``: [N, 1]."""

    def __init__(self, objective: str = "concise") -> None:
        self.objectives = [objective]

    def identity(self) -> str:
        return "rule:concise:neg_log1p_words:v1"

    def score(self, prompts, responses: list[str]) -> np.ndarray:
        return np.array([[-math.log1p(word_count(r))] for r in responses], dtype=np.float64).reshape(-1, 1)


class SentimentScorer:
    """Score = VADER compound sentiment of the response, in [−1, 1]. Shape of ``score``: [N, 1]."""

    def __init__(self, objective: str = "positive") -> None:
        self.objectives = [objective]
        _require("vaderSentiment", "vaderSentiment", load=False)
        self._analyzer = None  # loaded on first use: a fully cached run never pays for it

    def identity(self) -> str:
        return f"rule:sentiment:vader_compound:{_version('vaderSentiment')}"

    def score(self, prompts, responses: list[str]) -> np.ndarray:
        if self._analyzer is None:
            self._analyzer = _require("vaderSentiment.vaderSentiment", "vaderSentiment").SentimentIntensityAnalyzer()
        return np.array([[self._analyzer.polarity_scores(r)["compound"]] for r in responses],
                        dtype=np.float64).reshape(-1, 1)


class ProfanityScorer:
    """Score = 1 − P(profane) of the response, in [0, 1]. Shape of ``score``: [N, 1]."""

    def __init__(self, objective: str = "non_profane") -> None:
        self.objectives = [objective]
        _require("profanity_check", "alt-profanity-check", load=False)
        self._predict_prob = None  # loaded on first use (scikit-learn takes seconds to import)

    def identity(self) -> str:
        return f"rule:profanity:one_minus_p:{_version('alt-profanity-check')}"

    def score(self, prompts, responses: list[str]) -> np.ndarray:
        if not responses:
            return np.zeros((0, 1))
        if self._predict_prob is None:
            self._predict_prob = _require("profanity_check", "alt-profanity-check").predict_prob
        p = np.asarray(self._predict_prob(list(responses)), dtype=np.float64)  # [N]
        return (1.0 - p).reshape(-1, 1)


#: rule name → scorer class; each takes an optional ``objective`` name.
RULES = {
    "concise": ConcisenessScorer,
    "sentiment": SentimentScorer,
    "profanity": ProfanityScorer,
}


def rule_scorer(name: str, objective: str | None = None):
    """Build the rule scorer called ``name`` (see :data:`RULES`), optionally renaming its objective."""
    if name not in RULES:
        raise PreforchError(f"unknown rule scorer {name!r}; expected one of {sorted(RULES)}")
    cls = RULES[name]
    return cls() if objective is None else cls(objective=objective)
