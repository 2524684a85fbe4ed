"""Issue 7, target 6: `preforch score` in 2 processes (torchrun --nproc_per_node 2, gloo on CPU; see DESIGN.md
on why not `accelerate launch` on a CPU) against 1 process, on this machine's cores. Threads are set so the
processes do not fight: 1 process uses all cores, each of 2 processes gets half (OMP_NUM_THREADS, and the
pipeline sets torch threads to cores // world). Cache off; cases interleaved, median of ``--repeats``.
Prints one table.

    .venv/bin/python benchmarks/perf_multiproc.py [--rows 64] [--repeats 3]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="example rows (each has 2 responses)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scorers", choices=["auto", "builtin", "heads"], default="auto")
    args = parser.parse_args()
    import numpy as np
    import yaml

    cores = os.cpu_count() or 1
    pc.set_threads(cores)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="perf_mp_") as tmp:
        folder = Path(tmp)
        data, specs, what = pc.score_job(folder, args.rows, args.scorers)
        score_args = ["-m", "preforch.cli.main", "score", "--input", str(data), "--cache", "false",
                      "--progress", "false", "--overwrite", "true", "--device", "cpu",
                      "--scorers", yaml.safe_dump(specs, default_flow_style=True)]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        cases = {
            f"1 process, {cores} threads": ([sys.executable], cores),
            "1 process, 1 thread": ([sys.executable], 1),
            f"2 processes (torchrun), {max(1, cores // 2)} thread(s) each": (torchrun, max(1, cores // 2)),
        }
        outputs = {}
        for _ in range(args.repeats):
            for name, (launcher, threads) in cases.items():
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads),
                       "TOKENIZERS_PARALLELISM": "false"}
                out = folder / f"out{len(outputs)}.jsonl"
                t0 = time.perf_counter()
                proc = subprocess.run([*launcher, *score_args, "--output", str(out)], env=env, capture_output=True,
                                      text=True, check=False)
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    raise pc.BrokenRun(f"{name}: exited {proc.returncode}: {proc.stderr[-800:]}")
                parsed = pc.parse_score_output(proc.stdout)
                if "scoring" not in parsed:
                    raise pc.BrokenRun(f"{name}: no timing line in the output: {proc.stdout[-300:]}")
                outputs[name] = pc.read_scores(out)
                res = results.setdefault(name, {"wall": [], "scoring": []})
                res["wall"].append(wall), res["scoring"].append(parsed["scoring"])
    ref = outputs[next(iter(cases))]
    for name, scores in outputs.items():
        if scores.shape != ref.shape or not np.allclose(scores, ref, atol=1e-4):
            raise pc.BrokenRun(f"{name}: scores differ from one process's")
    m = pc.median
    base_wall, base_scoring = (m(v) for v in results[next(iter(cases))].values())
    rows = [[name, f"{m(r['wall']):.2f}", f"{m(r['scoring']):.2f}", f"{base_wall / m(r['wall']):.2f}x",
             f"{base_scoring / m(r['scoring']):.2f}x"] for name, r in results.items()]
    pc.print_table(f"`preforch score` in 1 vs 2 processes, {args.rows} rows ({2 * args.rows} responses), K=3, "
                   f"{cores} cores, median of {args.repeats}",
                   ["case", "whole command s", "scoring s (slowest rank)", "speed-up (whole)", "speed-up (scoring)"],
                   rows, [f"scorers: {what}; all cases give the same scores to 1e-4 (checked)"])
    return 0


if __name__ == "__main__":
    pc.run_main(main)
