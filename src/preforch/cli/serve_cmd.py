"""`preforch serve`: the prompt-aware HTTP service (weights, scores, OpenAI-compatible chat)."""

from __future__ import annotations

import argparse

import yaml

from preforch.config import add_config_args, build_config, overrides_from
from preforch.errors import PreforchError
from preforch.serve.config import ServeConfig


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve weights, scores and OpenAI-compatible chat completions over HTTP",
        description="Load an adapter, reward scorers and a policy once, then serve GET /health, POST /v1/weights, "
                    "POST /v1/score and POST /v1/chat/completions (OpenAI-compatible; extension fields "
                    "'preference', 'strategy', 'best_of'). Binds 127.0.0.1 unless --host says otherwise. "
                    "Settings come from --config FILE.yaml; flags override them. See docs/serving.md.")
    p.add_argument("--config", help="YAML file of settings (see configs/serve.yaml)")
    p.add_argument("--scorers", metavar="YAML", default=None,
                   help="scorer specs as a YAML list, e.g. '[{type: builtin}]' (overrides the config's list)")
    add_config_args(p, ServeConfig, skip=("scorers",))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from preforch.serve.server import serve

    overrides = overrides_from(args, ServeConfig)
    if args.scorers is not None:
        try:
            overrides["scorers"] = yaml.safe_load(args.scorers)
        except yaml.YAMLError as err:
            raise PreforchError(f"--scorers: not valid YAML ({err})") from None
        if not isinstance(overrides["scorers"], list):
            raise PreforchError(f"--scorers: expected a list of scorer specs, got {args.scorers!r}")
    serve(build_config(ServeConfig, args.config, overrides))
    return 0
