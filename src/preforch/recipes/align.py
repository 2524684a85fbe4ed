"""`preforch align ROUTE`: one table from a route's name to the function that trains it.

Each route (:mod:`preforch.align.grpo`, :mod:`preforch.align.dpo`, :mod:`preforch.align.conditioned`) reads its
rows, builds TRL's trainer and owns its run folder (run_config.json, checkpoints/, final/): TRL writes the
checkpoints, so the folder's life stays next to the trainer, and only ``preforch.align`` imports trl and peft.
"""

from __future__ import annotations

from preforch.align.conditioned import run_conditioned
from preforch.align.config import AlignConfig
from preforch.align.dpo import run_dpo
from preforch.align.grpo import AlignResult, run_rl

#: route → its trainer; grpo and rloo share one (the config class tells them apart).
ROUTES = {"grpo": run_rl, "rloo": run_rl, "dpo": run_dpo, "conditioned": run_conditioned}


def train_route(route: str, job: AlignConfig) -> AlignResult:
    """Train ``route`` with the settings ``job`` (a GRPOJob, RLOOJob, DPOJob or ConditionedJob)."""
    return ROUTES[route](job)
