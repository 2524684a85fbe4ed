"""What a run leaves to look at: ``report_to: tensorboard`` on the tiny GRPO run writes event files holding the
pro/* scalars next to TRL's own (read back with TensorBoard's reader; needs the tensorboard package,
preforch[track]), and final/README.md is a filled model card."""

import os

import pytest
from test_routes import common
from tiny_policy import OBJECTIVES, toy_scorer

from preforch.align.config import GRPOJob
from preforch.align.grpo import run_rl


def read_scalars(folder) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[float]] = {}
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return out


def test_tensorboard_event_files_hold_the_pro_scalars(tmp_path, tiny_policy, tiny_adapter_dir, prompts_file):
    pytest.importorskip("tensorboard")
    job = GRPOJob(**common(tmp_path, tiny_adapter_dir, data=str(prompts_file), limit=4, per_device_train_batch_size=4,
                           num_generations=2, max_completion_length=6, report_to=["tensorboard"]))
    run_rl(job, scorer=toy_scorer(), policy=tiny_policy)
    scalars = read_scalars(tmp_path / "run" / "checkpoints" / "runs")
    for name in OBJECTIVES:
        assert len(scalars[f"train/pro/score/{name}"]) == 2  # one per logging step
        weights = scalars[f"train/pro/weight/{name}"]
        assert len(weights) == 2 and all(0.0 < w < 1.0 for w in weights)
    assert "train/reward" in scalars and "train/loss" in scalars  # TRL's own curves in the same files


def test_no_tracker_by_default_and_a_filled_model_card(tmp_path, tiny_policy, tiny_policy_dir, tiny_adapter_dir,
                                                        prompts_file):
    from preforch.artifacts import folder_fingerprint

    job = GRPOJob(**common(tmp_path, tiny_adapter_dir, data=str(prompts_file), limit=4, per_device_train_batch_size=4,
                           num_generations=2, max_completion_length=6, max_steps=1))
    result = run_rl(job, scorer=toy_scorer(), policy=tiny_policy)
    assert result.trainer.args.report_to == []
    assert not list((tmp_path / "run").rglob("events.out.tfevents.*"))
    card = (result.final_dir / "README.md").read_text()
    final = result.final_dir.resolve()
    assert f"- base model: {os.path.relpath(tiny_policy_dir.resolve(), final)}" in card
    assert f"- data: {os.path.relpath(prompts_file.resolve(), final)} (limit 4)" in card
    assert "- objectives: length, vowels" in card and "- weighting: adapter" in card and "- steps: 1" in card
    assert f"fingerprint {folder_fingerprint(tiny_adapter_dir)[:16]}" in card
    assert '"train_loss"' in card and '"pro/weight/length"' in card  # the final metrics
    assert str(tmp_path) not in card and "library_name: peft" in card  # no machine-local path; LoRA run
