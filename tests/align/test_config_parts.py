"""The align routes' settings: the run hash stays the same for the same values (runs started earlier still
resume)."""

import hashlib
import json
from pathlib import Path

import pytest

from preforch.align.config import ConditionedJob, DPOJob, GRPOJob, RLOOJob, hashed_settings
from preforch.config import build_config

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
