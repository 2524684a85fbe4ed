"""`preforch evaluate adapter|responses`: reports with fixed-weight baselines, Pareto fronts and hypervolume."""

from __future__ import annotations

import argparse

from preforch.config import add_config_args, build_config, overrides_from
from preforch.evaluate.pipeline import EvaluateAdapterConfig, EvaluateResponsesConfig
from preforch.evaluate.recipes import STAGES


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate an adapter or responses against fixed weightings",
                       description="Evaluation reports (report.json, report.md, PNG plots) in an output folder.")
    s = p.add_subparsers(dest="evaluate_command", metavar="SUBCOMMAND")
    s.required = True
    a = s.add_parser("adapter", help="held-out KL, top-1, calibration and pairwise accuracy vs fixed weights",
                     description="Evaluate a trained adapter on held-out prompts: KL to w*, top-1 agreement, "
                                 "calibration, and the pairwise accuracy of the scalarised reward with the adapter's "
                                 "weights vs uniform vs every fixed lattice vector (the best one chosen on the "
                                 "training split). Settings come from --config FILE.yaml; flags override them.")
    a.add_argument("--config", help="YAML file of settings (see configs/evaluate_adapter.yaml)")
    add_config_args(a, EvaluateAdapterConfig)
    a.set_defaults(func=run_adapter)
    r = s.add_parser("responses", help="prompt-aware vs fixed weightings on scored responses: fronts, hypervolume",
                     description="Mean normalised reward per objective of responses (best-of-N candidates or one "
                                 "response per policy) under the prompt-aware weighting and every fixed weighting; the "
                                 "fixed Pareto front, where the prompt-aware point lies, hypervolumes, per prompt "
                                 "kind. Settings come from --config FILE.yaml; flags override them.")
    r.add_argument("--config", help="YAML file of settings (see configs/evaluate_responses.yaml)")
    add_config_args(r, EvaluateResponsesConfig)
    r.set_defaults(func=run_responses)
    c = s.add_parser("recipe", help="run a recipe: score, train the adapter, evaluate it",
                     description="Run the sections of a recipe file (configs/recipes/*.yaml) in order: score -> "
                                 "adapter -> evaluate_adapter; each section holds that command's settings.")
    c.add_argument("--config", required=True, help="recipe YAML file (see configs/recipes/)")
    c.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated stages to run [default: {','.join(STAGES)}]")
    c.set_defaults(func=run_recipe_cmd)


def run_adapter(args: argparse.Namespace) -> int:
    from preforch.evaluate.pipeline import run_adapter_evaluation

    run_adapter_evaluation(build_config(EvaluateAdapterConfig, args.config, overrides_from(args, EvaluateAdapterConfig)))
    return 0


def run_responses(args: argparse.Namespace) -> int:
    from preforch.evaluate.pipeline import run_responses_evaluation

    config = build_config(EvaluateResponsesConfig, args.config, overrides_from(args, EvaluateResponsesConfig))
    run_responses_evaluation(config)
    return 0


def run_recipe_cmd(args: argparse.Namespace) -> int:
    from preforch.evaluate.recipes import read_recipe, run_recipe

    stages = tuple(x for x in args.stages.split(",") if x)
    run_recipe(read_recipe(args.config), source=args.config, stages=stages)
    return 0
