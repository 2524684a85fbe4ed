"""What serving and `preforch generate` share and training does not: best-of-N candidate ranking, conditioning
tags at generation, prefill reuse and the served floor. No trl here; importing ``preforch.infer`` stays light
(numpy only; torch is imported where a model runs)."""

from preforch.infer.best_of_n import BestOfNResult, best_of_n, choose_best

__all__ = ["BestOfNResult", "best_of_n", "choose_best"]
