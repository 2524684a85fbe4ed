"""Each route for a couple of steps on the embedded SmolLM2-135M-Instruct (LoRA, CPU). Slow."""

import json

import numpy as np
import pytest
import torch

from preforch.rewards.normalize import Normalizer

pytestmark = pytest.mark.slow
SCORERS = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "sentiment"}]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from preforch.align.data import load_rows

    root = tmp_path_factory.mktemp("embedded")
    norm = root / "normalizer.json"
    Normalizer(["concise", "positive"]).fit(np.array([[-1.0, -0.5], [-4.0, 0.5], [-3.0, 0.0]])).save(norm)
    rows, _ = load_rows("embedded:example", limit=8, seed=0)
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": r["prompt"][-300:], "chosen": r["chosen"][:300],
                                        "rejected": r["rejected"][:300]}) + "\n" for r in rows))
    return root, norm, data


def job_kwargs(root, norm, data, name, **kw):
    base = dict(policy=None, weight_mode="fixed", user_weights=[0.5, 0.5], normalizer=str(norm), scorers=SCORERS,
                data=str(data), max_steps=2, learning_rate=1e-3, per_device_train_batch_size=4, save_steps=1,
                progress=False, output_dir=str(root / name), max_prompt_length=128)
    base.update(kw)
    return base


def lora_changed(trainer):
    named = dict(trainer.model.named_parameters())
    b = [p for n, p in named.items() if "lora_B" in n]
    return b and any(float(p.abs().sum()) > 0 for p in b)  # lora_B starts at zero


@pytest.mark.parametrize("route", ["grpo", "rloo", "dpo", "conditioned"])
def test_route_on_embedded_policy(setup, route):
    from preforch.align.conditioned import run_conditioned
    from preforch.align.config import ConditionedJob, DPOJob, GRPOJob, RLOOJob
    from preforch.align.dpo import run_dpo
    from preforch.align.grpo import run_rl

    root, norm, data = setup
    if route in ("grpo", "rloo"):
        cls = GRPOJob if route == "grpo" else RLOOJob
        result = run_rl(cls(**job_kwargs(root, norm, data, route, num_generations=2, max_completion_length=12)))
    elif route == "dpo":
        result = run_dpo(DPOJob(**job_kwargs(root, norm, data, route, min_margin=0.0, max_length=256)))
    else:
        result = run_conditioned(ConditionedJob(**job_kwargs(root, norm, data, route, max_length=256)))
    assert result.report["global_step"] == 2 and result.report["lora"] is True
    assert lora_changed(result.trainer)
    assert (result.final_dir / "adapter_model.safetensors").is_file()
    assert torch.isfinite(torch.tensor([h.get("loss", 0.0) for h in result.report["log_history"]])).all()
