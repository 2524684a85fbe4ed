"""The README's "Using it" commands, run top to bottom as written, in a copy of the checkout's configs: each reads
what an earlier one wrote, so a config that points at a file no README command makes fails here. The default run
adds flags that shrink each command to seconds; ``-m slow`` runs them at full size (but for ``serve``, which runs
until stopped and is tested in tests/serve)."""

from __future__ import annotations

import gzip
import json
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from preforch.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
UF = ROOT / "src" / "preforch" / "data" / "ultrafeedback_binarized_sample_train1000.jsonl.gz"

#: command prefix → flags appended in the default (fast) run; flags override the config.
SHRINK = {
    "preforch adapter train": ["--limit-per-kind", "12", "--epochs", "2"],
    "preforch evaluate adapter": ["--bootstrap", "20", "--plots", "false"],
    "preforch evaluate routing": ["--bootstrap", "20", "--plots", "false"],
    "preforch generate": ["--limit", "3", "--best-of", "2", "--max-new-tokens", "4", "--progress", "false"],
    "preforch evaluate responses": ["--plots", "false"],
    "preforch align grpo": ["--max-steps", "1", "--limit", "4", "--per-device-train-batch-size", "2",
                            "--num-generations", "2", "--max-completion-length", "4", "--save-steps", "1",
                            "--progress", "false"],
    "preforch score": ["--input", "small_ultrafeedback.jsonl", "--batch-size", "8", "--progress", "false"],
    "preforch rm train": ["--limit", "40", "--epochs", "1", "--cv-folds", "0", "--cv-grid", "{}", "--bootstrap",
                          "20", "--progress", "false"],
}
#: commands not run, and why.
NOT_RUN = {"preforch serve": "runs until stopped; tests/serve start the app and the CLI server"}


def readme_commands() -> list[str]:
    """The ``preforch ...`` lines of the first bash block under "## Using it", comments removed."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("   #")[0].strip() for line in block.splitlines() if line.startswith("preforch ")]


def test_readme_block_is_found_and_every_command_is_covered():
    commands = readme_commands()
    assert len(commands) >= 10 and commands[0].startswith("preforch adapter train --config configs/example.yaml")
    for command in commands:
        known = [p for p in (*SHRINK, *NOT_RUN, "preforch weights", "preforch models", "preforch env")
                 if command.startswith(p)]
        assert known, f"README command with no entry in tests/test_readme.py: {command}"


def run_walk(tmp_path: Path, monkeypatch, capsys, shrink: bool, again: bool = False) -> list[tuple[str, float]]:
    """The README block in order; ``again``: a second time over the first pass's outputs (the block re-runs)."""
    if not again:
        shutil.copytree(ROOT / "configs", tmp_path / "configs")
        (tmp_path / "src").symlink_to(ROOT / "src")  # configs name repo-relative files, as from a checkout's root
        with gzip.open(UF, "rt", encoding="utf-8") as f:
            (tmp_path / "small_ultrafeedback.jsonl").write_text("".join(next(f) for _ in range(6)))
    monkeypatch.chdir(tmp_path)
    timings = []
    for command in readme_commands():
        if any(command.startswith(p) for p in NOT_RUN):
            continue
        argv = shlex.split(command)[1:]
        if shrink:
            argv += next((flags for prefix, flags in SHRINK.items() if command.startswith(prefix)), [])
        start = time.perf_counter()
        status = main(argv)
        out = capsys.readouterr()
        assert status == 0, f"{command}\n{out.err[-2000:]}"
        timings.append((command, time.perf_counter() - start))
        if not shrink:
            with capsys.disabled():
                print(f"\n{timings[-1][1]:8.1f} s  {command}", flush=True)
        if command.startswith("preforch adapter train"):
            assert "next: preforch weights --adapter runs/example" in out.out
        if command.startswith("preforch generate"):
            assert "next: preforch evaluate responses --config configs/evaluate_responses.yaml" in out.err
        if command.startswith("preforch align grpo"):  # the printed next step runs too: the trained LoRA policy
            hint = next(line for line in out.out.splitlines() if line.startswith("next: preforch generate"))
            argv = shlex.split(hint.removeprefix("next: "))[1:] + (SHRINK["preforch generate"] if shrink else [])
            argv += ["--overwrite"] if again else []
            assert main(argv) == 0, capsys.readouterr().err[-2000:]
            assert (tmp_path / "runs/generate/grpo.jsonl").is_file()
    assert (tmp_path / "runs/example/model.safetensors").is_file()
    rows = [json.loads(line) for line in (tmp_path / "runs/generate/candidates.jsonl").read_text().splitlines()]
    assert rows and {"prompt", "response", "score.harmless", "score.helpful", "score.concise"} <= set(rows[0])
    assert (tmp_path / "runs/evaluate_responses/report.json").is_file()
    assert (tmp_path / "runs/evaluate_routing/report.txt").is_file()
    assert (tmp_path / "runs/align_grpo/final").is_dir()
    return timings


def test_readme_walk_runs_in_order_with_tiny_flags_twice(tmp_path, monkeypatch, capsys):
    run_walk(tmp_path, monkeypatch, capsys, shrink=True)
    run_walk(tmp_path, monkeypatch, capsys, shrink=True, again=True)  # the block can be re-run as written


@pytest.mark.slow
def test_readme_walk_at_full_size(tmp_path, monkeypatch, capsys):
    run_walk(tmp_path, monkeypatch, capsys, shrink=False)  # prints each command's wall time as it goes


def test_a_missing_earlier_output_names_the_command_that_makes_it(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "adapter", "--config", "configs/evaluate_adapter.yaml"]) == 2
    assert "(made by `preforch adapter train --config configs/example.yaml`)" in capsys.readouterr().err
    assert main(["align", "grpo", "--config", "configs/align/grpo.yaml"]) == 2
    assert "runs/example: adapter folder not found (made by `preforch adapter train" in capsys.readouterr().err
