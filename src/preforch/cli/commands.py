"""The command table: every command whose settings are one config class, in one place.

A :class:`ConfigCommand` reads ``--config FILE.yaml``, takes one ``--flag`` per config field (flags override the
file), builds the config and hands it to its job. The config classes are named as ``module:Class`` and imported
when the parser is built; the jobs load torch only when they run, so ``import preforch.cli.main`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from preforch.config import add_config_args, build_config, overrides_from


@dataclass(frozen=True)
class ConfigCommand:
    """One command: where it sits (``path``, e.g. ("adapter", "train")), its ``config`` class ("module:Class"),
    the job that ``run`` s the built config (returns the exit status) and its help texts. ``extra`` adds flags
    before the config's own; ``skip`` names the config fields those flags replace."""

    path: tuple[str, ...]
    config: str
    run: Callable[[object], int]
    help: str
    description: str
    config_help: str
    config_metavar: str | None = None
    skip: tuple[str, ...] = ()
    extra: Callable[[argparse.ArgumentParser], None] | None = None

    def config_class(self) -> type:
        module, name = self.config.split(":")
        return getattr(importlib.import_module(module), name)

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
        return self.run(build_config(cls, args.config, overrides_from(args, cls)))


@dataclass(frozen=True)
class CommandGroup:
    """A command with subcommands (``preforch adapter train``): its help and how its subcommands are listed."""

    name: str
    help: str
    description: str
    dest: str
    metavar: str = "SUBCOMMAND"


# ---- the jobs, and what each prints ---------------------------------------------------------------------------
# Each job imports its recipe when it runs: importing every recipe up front takes `import preforch.cli.main`
# from 0.09 s to 0.33 s on the 2-core CPU, paid by every --help (benchmarks/cli_start.py, BENCHMARKS.md).


def next_step(*commands: str, file=None) -> None:
    """Print the natural next command(s) after a job."""
    for command in commands:
        print(f"next: {command}", file=file or sys.stdout)


def train_adapter(job) -> int:
    from preforch.recipes.adapter_train import run_train_job

    run_train_job(job)
    out = job.output
    next_step(f'preforch weights --adapter {out} "How do I pick a lock?" "Write a haiku about rain"',
              "preforch evaluate adapter --config configs/evaluate_adapter.yaml"
              + ("" if out == "runs/example" else f" --adapter {out} --data {out}/scores.parquet"))
    return 0


def evaluate_adapter(config) -> int:
    from preforch.recipes.evaluate import run_adapter_evaluation

    out = run_adapter_evaluation(config)
    print(f"wrote {out}/report.md, {out}/report.json" + (" and plots" if config.plots else ""))
    next_step("preforch generate --config configs/generate.yaml --prompts-file configs/prompts.txt"
              + ("" if config.adapter == "runs/example" else f" --adapter {config.adapter}"))
    return 0


def evaluate_responses(config) -> int:
    from preforch.recipes.evaluate import run_responses_evaluation

    out = run_responses_evaluation(config)
    print(f"wrote {out}/report.md, {out}/report.json" + (" and plots" if config.plots else ""))
    if config.adapter:
        next_step("preforch align grpo --config configs/align/grpo.yaml"
                  + ("" if config.adapter == "runs/example" else f" --adapter {config.adapter}"))
    return 0


def evaluate_routing(config) -> int:
    from preforch.evaluate.routing import routing_text
    from preforch.recipes.evaluate_routing import PLOT, REPORT_JSON, REPORT_TXT, run_routing_evaluation

    ev = run_routing_evaluation(config)
    out = config.output_dir
    print(routing_text(ev))
    print(f"wrote {out}/{REPORT_TXT}, {out}/{REPORT_JSON}" + (f" and {out}/{PLOT}" if config.plots else ""))
    if config.adapter:
        next_step("preforch evaluate adapter --config configs/evaluate_adapter.yaml"
                  + ("" if config.adapter == "runs/example" else f" --adapter {config.adapter}"))
    return 0


def score(config) -> int:
    from preforch.recipes.score import score_dataset

    result = score_dataset(config)
    if int(os.environ.get("RANK", "0")) != 0:  # only the main process of a torchrun reports
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
    next_step(f"preforch adapter train --data {result.output} --output runs/adapter  (scores are read, not recomputed)")
    return 0


def train_reward_model(config) -> int:
    from preforch.recipes.rm_train import run_rm_train

    metrics = run_rm_train(config).metrics
    for objective, m in metrics.get("objectives", {config.objective: metrics}).items():
        lo, hi = m["heldout_accuracy_ci95"]
        longer = m["baselines"]["longer_reply_wins"]
        print(f"{objective}: held-out pairwise accuracy {m['heldout_accuracy']:.3f} (95% CI {lo:.3f}-{hi:.3f}, "
              f"{m['n_pairs']['heldout']} pairs; the longer reply wins {longer:.3f})")
    print(f"wrote {config.output_dir}")
    next_step(f"use it as a scorer: scorers: [{{type: heads, path: {config.output_dir}}}] in a score, adapter or "
              "generate config")
    return 0


def generate(config) -> int:
    from preforch.recipes.generate import generate_job

    result = generate_job(config)
    if result.output is None:
        for rec in result.records:
            print(json.dumps(rec, ensure_ascii=False))
    what = {"best_of_n": f"best-of-{config.best_of} over {result.objectives}", "sample": "sampled",
            "conditioned": f"conditioned on {result.objectives}"}[config.chosen_strategy()]
    print(f"{len(result.records)} prompts {what} in {result.seconds:.1f} s -> {result.output or 'stdout'}"
          + (f"; every candidate -> {result.candidates_output}" if result.candidates_output else ""), file=sys.stderr)
    if result.candidates_output:
        default = result.candidates_output == "runs/generate/candidates.jsonl" and config.adapter == "runs/example"
        next_step("preforch evaluate responses --config configs/evaluate_responses.yaml"
                  + ("" if default else f" --responses {result.candidates_output}"
                     + (f" --adapter {config.adapter}" if config.adapter else " --adapter null")), file=sys.stderr)
    return 0


