"""`preforch serve`: the prompt-aware HTTP service (weights, scores, OpenAI-compatible chat)."""

from __future__ import annotations

import argparse

from preforch.config import add_config_args, build_config, overrides_from
from preforch.serve.config import ServeConfig


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve weights, scores and OpenAI-compatible chat completions over HTTP",
        description="Load an adapter, reward scorers and a policy once, then serve GET /health, POST /v1/weights, "
                    "POST /v1/score and POST /v1/chat/completions (OpenAI-compatible, streamed with stream: true; "
                    "extension fields 'preference', 'strategy' (sample, best_of_n, conditioned), 'best_of', "
                    "'return_candidates'), and a playground page at /. Concurrent requests share model passes "
                    "(micro-batching). Binds 127.0.0.1 unless --host says otherwise. An optional bearer key is "
                    "read from the environment variable named by --api-key-env (default PREFORCH_API_KEY) or "
                    "from --api-key-file, never from a flag. Settings come from --config FILE.yaml; flags "
                    "override them. See docs/serving.md.")
    p.add_argument("--config", help="YAML file of settings (see configs/serve.yaml)")
    add_config_args(p, ServeConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from preforch.serve.server import serve

    overrides = overrides_from(args, ServeConfig)
    serve(build_config(ServeConfig, args.config, overrides))
    return 0
