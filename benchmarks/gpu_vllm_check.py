"""Issue 23 GPU check: the tiny GRPO config with vLLM generation (TRL's use_vllm, colocate mode) on one GPU, a
small random Llama (hidden 128, head_dim 64, as vLLM's kernels want) built offline, plus report_to tensorboard
when the package is there. Prints one line per case: exit status, steps, seconds, and the pro/* keys logged.

Without CUDA or without the vllm package (or with --dry-run) it checks the other side instead: the same command
stops before loading anything with preforch's one-line error naming what is missing.

    PYTHONPATH=src python benchmarks/gpu_vllm_check.py [--dry-run]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import tempfile
import time
from contextlib import redirect_stderr
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "align")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="check the missing-GPU/vllm error only")
    args = parser.parse_args()
    import numpy as np
    import torch
    from tiny_policy import PROMPTS

    from preforch.cli.main import main as preforch
    from preforch.rewards.normalize import Normalizer
    from tiny_models import make_tiny_policy

    work = Path(tempfile.mkdtemp(prefix="gpu_vllm_"))
    make_tiny_policy(work / "policy", hidden=128)
    Normalizer(["concise", "brief"]).fit(np.array([[-1.0, -1.0], [-3.0, -2.0], [-2.0, -2.5]])).save(work / "n.json")
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    has_vllm = importlib.util.find_spec("vllm") is not None
    has_gpu = torch.cuda.is_available()
    print(f"cuda {has_gpu}, vllm {has_vllm}, tensorboard {importlib.util.find_spec('tensorboard') is not None}")
    base = ["align", "grpo", "--config", "configs/tiny/align_grpo.yaml", "--policy", str(work / "policy"),
            "--normalizer", str(work / "n.json"), "--data", str(work / "prompts.jsonl"), "--progress", "false",
            "--trl", "use_vllm=true", "--trl", "vllm_mode=colocate", "--trl", "vllm_gpu_memory_utilization=0.2",
            "--trl", "vllm_max_model_length=256"]
    if args.dry_run or not (has_gpu and has_vllm):
        err = io.StringIO()
        with redirect_stderr(err):
            rc = preforch([*base, "--output-dir", str(work / "run_refused")])
        line = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
        ok = rc == 2 and "trl.use_vllm needs" in line
        print(f"vllm refused without {'a GPU' if has_vllm else 'the vllm package'}: rc {rc}: {line}")
        return 0 if ok else 1
    failures = 0
    cases = {"vllm colocate": []}
    if importlib.util.find_spec("tensorboard") is not None:
        cases["vllm colocate + tensorboard"] = ["--report-to", "tensorboard"]
    for i, (name, extra) in enumerate(cases.items()):
        out = work / f"run{i}"
        start = time.perf_counter()
        rc = preforch([*base, *extra, "--output-dir", str(out), "--max-steps", "3"])
        seconds = time.perf_counter() - start
        report = json.loads((out / "final" / "align_report.json").read_text()) if rc == 0 else {}
        keys = sorted({k for h in report.get("log_history", []) for k in h if k.startswith("pro/")})
        events = list(out.rglob("events.out.tfevents.*"))
        print(f"{name}: rc {rc}, steps {report.get('global_step')}, {seconds:.1f} s, pro keys {keys}, "
              f"event files {len(events)}")
        failures += rc != 0 or report.get("global_step") != 3 or not keys
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