def serve(config) -> int:
    from preforch.serve.server import serve as run_server

    run_server(config)
    return 0


def align(route: str) -> Callable[[object], int]:
    """The job of one alignment route; prints the steps run and where the policy went."""

    def run(job) -> int:
        from preforch.recipes.align import train_route

        result = train_route(route, job)
        if int(os.environ.get("RANK", "0")) != 0:  # under torchrun / accelerate launch only rank 0 reports
            return 0
        print(f"{route}: {result.report['global_step']} steps in {result.seconds:.1f} s; "
              f"policy written to {result.final_dir}")
        strategy = " --strategy conditioned --best-of null" if route == "conditioned" else ""
        next_step(f"preforch generate --config configs/generate.yaml --prompts-file configs/prompts.txt "
                  f"--policy {result.final_dir}{strategy} --output runs/generate/{route}.jsonl --candidates-output null")
        return 0

    return run


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
        ("adapter", "train"), "preforch.recipes.adapter_train:TrainAdapterJob", train_adapter,
        help="train an adapter from preference data",
        description="Train a PRO preference adapter: per-prompt objective weights learnt from the normalised scores "
                    "of preferred responses. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/)"),
    ConfigCommand(
        ("evaluate", "adapter"), "preforch.recipes.evaluate:EvaluateAdapterConfig", evaluate_adapter,
        help="held-out KL, top-1, calibration and pairwise accuracy vs fixed weights",
        description="Evaluate a trained adapter on held-out prompts: KL to w*, top-1 agreement, calibration, and the "
                    "pairwise accuracy of the scalarised reward with the adapter's weights vs uniform vs every fixed "
                    "lattice vector (the best one chosen on the training split). " + _OVERRIDE,
        config_help="YAML file of settings (see configs/evaluate_adapter.yaml)"),
    ConfigCommand(
        ("evaluate", "responses"), "preforch.recipes.evaluate:EvaluateResponsesConfig", evaluate_responses,
        help="prompt-aware vs fixed weightings on scored responses: fronts, hypervolume",
        description="Mean normalised reward per objective of responses (best-of-N candidates or one response per "
                    "policy) under the prompt-aware weighting and every fixed weighting; the fixed Pareto front, "
                    "where the prompt-aware point lies, hypervolumes, per prompt kind. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/evaluate_responses.yaml)"),
    ConfigCommand(
        ("evaluate", "routing"), "preforch.recipes.evaluate_routing:EvaluateRoutingConfig", evaluate_routing,
        help="do the weights go where they should? AUC and top-1 share on labelled prompts",
        description="Routing on labelled prompts: per objective, the AUC of its weight for prompts labelled with it "
                    "vs the rest, mean weights per label, the share of prompts whose largest weight is the expected "
                    "objective (95% bootstrap intervals by prompt), a calibration table, per-group and pooled "
                    "tables; writes report.json, report.txt and weights_by_label.png. Labels come from an 'expected' "
                    "column or label.<objective> columns; weights from --adapter or --weights-file. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/evaluate_routing.yaml)"),
    ConfigCommand(
        ("score",), "preforch.recipes.score:ScoreConfig", score,
        help="score preference data with reward models and rules",
        description="Score the preferred (and rejected) response of every row with the configured scorers and write "
                    "the same rows with score.<objective> and score_rejected.<objective> columns. " + _OVERRIDE
                    + " Runs under torchrun / accelerate launch with several processes, each scoring a shard.",
        config_help="YAML file of settings (see configs/score.yaml)"),
    ConfigCommand(
        ("rm", "train"), "preforch.rewards.head_config:RMTrainConfig", train_reward_model,
        help="train one reward head on chosen/rejected pairs",
        description="Train one reward head with the Bradley–Terry loss on chosen/rejected pairs, split by prompt; "
                    "write the heads folder, MODEL_CARD.md and metrics.json. " + _OVERRIDE,
        config_help="YAML file of settings (see configs/rm_harmless.yaml)"),
    ConfigCommand(
        ("generate",), "preforch.recipes.generate:GenerateJobConfig", generate,
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
        ("serve",), "preforch.serve.config:ServeConfig", serve,
        help="serve weights, scores and OpenAI-compatible chat completions over HTTP",
        description="Load an adapter, reward scorers and a policy once, then serve GET /health, POST /v1/weights, "
                    "POST /v1/score and POST /v1/chat/completions (OpenAI-compatible, streamed with stream: true; "
                    "extension fields 'preference', 'strategy' (sample, best_of_n, conditioned), 'best_of', "
                    "'return_candidates'), and a playground page at /. Concurrent requests share model passes "
                    "(micro-batching). Binds 127.0.0.1 unless --host says otherwise. An optional bearer key is read "
                    "from the environment variable named by --api-key-env (default PREFORCH_API_KEY) or from "
                    "--api-key-file, never from a flag. " + _OVERRIDE + " See docs/serving.md.",
        config_help="YAML file of settings (see configs/serve.yaml)"),
    *[ConfigCommand(("align", route), f"preforch.align.config:{cls}", align(route), help=text,
                    description=text + ".", config_help="YAML file of settings (see configs/align/)")
      for route, (cls, text) in ALIGN_ROUTES.items()],
]
