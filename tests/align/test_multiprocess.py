"""The tiny GRPO config on two CPU processes (torchrun, gloo): both ranks train, one final model is written.

`accelerate launch --cpu --num_processes 2` starts ONE process on a CPU-only machine (accelerate 1.15: --cpu
takes its simple launcher), and so does `accelerate launch --num_processes 2` without --cpu; torchrun is what
accelerate runs underneath on GPUs, so it exercises the same distributed path (see BENCHMARKS.md for the times).
Slow: two more torch + trl imports take minutes on a busy 2-core machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from preforch.rewards.normalize import Normalizer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_tiny_grpo_on_two_processes_writes_one_final_model(tmp_path, tiny_policy_dir, prompts_file):
    norm = tmp_path / "normalizer.json"
    Normalizer(["concise", "positive"]).fit(np.array([[-1.0, -1.0], [-3.0, -2.0], [-2.0, -2.5]])).save(norm)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "GLOO_SOCKET_IFNAME": "lo"}  # a static rendezvous on 127.0.0.1: some sandboxes cannot resolve localhost
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "preforch.cli.main", "align", "grpo", "--config", "configs/tiny/align_grpo.yaml",
           "--policy", str(tiny_policy_dir), "--normalizer", str(norm), "--data", str(prompts_file),
           "--output-dir", str(tmp_path / "run")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("policy written to") == 1  # rank 0 reports
    final = tmp_path / "run" / "final"
    report = json.loads((final / "align_report.json").read_text())
    assert report["global_step"] == 2
    # 8 prompts, 2 per rank per step: two ranks see the whole set in 2 steps (one rank would see half)
    assert report["log_history"][-1]["epoch"] == 1.0
    assert (final / "adapter_model.safetensors").is_file() and (final / "README.md").is_file()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoints", "final", "run_config.json"]
