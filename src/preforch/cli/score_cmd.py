"""`preforch score`: score every response of a preference data set on every objective."""

from __future__ import annotations

import argparse

from preforch.config import add_config_args, build_config, overrides_from
from preforch.rewards.pipeline import ScoreConfig


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score", help="score preference data with reward models and rules",
        description="Score the preferred (and rejected) response of every row with the configured scorers and "
                    "write the same rows with score.<objective> and score_rejected.<objective> columns. Settings "
                    "come from --config FILE.yaml; flags override them. Runs under torchrun / accelerate launch "
                    "with several processes, each scoring a shard.")
    p.add_argument("--config", help="YAML file of settings (see configs/score.yaml)")
    add_config_args(p, ScoreConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from preforch.rewards.pipeline import score_dataset

    overrides = overrides_from(args, ScoreConfig)
    config = build_config(ScoreConfig, args.config, overrides)
    result = score_dataset(config)
    if not _is_main_process():
        return 0
    lookups = result.cache_hits + result.scored
    print(f"scored {result.rows} rows ({result.responses} responses) on {len(result.objectives)} objective(s) "
          f"{result.objectives} with {result.processes} process(es)")
    print(f"time {result.seconds:.2f} s scoring (+{result.load_seconds:.2f} s loading), "
          f"{result.responses_per_second:.1f} responses/s")
    print(f"cache hits {result.cache_hits} of {lookups} scorer lookups" if config.cache else "cache off")
    if result.truncated:
        print(f"truncated {result.truncated} input(s) longer than max_length")
    print(f"wrote {result.output}")
    return 0


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0
