"""Issue 7, target 3: re-running `preforch score` on an already scored data set, against the first run.
Each repetition starts from an empty cache file; the whole command (a subprocess) and the scoring part it
reports are timed, and the start-up (interpreter + imports, model loading) is measured on its own.
Prints one table.

    .venv/bin/python benchmarks/perf_cache.py [--rows 64] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import perf_common as pc


def run_cli(args: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "preforch.cli.main", *args], env=env, capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise pc.BrokenRun(f"preforch {' '.join(args[:1])} exited {proc.returncode}: {proc.stderr[-500:]}")
    return seconds, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="example rows (each has 2 responses)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the command (default: all)")
    parser.add_argument("--scorers", choices=["auto", "builtin", "heads"], default="auto")
    args = parser.parse_args()
    import numpy as np
    import yaml

    threads = pc.set_threads(args.threads)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}

    with tempfile.TemporaryDirectory(prefix="perf_cache_") as tmp:
        folder = Path(tmp)
        data, specs, what = pc.score_job(folder, args.rows, args.scorers)
        common = ["score", "--input", str(data), "--scorers", yaml.safe_dump(specs, default_flow_style=True),
                  "--progress", "false", "--overwrite", "true"]
        first, second, first_s, second_s = [], [], [], []
        reference = None
        for rep in range(args.repeats):
            cache = folder / f"cache{rep}.sqlite"
            t1, out1 = run_cli([*common, "--output", str(folder / "first.jsonl"), "--cache-path", str(cache)], env)
            t2, out2 = run_cli([*common, "--output", str(folder / "second.jsonl"), "--cache-path", str(cache)], env)
            p1, p2 = pc.parse_score_output(out1), pc.parse_score_output(out2)
            if p2.get("hits") != p2.get("lookups") or not p2.get("lookups"):
                raise pc.BrokenRun(f"re-run was not served from the cache: {out2.strip()}")
            s1, s2 = pc.read_scores(folder / "first.jsonl"), pc.read_scores(folder / "second.jsonl")
            if not np.array_equal(s1, s2) or not np.isfinite(s1).all():
                raise pc.BrokenRun("cached scores differ from the first run's")
            if reference is not None and not np.allclose(reference, s1, atol=1e-5):
                raise pc.BrokenRun("two first runs gave different scores")
            reference = s1
            first.append(t1), second.append(t2), first_s.append(p1["scoring"]), second_s.append(p2["scoring"])
            loading = p2["loading"]
        start_up = [run_cli(["env"], env)[0] for _ in range(args.repeats)]
        imports = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch, transformers, preforch.recipes.score, "
                            "preforch.rewards.heads"], env=env, check=True)
            imports.append(time.perf_counter() - t0)
    m = pc.median
    rows = [
        ["whole command, first run (empty cache)", f"{m(first):.2f}", ""],
        ["whole command, re-run (all cached)", f"{m(second):.2f}",
         f"{100 * m(second) / m(first):.1f}% of the first (target <= 5%)"],
        ["scoring part, first run", f"{m(first_s):.3f}", ""],
        ["scoring part, re-run (cache lookups; the command prints 2 decimals)", f"{m(second_s):.2f}",
         f"{100 * max(m(second_s), 0.005) / m(first_s):.2f}% of the first, at most"],
        ["start-up: `preforch env` (interpreter + CLI)", f"{m(start_up):.2f}", ""],
        ["start-up: import torch + transformers + preforch scoring", f"{m(imports):.2f}", ""],
        ["re-run's model loading (reported by the command)", f"{loading:.2f}", ""],
    ]
    pc.print_table(f"`preforch score` re-run on a scored data set, {args.rows} rows ({2 * args.rows} responses), "
                   f"K=3, {threads} threads, median of {args.repeats}",
                   ["case", "median s", "ratio"], rows,
                   [f"scorers: {what}; every re-run: all lookups were cache hits and the scores equal the first "
                    f"run's (checked)"])
    return 0


if __name__ == "__main__":
    pc.run_main(main)
