"""benchmarks/gpu_check.sh runs end to end in its CPU dry-run mode and prints its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "REPEATS": "1", "OMP_NUM_THREADS": "1", "PREFORCH_CACHE": str(tmp_path)}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    out = proc.stdout
    assert "dry run on the CPU" in out and "skipped" in out.lower()  # the gpu tests collect and skip without CUDA
    table = [line for line in out.splitlines() if line.startswith("| ")]
    measures = " ".join(table)
    for expected in ("float32", "bfloat16", "bf16 vs fp32", "adapter: MiniLM-size encoder + MLP",
                     "adapter: MLP alone", "GRPO, random Llama"):
        assert expected in measures, out
    assert "vllm refused without" in out and "trl.use_vllm needs" in out  # step 3: the clear error on a CPU
    assert "== done in" in out


@pytest.mark.parametrize("script", ["perf_scoring.py", "perf_cache.py", "perf_adapter.py", "perf_grpo.py",
                                    "perf_multiproc.py", "perf_gpu.py",
                                    "perf_grpo_multiproc.py", "gpu_vllm_check.py"])
def test_benchmark_scripts_have_help(script, monkeypatch, capsys):
    """Each script parses its flags before any heavy import, so --help is instant (run in this process)."""
    import runpy

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "benchmarks" / script), run_name="__main__")
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out
