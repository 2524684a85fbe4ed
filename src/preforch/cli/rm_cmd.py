"""`preforch rm train`: train a Bradley–Terry reward head on a frozen (or fine-tuned) sentence encoder."""

from __future__ import annotations

import argparse

from preforch.config import add_config_args, build_config, overrides_from
from preforch.rewards.train_rm import RMTrainConfig


def add_parser(sub) -> None:
    p = sub.add_parser("rm", help="train reward heads", description="Reward-model commands.")
    s = p.add_subparsers(dest="rm_command", metavar="SUBCOMMAND")
    s.required = True
    t = s.add_parser("train", help="train one reward head on chosen/rejected pairs",
                     description="Train one reward head with the Bradley–Terry loss on chosen/rejected pairs, split "
                                 "by prompt; write the heads folder, MODEL_CARD.md and metrics.json. Settings come "
                                 "from --config FILE.yaml; flags override them.")
    t.add_argument("--config", help="YAML file of settings (see configs/rm_harmless.yaml)")
    add_config_args(t, RMTrainConfig)
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from preforch.rewards.train_rm import run_rm_train

    config = build_config(RMTrainConfig, args.config, overrides_from(args, RMTrainConfig))
    result = run_rm_train(config)
    m = result.metrics
    lo, hi = m["heldout_accuracy_ci95"]
    print(f"{config.objective}: held-out pairwise accuracy {m['heldout_accuracy']:.3f} (95% CI {lo:.3f}-{hi:.3f}, "
          f"{m['n_pairs']['heldout']} pairs); wrote {config.output_dir}")
    return 0
