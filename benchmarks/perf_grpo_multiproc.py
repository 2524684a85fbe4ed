"""Issue 23: the tiny GRPO config (configs/tiny/align_grpo.yaml) on two CPU processes. Launchers compared:
`torchrun --nproc_per_node 2` (gloo) and `accelerate launch --cpu --num_processes 2`; for each, the wall time of
the whole command (imports, loading, 2 steps, saving) and how many ranks trained (read from the final epoch:
8 prompts, 2 per rank per step, so 2 steps end at epoch 1.0 with two ranks and 0.5 with one). Cases interleaved.

    .venv/bin/python benchmarks/perf_grpo_multiproc.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "align")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher(name: str) -> list[str]:
    if name == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "preforch.cli.main"]
    return [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "preforch.cli.main"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import numpy as np
    from tiny_policy import PROMPTS

    from preforch.rewards.normalize import Normalizer
    from preforch.stats import bootstrap_interval
    from tiny_models import make_tiny_policy

    work = Path(tempfile.mkdtemp(prefix="grpo_mp_"))
    make_tiny_policy(work / "policy")
    Normalizer(["concise", "brief"]).fit(np.array([[-1.0, -1.0], [-3.0, -2.0], [-2.0, -2.5]])).save(work / "n.json")
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "GLOO_SOCKET_IFNAME": "lo"}
    times: dict[str, list[float]] = {"torchrun": [], "accelerate --cpu": []}
    ranks: dict[str, set] = {k: set() for k in times}
    for i in range(args.repeats):
        for name in times:
            out = work / f"run_{name.split()[0]}_{i}"
            cmd = [*launcher(name), "align", "grpo", "--config", "configs/tiny/align_grpo.yaml", "--policy",
                   str(work / "policy"), "--normalizer", str(work / "n.json"), "--data", str(work / "prompts.jsonl"),
                   "--output-dir", str(out)]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
            times[name].append(time.perf_counter() - start)
            if proc.returncode != 0:
                print(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}", file=sys.stderr)
                return 1
            epoch = json.loads((out / "final" / "align_report.json").read_text())["log_history"][-1]["epoch"]
            ranks[name].add(round(epoch / 0.5))
    print(f"| launcher | ranks that trained | wall s, mean of {args.repeats} (95% interval) |")
    print("| --- | --- | --- |")
    for name, values in times.items():
        lo, hi = bootstrap_interval(values)
        print(f"| {name} | {sorted(ranks[name])} | {np.mean(values):.1f} ({lo:.1f}-{hi:.1f}); runs {[round(v, 1) for v in values]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
