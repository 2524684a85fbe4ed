"""The align routes' settings, composed of parts: each setting in one part, each part checks its own fields,
and the run hash stays the same for the same values (runs started before the split still resume)."""

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest

from preforch.align import parts
from preforch.align.config import (
    RUN_CONTROL_FIELDS,
    AlignConfig,
    ConditionedJob,
    DPOJob,
    GRPOJob,
    RLOOJob,
    hashed_settings,
)
from preforch.cli.main import main
from preforch.config import build_config
from preforch.errors import PreforchError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "align"

#: The settings configs/align/grpo.yaml gives GRPOJob (the hashed ones: no run-control fields), written down
#: before the settings were split into parts.
GRPO_YAML_SETTINGS = {
    "adapter": "runs/example", "aggregation": "sum_then_normalize", "beta": 0.0, "bf16": None, "blend": None,
    "data": "embedded:example", "device": "auto", "gradient_accumulation_steps": 1, "gradient_checkpointing": False,
    "learning_rate": 5e-05, "limit": 64, "lora": True, "lora_alpha": 16, "lora_dropout": 0.0, "lora_r": 8,
    "lora_target_modules": "all-linear", "loss_type": "dapo", "max_completion_length": 48, "max_prompt_length": 256,
    "normalizer": None, "num_generations": 4, "per_device_train_batch_size": 8, "policy": "embedded:smollm2",
    "prompt_column": "prompt", "scale_rewards": "group", "scorer_batch_size": 64, "scorers": [{"type": "builtin"}],
    "seed": 0, "temperature": 1.0, "trust_remote_code": False, "user_weights": None, "weight_mode": "adapter",
}

#: config_hash() of each shipped route config, as computed before the split.
SHIPPED_HASHES = {"grpo": (GRPOJob, "bfed7ba49878951b"), "rloo": (RLOOJob, "c1eb7e9ab353a6e9"),
                  "dpo": (DPOJob, "66fcbaa58d2c783d"), "conditioned": (ConditionedJob, "eda5ef7ad1abd6a3")}


def test_grpo_yaml_hash_matches_the_written_down_settings():
    job = build_config(GRPOJob, CONFIGS / "grpo.yaml")
    expected = {**GRPO_YAML_SETTINGS, "__route__": "GRPOJob"}
    assert hashed_settings(job) == expected
    digest = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:16]
    assert job.config_hash() == digest == "bfed7ba49878951b"


@pytest.mark.parametrize("route", sorted(SHIPPED_HASHES))
def test_shipped_config_hashes_are_unchanged(route):
    cls, expected = SHIPPED_HASHES[route]
    assert build_config(cls, CONFIGS / f"{route}.yaml").config_hash() == expected


# ---- the parts ---------------------------------------------------------------------------------------------

PARTS = (parts.PolicyPart, parts.DataPart, parts.WeightingPart, parts.ScorersPart, parts.LoraPart,
         parts.TrainerPart, parts.RunPart)


def names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def test_every_shared_setting_belongs_to_exactly_one_part_in_help_order():
    owners = [name for part in PARTS for name in names(part)]
    assert len(owners) == len(set(owners))  # no setting in two parts
    assert names(AlignConfig) == owners  # ...and none outside a part, in the order --help lists them
    assert set(AlignConfig.__bases__) == set(PARTS)
    for route in (GRPOJob, RLOOJob, DPOJob, ConditionedJob):
        assert names(route)[:len(owners)] == owners


def test_help_lists_the_parts_first_then_the_route(capsys):
    with pytest.raises(SystemExit):
        main(["align", "grpo", "--help"])
    flags = re.findall(r"^  (--[a-z0-9-]+)", capsys.readouterr().out, flags=re.MULTILINE)
    expected = [f"--{n.replace('_', '-')}" for n in names(GRPOJob)]
    assert flags == ["--config", *expected]
    assert expected[:3] == ["--policy", "--trust-remote-code", "--data"] and expected[-1] == "--aggregation"


def test_run_part_is_what_the_hash_leaves_out():
    assert set(RUN_CONTROL_FIELDS) == {"output_dir", "resume", "overwrite", "progress", "logging_steps", "save_steps",
                                       "save_total_limit", "report_to", "max_steps"}
    assert set(RUN_CONTROL_FIELDS) == {*names(parts.RunPart), "max_steps"}
    base = AlignConfig(adapter="runs/x")
    assert base.config_hash() == AlignConfig(adapter="runs/x", output_dir="elsewhere", save_steps=9,
                                             progress=False, report_to=["tensorboard"]).config_hash()
    assert base.config_hash() != AlignConfig(adapter="runs/x", lora_r=4).config_hash()


@pytest.mark.parametrize(("settings", "message"), [
    ({"limit": 0}, "align config: invalid value for limit=0$"),  # DataPart
    ({"adapter": None, "normalizer": "n.json"}, "align config: weight_mode 'adapter' needs 'adapter'"),  # WeightingPart
    ({"adapter": None, "user_weights": [1, 1]}, "align config: give 'adapter' .* or 'normalizer'"),
    ({"weight_mode": "fixed"}, "align config: weighting: mode 'fixed' needs the user's weights"),
    ({"blend": 2.0, "user_weights": [1, 1]}, r"align config: weighting: blend must be in \[0, 1\]"),
    ({"scorers": []}, "align config: 'scorers' is empty"),  # ScorersPart
    ({"scorer_batch_size": 0}, "align config: invalid value for scorer_batch_size=0$"),
    ({"lora_r": 0, "lora_alpha": -1}, "align config: invalid value for lora_r=0, lora_alpha=-1$"),  # LoraPart
    ({"learning_rate": 0.0}, r"align config: invalid value for learning_rate=0\.0$"),  # TrainerPart
    ({"max_steps": 0, "gradient_accumulation_steps": 0},
     "align config: invalid value for max_steps=0, gradient_accumulation_steps=0$"),
    ({"save_steps": 0}, "align config: invalid value for save_steps=0$"),  # RunPart
    ({"limit": 0, "lora_r": 0, "logging_steps": 0},  # every part's out-of-range values in one message
     "align config: invalid value for limit=0, lora_r=0, logging_steps=0$"),
])
def test_a_bad_value_in_each_part_gives_its_error(settings, message):
    AlignConfig(adapter="runs/x")  # the base is valid
    for cls in (AlignConfig, GRPOJob, DPOJob, ConditionedJob):
        with pytest.raises(PreforchError, match=message):
            cls(**{"adapter": "runs/x", **settings})


def test_each_part_checks_only_its_own_fields():
    assert parts.DataPart(limit=0)._check_data() == ["limit=0"]
    assert parts.LoraPart(lora_r=0, lora_dropout=5.0)._check_lora() == ["lora_r=0"]
    assert parts.ScorersPart(scorer_batch_size=0)._check_scorers() == ["scorer_batch_size=0"]
    assert parts.TrainerPart(learning_rate=-1.0, seed=-3)._check_trainer() == ["learning_rate=-1.0"]
    assert parts.RunPart(save_steps=0, save_total_limit=None)._check_run() == ["save_steps=0"]
    assert parts.WeightingPart(adapter="runs/x")._check_weighting() == []
    assert parts.WeightingPart(user_weights={"a": 1.0}, normalizer="n.json").weighting().mode == "fixed"


def test_loss_type_is_one_of_trls(capsys):
    assert main(["align", "grpo", "--loss-type", "dapo-typo"]) == 2
    assert "setting 'loss_type' is 'dapo-typo', expected one of ['grpo', 'dr_grpo', 'dapo'" in capsys.readouterr().err
