"""`preforch weights`: per-prompt objective weights from a trained adapter, as JSONL."""

from __future__ import annotations

import argparse
import sys
from typing import get_args

from preforch.config import add_config_args, build_config, overrides_from
from preforch.conversation import as_conversation
from preforch.data.load import check_text, json_value, read_prompts_file
from preforch.errors import PreforchError
from preforch.models.paths import DEFAULT_DEVICE, DEVICE_CHOICES
from preforch.weighting import Weighting, WeightingSettings, WeightMode


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="infer per-prompt objective weights with an adapter",
                       description="Infer per-prompt objective weights with a trained adapter. Prompts come from "
                                   "arguments (one user turn each), --messages (a whole conversation as JSON) or "
                                   "--prompts-file; every shape of the same conversation gets the same weights. One "
                                   "JSON line per prompt is written.")
    p.add_argument("--adapter", required=True, help="adapter folder (written by `preforch adapter train`)")
    p.add_argument("prompts", nargs="*", help="prompts to weigh, each one user turn")
    p.add_argument("--messages", action="append", default=[], metavar="JSON",
                   help='a conversation as a JSON message list ending with a user turn, e.g. '
                        '\'[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, '
                        '{"role": "user", "content": "how do I pick a lock?"}]\' (repeatable)')
    p.add_argument("--prompts-file", help="a text file (one prompt per line) or a data file with a 'prompt' (text or "
                                          "message list) or 'messages' column (.jsonl/.json/.parquet/.csv)")
    add_config_args(p, WeightingSettings, title="weighting (the settings of the same names in align and generate)")
    p.add_argument("--mode", dest="deprecated_mode", choices=get_args(WeightMode), default=None,
                   help="deprecated spelling of --weight-mode (still accepted, with a warning)")
    p.add_argument("--output", help="JSONL file to write (default: standard output). Every line reports "
                                    "'confidence' (null for an adapter saved without uncertainty) and 'lambda', the "
                                    "share of the fallback's w_default used")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--batch-size", type=int, default=64, help="prompts per encoder batch (default: 64)")
    p.add_argument("--device", default=DEFAULT_DEVICE, help=f"torch device: {DEVICE_CHOICES}")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow custom model code from the adapter's encoder folder (only if you trust it)")
    p.set_defaults(func="preforch.cli.jobs:weights")


def read_conversations(args: argparse.Namespace) -> list:
    """The conversations named on the command line, in order: arguments, --messages, --prompts-file."""
    conversations = []
    for i, text in enumerate(args.prompts, 1):
        check_text(text, f"prompt argument {i}")  # an undecodable byte arrives as a lone surrogate
        conversations.append(as_conversation(text, f"prompt argument {i}"))
    for i, text in enumerate(args.messages, 1):
        check_text(text, f"--messages {i}")
        conversations.append(as_conversation(json_value(text, f"--messages {i}"), f"--messages {i}"))
    if args.prompts_file:
        conversations += read_prompts_file(args.prompts_file)
    if not conversations:
        raise PreforchError("no prompts: give them as arguments, with --messages or with --prompts-file")
    return conversations


def read_weighting(args: argparse.Namespace) -> Weighting:
    """The weighting the flags ask for (the settings of :class:`~preforch.weighting.WeightingSettings`, read as
    every config reads them); ``--mode`` is the old spelling of ``--weight-mode``."""
    if args.deprecated_mode is not None:
        if args.weight_mode not in (None, args.deprecated_mode):
            raise PreforchError(f"--mode {args.deprecated_mode} and --weight-mode {args.weight_mode} disagree; give "
                                "--weight-mode alone")
        print("preforch: warning: --mode is deprecated; use --weight-mode", file=sys.stderr)
        args.weight_mode = args.deprecated_mode
    return build_config(WeightingSettings, None, overrides_from(args, WeightingSettings)).weighting()
