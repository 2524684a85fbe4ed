"""`preforch generate`: sample replies from a policy, or best-of-N with prompt-aware weights."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    from preforch.align.best_of_n import GenerateJobConfig
    from preforch.config import add_config_args

    p = sub.add_parser(
        "generate", help="sample replies; with --best-of N keep the best by the weighted reward; or condition them",
        description="Sample replies from a policy (default: the embedded SmolLM2). With --best-of N, sample N "
                    "replies per prompt, score them with the configured scorers (default: the built-in "
                    "harmless/helpful/concise models), and keep the one with the highest R = sum_k w_k s~_k, "
                    "weighted per prompt by --adapter, by fixed --user-weights, or a --blend of both. With "
                    "--strategy conditioned, --policy is a folder written by `preforch align conditioned`: each "
                    "prompt is tagged with the desired scores its weights imply (the adapter's objectives matched "
                    "to the tags by name). Writes JSONL.")
    p.add_argument("--config", metavar="FILE.yaml", help="settings file (flags override it)")
    p.add_argument("--prompts", nargs="+", metavar="P", default=None, help="prompts given inline")
    p.add_argument("--all-candidates", dest="all_candidates", action="store_true", default=None,
                   help="best-of-N: also write every candidate with its raw/normalised scores and R")
    add_config_args(p, GenerateJobConfig, skip=("prompts", "all_candidates", "scorers"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from preforch.align.best_of_n import GenerateJobConfig, generate_job
    from preforch.config import build_config, overrides_from

    config = build_config(GenerateJobConfig, args.config, overrides_from(args, GenerateJobConfig))
    result = generate_job(config)
    if result.output is None:
        for rec in result.records:
            import json

            print(json.dumps(rec, ensure_ascii=False))
    strategy = config.chosen_strategy()
    what = {"best_of_n": f"best-of-{config.best_of} over {result.objectives}", "sample": "sampled",
            "conditioned": f"conditioned on {result.objectives}"}[strategy]
    where = result.output or "stdout"
    print(f"{len(result.records)} prompts {what} in {result.seconds:.1f} s -> {where}", file=sys.stderr)
    return 0
