"""Policy alignment with prompt-aware weights. This is the only package that imports trl/peft, and only
inside the modules that need them: importing ``preforch.align`` itself stays light (numpy only)."""

from preforch.align.best_of_n import BestOfNResult, best_of_n, choose_best

__all__ = ["BestOfNResult", "best_of_n", "choose_best"]
