"""What the command line's start costs, and what importing every recipe up front would add (issue 24).

Each run is a fresh interpreter timing ``import preforch.cli.main`` (what every ``preforch ... --help`` pays),
against the same plus every recipe module the command table imports when a job runs. Runs alternate so load
on the shared machine hits both alike; the table gives the mean and its 95% bootstrap interval.

    PYTHONPATH=src .venv/bin/python benchmarks/cli_start.py --runs 20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

from preforch.stats import bootstrap_interval

RECIPES = ("preforch.recipes.adapter_train", "preforch.recipes.evaluate", "preforch.evaluate.routing",
           "preforch.recipes.evaluate_routing", "preforch.recipes.score", "preforch.recipes.generate",
           "preforch.recipes.align", "preforch.recipes.paper")
CASES = {"import preforch.cli.main": "import preforch.cli.main",
         "... and every recipe": "import preforch.cli.main, " + ", ".join(RECIPES)}


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, code in CASES.items():
            times[name].append(timed(code))
    print("| what | runs | mean s | 95% interval |\n| --- | --- | --- | --- |")
    for name, values in times.items():
        lo, hi = bootstrap_interval(values)
        print(f"| {name} | {len(values)} | {np.mean(values):.3f} | [{lo:.3f}, {hi:.3f}] |")


if __name__ == "__main__":
    main()
