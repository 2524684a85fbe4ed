"""`preforch align ROUTE`: one table from a route's name to the function that trains it.

Each route (:mod:`preforch.align.grpo`, :mod:`preforch.align.dpo`, :mod:`preforch.align.conditioned`) reads its
rows, builds TRL's trainer and owns its run folder (run_config.json, checkpoints/, final/): TRL writes the
checkpoints, so the folder's life stays next to the trainer, and only ``preforch.align`` imports trl and peft.
"""

from __future__ import annotations

import os
import warnings

from preforch.align.conditioned import run_conditioned
from preforch.align.config import AlignConfig
from preforch.align.dpo import run_dpo
from preforch.align.grpo import AlignResult, run_rl
from preforch.recipes import next_step

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


def run_route(route: str, job) -> int:
    """`preforch align ROUTE`: train one route; prints the steps run and where the policy went."""
    result = train_route(route, job)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun / accelerate launch only rank 0 reports
        return 0
    print(f"{route}: {result.report['global_step']} steps in {result.seconds:.1f} s; "
          f"policy written to {result.final_dir}")
    strategy = " --strategy conditioned --best-of null" if route == "conditioned" else ""
    next_step(f"preforch generate --config configs/generate.yaml --prompts-file configs/prompts.txt "
              f"--policy {result.final_dir}{strategy} --output runs/generate/{route}.jsonl --candidates-output null")
    return 0


def grpo_job(job) -> int:
    return run_route("grpo", job)


def rloo_job(job) -> int:
    return run_route("rloo", job)


def dpo_job(job) -> int:
    return run_route("dpo", job)


def conditioned_job(job) -> int:
    return run_route("conditioned", job)
