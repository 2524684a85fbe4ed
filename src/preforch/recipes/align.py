"""`preforch align ROUTE`: one table from a route's name to the function that trains it.

Each route (:mod:`preforch.align.grpo`, :mod:`preforch.align.dpo`, :mod:`preforch.align.conditioned`) reads its
rows, builds TRL's trainer and owns its run folder (run_config.json, checkpoints/, final/): TRL writes the
checkpoints, so the folder's life stays next to the trainer, and only ``preforch.align`` imports trl and peft.
"""

from __future__ import annotations

import warnings

from preforch.align.conditioned import run_conditioned
from preforch.align.config import AlignConfig
from preforch.align.dpo import run_dpo
from preforch.align.grpo import AlignResult, run_rl

#: route → its trainer; grpo and rloo share one (the config class tells them apart).
ROUTES = {"grpo": run_rl, "rloo": run_rl, "dpo": run_dpo, "conditioned": run_conditioned}


#: Deprecation notices raised inside PEFT and TRL (not by preforch's own calls, which use the new names): they
#: would print on every run and tell the user nothing they can act on.
THIRD_PARTY_NOTICES = (r"`is_gradient_checkpointing` is deprecated",)


def train_route(route: str, job: AlignConfig) -> AlignResult:
    """Train ``route`` with the settings ``job`` (a GRPOJob, RLOOJob, DPOJob or ConditionedJob)."""
    with warnings.catch_warnings():
        for message in THIRD_PARTY_NOTICES:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        return ROUTES[route](job)
