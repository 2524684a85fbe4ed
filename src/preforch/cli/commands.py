"""The command table: every command whose settings are one config class, in one place.

A :class:`ConfigCommand` reads ``--config FILE.yaml``, takes one ``--flag`` per config field (flags override the
file), builds the config and hands it to its job. Config classes and jobs are named by dotted path
(``module:name``, resolved by :func:`resolve`): the config modules are light (no torch) and imported when the
parser is built; the jobs (each recipe's ``run``) load torch, so they are imported only when their command runs
(importing every recipe up front would cost every `preforch --help` ~0.24 s: benchmarks/cli_start.py).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from preforch.config import add_config_args, build_config, overrides_from


def resolve(path: str):
    """The object a dotted path ``"module:name"`` names (one import)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ConfigCommand:
    """One command: where it sits (``path``, e.g. ("adapter", "train")), its ``config`` class ("module:Class"),
    the job that ``run`` s the built config ("module:function", returns the exit status) and its help texts. ``extra`` adds flags
    before the config's own; ``skip`` names the config fields those flags replace."""

    path: tuple[str, ...]
    config: str
    run: str
    help: str
    description: str
    config_help: str
    config_metavar: str | None = None
    skip: tuple[str, ...] = ()
    extra: Callable[[argparse.ArgumentParser], None] | None = None

    def config_class(self) -> type:
        return resolve(self.config)

    def add_to(self, sub) -> None:
        """Add this command's parser to the subparsers ``sub``."""
        parser = sub.add_parser(self.path[-1], help=self.help, description=self.description)
        parser.add_argument("--config", metavar=self.config_metavar, help=self.config_help)
        if self.extra is not None:
            self.extra(parser)
        add_config_args(parser, self.config_class(), skip=self.skip)
        parser.set_defaults(func=self.invoke)

    def invoke(self, args: argparse.Namespace) -> int:
        cls = self.config_class()
        return resolve(self.run)(build_config(cls, args.config, overrides_from(args, cls)))


@dataclass(frozen=True)
class CommandGroup:
    """A command with subcommands (``preforch adapter train``): its help and how its subcommands are listed."""

    name: str
    help: str
    description: str
    dest: str
    metavar: str = "SUBCOMMAND"


def _generate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompts", nargs="+", metavar="P", default=None, help="prompts given inline")
    parser.add_argument("--all-candidates", dest="all_candidates", action="store_true", default=None,
                        help="best-of-N: also write every candidate with its raw/normalised scores and R")


# ---- the table ------------------------------------------------------------------------------------------------

GROUPS = {
    "adapter": CommandGroup("adapter", "train the preference adapter", "Preference-adapter commands.",
                            "adapter_command"),
    "evaluate": CommandGroup("evaluate", "evaluate an adapter or responses against fixed weightings",
                             "Evaluation reports (report.json, report.md, PNG plots) in an output folder.",
                             "evaluate_command"),
    "rm": CommandGroup("rm", "train reward heads", "Reward-model commands.", "rm_command"),
    "align": CommandGroup("align", "train the policy with prompt-aware weights (GRPO, RLOO, DPO, RiC)",
                          "Policy training routes. Settings come from --config FILE.yaml; flags override them. Each "
                          "run writes OUTPUT_DIR/{run_config.json,checkpoints/,final/}.", "align_command", "ROUTE"),
}

_OVERRIDE = "Settings come from --config FILE.yaml; flags override them."
#: route → (config class, what it does); the texts of `preforch align ROUTE --help`.
ALIGN_ROUTES = {
    "grpo": ("GRPOJob", "GRPO on R(x, y) = sum_k w_k(x) s~_k(x, y) with per-prompt weights (TRL GRPOTrainer)"),
    "rloo": ("RLOOJob", "RLOO on the same per-prompt-weighted reward (TRL RLOOTrainer)"),
    "dpo": ("DPOJob", "DPO on pairs labelled by R with a minimum margin, optional MODPO-style margin"),
    "conditioned": ("ConditionedJob", "Rewards-in-Context SFT on score-tagged prompts (TRL SFTTrainer)"),
}

