"""`preforch adapter train`: train the PRO preference adapter."""

from __future__ import annotations

import argparse

from preforch.adapter.job import TrainAdapterJob
from preforch.config import add_config_args, build_config, overrides_from


def add_parser(sub) -> None:
    p = sub.add_parser("adapter", help="train the preference adapter", description="Preference-adapter commands.")
    s = p.add_subparsers(dest="adapter_command", metavar="SUBCOMMAND")
    s.required = True
    t = s.add_parser("train", help="train an adapter from preference data",
                     description="Train a PRO preference adapter: per-prompt objective weights learnt from the "
                                 "normalised scores of preferred responses. Settings come from --config FILE.yaml; "
                                 "flags override them.")
    t.add_argument("--config", help="YAML file of settings (see configs/)")
    add_config_args(t, TrainAdapterJob)
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from preforch.adapter.job import run_train_job

    job = build_config(TrainAdapterJob, args.config, overrides_from(args, TrainAdapterJob))
    run_train_job(job)
    return 0
