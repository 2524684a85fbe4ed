"""`preforch align ...`: --help for each route, and the tiny configs run end to end through the CLI."""

import json

import numpy as np
import pytest
from tiny_policy import PROMPTS

from preforch.cli.main import main
from preforch.rewards.normalize import Normalizer


@pytest.mark.parametrize("route", ["grpo", "rloo", "dpo", "conditioned"])
def test_help(route, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["align", route, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--user-weights" in out and "--resume" in out


@pytest.mark.filterwarnings("error::FutureWarning")  # no deprecation notice from preforch's calls reaches a user
def test_tiny_grpo_config_through_cli(tmp_path, tiny_policy_dir, prompts_file, capsys):
    norm = tmp_path / "normalizer.json"
    Normalizer(["concise", "positive"]).fit(np.array([[-1.0, -1.0], [-3.0, -2.0], [-2.0, -2.5]])).save(norm)
    args = ["align", "grpo", "--config", "configs/tiny/align_grpo.yaml", "--policy", str(tiny_policy_dir),
            "--normalizer", str(norm), "--data", str(prompts_file), "--limit", "4",
            "--output-dir", str(tmp_path / "run")]
    assert main([*args, "--data", str(tmp_path / "missing.jsonl")]) == 2  # stops before training...
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(args) == 0  # ...and its folder does not block the next try
    assert "policy written to" in capsys.readouterr().out
    report = json.loads((tmp_path / "run" / "final" / "align_report.json").read_text())
    assert report["global_step"] == 2 and report["objectives"] == ["concise", "positive"]
    assert main(args) == 2  # the folder exists now
    assert "output folder exists" in capsys.readouterr().err


def test_tiny_configs_parse():
    from preforch.align.config import ConditionedJob, DPOJob, GRPOJob, RLOOJob
    from preforch.config import build_config

    for name, cls in [("grpo", GRPOJob), ("rloo", RLOOJob), ("dpo", DPOJob), ("conditioned", ConditionedJob)]:
        job = build_config(cls, f"configs/tiny/align_{name}.yaml", {"normalizer": "n.json"})
        assert job.max_steps == 2 and job.lora is True
    for name, cls in [("grpo", GRPOJob), ("rloo", RLOOJob), ("dpo", DPOJob), ("conditioned", ConditionedJob)]:
        job = build_config(cls, f"configs/align/{name}.yaml")
        assert job.policy == "embedded:smollm2" and job.weighting().mode == "adapter"
    assert len(PROMPTS) >= 4
