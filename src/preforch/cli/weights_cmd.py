"""`preforch weights`: per-prompt objective weights from a trained adapter, as JSONL."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="infer per-prompt objective weights with an adapter",
                       description="Infer per-prompt objective weights with a trained adapter. Prompts come from "
                                   "arguments or --prompts-file; one JSON line per prompt is written.")
    p.add_argument("--adapter", required=True, help="adapter folder (written by `preforch adapter train`)")
    p.add_argument("prompts", nargs="*", help="prompts to weigh")
    p.add_argument("--prompts-file", help="a text file (one prompt per line) or a data file with a 'prompt' column "
                                          "(.jsonl/.json/.parquet/.csv)")
    p.add_argument("--user-weights", help="your own weights, comma-separated in the adapter's objective order "
                                          "(e.g. 0.2,0.5,0.3); blended with the adapter's by --blend")
    p.add_argument("--blend", type=float, default=1.0,
                   help="with --user-weights: lambda in lambda*w_user + (1-lambda)*w(x); 1 = your weights alone "
                        "(default: 1)")
    p.add_argument("--output", help="JSONL file to write (default: standard output)")
    p.add_argument("--batch-size", type=int, default=64, help="prompts per encoder batch (default: 64)")
    p.add_argument("--device", default=None, help="torch device (default: the adapter's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from preforch.adapter import PreferenceAdapter
    from preforch.atomic import write_text
    from preforch.errors import PreforchError

    from preforch.data.load import read_prompts_file

    prompts = list(args.prompts) + (read_prompts_file(args.prompts_file) if args.prompts_file else [])
    if not prompts:
        raise PreforchError("no prompts: give them as arguments or with --prompts-file")
    empty = [i + 1 for i, p in enumerate(prompts) if not p.strip()]
    if empty:
        raise PreforchError(f"prompt {empty[0]} is empty")
    adapter = PreferenceAdapter.from_pretrained(args.adapter, device=args.device)
    from preforch.weighting import blend_weights

    inferred = adapter.predict_weights(prompts, batch_size=args.batch_size, progress=len(prompts) > 256)
    user = None
    if args.user_weights:
        try:
            user = [float(x) for x in args.user_weights.split(",")]
        except ValueError:
            raise PreforchError(f"--user-weights: expected comma-separated numbers, got {args.user_weights!r}") from None
    weights = blend_weights(inferred, user, args.blend)
    lines = []
    for p, w, w_adapter in zip(prompts, weights, inferred):
        record = {"prompt": p, "weights": dict(zip(adapter.objectives, map(float, w)))}
        if user is not None:
            record["adapter_weights"] = dict(zip(adapter.objectives, map(float, w_adapter)))
        lines.append(json.dumps(record, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    if args.output:
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
