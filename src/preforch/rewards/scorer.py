"""The one interface every reward scorer implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Scorer(Protocol):
    """Scores (prompt, response) pairs on one or more objectives.

    ``objectives``: the names of the K columns ``score`` returns, in order.
    ``identity()``: a string that changes whenever the scores could change (weights, template, settings);
    the score cache keys on it.
    ``score(prompts, responses)``: raw scores, higher is better. Shape: [N, K], float64.
    """

    objectives: list[str]

    def identity(self) -> str: ...

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray: ...