COMMANDS = [
    ConfigCommand(
        ("adapter", "train"), "preforch.recipes.configs:TrainAdapterJob", "preforch.recipes.adapter_train:run",
        help="train an adapter from preference data",
        description="Train a PRO preference adapter: per-prompt objective weights learnt from the normalised scores "
                    "of preferred responses. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/)"),
    ConfigCommand(
        ("evaluate", "adapter"), "preforch.recipes.configs:EvaluateAdapterConfig", "preforch.recipes.evaluate:run_adapter",
        help="held-out KL, top-1, calibration and pairwise accuracy vs fixed weights",
        description="Evaluate a trained adapter on held-out prompts: KL to w*, top-1 agreement, calibration, and the "
                    "pairwise accuracy of the scalarised reward with the adapter's weights vs uniform vs every fixed "
                    "lattice vector (the best one chosen on the training split). " + _OVERRIDE,
        config_help="YAML file of settings (see configs/evaluate_adapter.yaml)"),
    ConfigCommand(
        ("evaluate", "responses"), "preforch.recipes.configs:EvaluateResponsesConfig", "preforch.recipes.evaluate:run_responses",
        help="prompt-aware vs fixed weightings on scored responses: fronts, hypervolume",
        description="Mean normalised reward per objective of responses (best-of-N candidates or one response per "
                    "policy) under the prompt-aware weighting and every fixed weighting; the fixed Pareto front, "
                    "where the prompt-aware point lies, hypervolumes, per prompt kind. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/evaluate_responses.yaml)"),
    ConfigCommand(
        ("evaluate", "routing"), "preforch.recipes.configs:EvaluateRoutingConfig", "preforch.recipes.evaluate_routing:run",
        help="do the weights go where they should? AUC and top-1 share on labelled prompts",
        description="Routing on labelled prompts: per objective, the AUC of its weight for prompts labelled with it "
                    "vs the rest, mean weights per label, the share of prompts whose largest weight is the expected "
                    "objective (95% bootstrap intervals by prompt), a calibration table, per-group and pooled "
                    "tables; writes report.json, report.txt and weights_by_label.png. Labels come from an 'expected' "
                    "column or label.<objective> columns; weights from --adapter or --weights-file. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/evaluate_routing.yaml)"),
    ConfigCommand(
        ("score",), "preforch.recipes.configs:ScoreConfig", "preforch.recipes.score:run",
        help="score preference data with reward models and rules",
        description="Score the preferred (and rejected) response of every row with the configured scorers and write "
                    "the same rows with score.<objective> and score_rejected.<objective> columns. " + _OVERRIDE
                    + " Runs under torchrun / accelerate launch with several processes, each scoring a shard.",
        config_help="YAML file of settings (see configs/score.yaml)"),
    ConfigCommand(
        ("rm", "train"), "preforch.rewards.head_config:RMTrainConfig", "preforch.recipes.rm_train:run",
        help="train one reward head on chosen/rejected pairs",
        description="Train one reward head with the Bradley–Terry loss on chosen/rejected pairs, split by prompt; "
                    "write the heads folder, MODEL_CARD.md and metrics.json. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/rm_harmless.yaml)"),
    ConfigCommand(
        ("generate",), "preforch.recipes.configs:GenerateJobConfig", "preforch.recipes.generate:run",
        help="sample replies; with --best-of N keep the best by the weighted reward; or condition them",
        description="Sample replies from a policy (default: the embedded SmolLM2). With --best-of N, sample N replies "
                    "per prompt, score them with the configured scorers (default: the built-in harmless/helpful/"
                    "concise models), and keep the one with the highest R = sum_k w_k s~_k, weighted per prompt by "
                    "--adapter, by fixed --user-weights, or a --blend of both. With --strategy conditioned, --policy "
                    "is a folder written by `preforch align conditioned`: each prompt is tagged with the desired "
                    "scores its weights imply (the adapter's objectives matched to the tags by name). Writes JSONL.",
        config_help="settings file (flags override it)", config_metavar="FILE.yaml",
        skip=("prompts", "all_candidates", "scorers"), extra=_generate_flags),
    ConfigCommand(
        ("serve",), "preforch.serve.config:ServeConfig", "preforch.serve.server:serve",
        help="serve weights, scores and OpenAI-compatible chat completions over HTTP",
        description="Load an adapter, reward scorers and a policy once, then serve GET /health, POST /v1/weights, "
                    "POST /v1/score and POST /v1/chat/completions (OpenAI-compatible, streamed with stream: true; "
                    "extension fields 'preference', 'strategy' (sample, best_of_n, conditioned), 'best_of', "
                    "'return_candidates'), and a playground page at /. Concurrent requests share model passes "
                    "(micro-batching). Binds 127.0.0.1 unless --host says otherwise. An optional bearer key is read "
                    "from the environment variable named by --api-key-env (default PREFORCH_API_KEY) or from "
                    "--api-key-file, never from a flag. " + _OVERRIDE + " See docs/serving.md.",
        config_help="YAML file of settings (see configs/serve.yaml)"),
    *[ConfigCommand(("align", route), f"preforch.align.config:{cls}", f"preforch.recipes.align:{route}_job", help=text,
                    description=text + ".", config_help="YAML file of settings (see configs/align/)")
      for route, (cls, text) in ALIGN_ROUTES.items()],
]
