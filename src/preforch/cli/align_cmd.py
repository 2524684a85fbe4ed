"""`preforch align grpo|rloo|dpo|conditioned`: train the policy with prompt-aware weights (needs preforch[align])."""

from __future__ import annotations

import argparse

from preforch.align.config import ConditionedJob, DPOJob, GRPOJob, RLOOJob
from preforch.config import add_config_args, build_config, overrides_from

ROUTES = {
    "grpo": (GRPOJob, "GRPO on R(x, y) = sum_k w_k(x) s~_k(x, y) with per-prompt weights (TRL GRPOTrainer)"),
    "rloo": (RLOOJob, "RLOO on the same per-prompt-weighted reward (TRL RLOOTrainer)"),
    "dpo": (DPOJob, "DPO on pairs labelled by R with a minimum margin, optional MODPO-style margin"),
    "conditioned": (ConditionedJob, "Rewards-in-Context SFT on score-tagged prompts (TRL SFTTrainer)"),
}


def add_parser(sub) -> None:
    p = sub.add_parser("align", help="train the policy with prompt-aware weights (GRPO, RLOO, DPO, RiC)",
                       description="Policy training routes. Settings come from --config FILE.yaml; flags override "
                                   "them. Each run writes OUTPUT_DIR/{run_config.json,checkpoints/,final/}.")
    s = p.add_subparsers(dest="align_command", metavar="ROUTE")
    s.required = True
    for name, (cls, text) in ROUTES.items():
        r = s.add_parser(name, help=text, description=text + ".")
        r.add_argument("--config", help="YAML file of settings (see configs/align/)")
        add_config_args(r, cls)
        r.set_defaults(func=run, align_cls=cls, align_route=name)


def run(args: argparse.Namespace) -> int:
    cls = args.align_cls
    job = build_config(cls, args.config, overrides_from(args, cls))
    if args.align_route in ("grpo", "rloo"):
        from preforch.align.grpo import run_rl as train
    elif args.align_route == "dpo":
        from preforch.align.dpo import run_dpo as train
    else:
        from preforch.align.conditioned import run_conditioned as train
    result = train(job)
    print(f"{args.align_route}: {result.report['global_step']} steps in {result.seconds:.1f} s; "
          f"policy written to {result.final_dir}")
    return 0
