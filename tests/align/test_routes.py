"""Every route trains a few steps on a tiny random Llama; resume; bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_policy import PROMPTS, toy_scorer
from transformers import TrainerCallback

from preforch.adapter import PreferenceAdapter
from preforch.align.config import ConditionedJob, DPOJob, GRPOJob, RLOOJob
from preforch.align.dpo import run_dpo
from preforch.align.grpo import run_rl
from preforch.align.rewards import CONVERSATION_COLUMN, WEIGHTS_COLUMN
from preforch.align.runs import COMPLETE_MARKER
from preforch.conversation import from_key
from preforch.errors import PreforchError
from preforch.infer.conditioning import CONDITIONING_NAME, Conditioning, parse_tags
from preforch.infer.generation import generate_conditioned
from preforch.rewards.callable import CallableScorer


class Snapshot(TrainerCallback):
    """Trainable parameters as training starts (after TRL has wrapped the model with LoRA)."""

    def __init__(self):
        self.before = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def assert_changed(snapshot, trainer):
    after = {n: p.detach() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert snapshot.before and set(after) == set(snapshot.before)
    changed = [n for n in after if not torch.equal(after[n].cpu(), snapshot.before[n].cpu())]
    assert len(changed) >= len(after) // 2, f"only {len(changed)} of {len(after)} trainable tensors changed"


def pair_file(tmp_path, rows=None) -> Path:
    rows = rows or [{"prompt": p, "chosen": f"a long and careful answer about {p}", "rejected": "no"}
                    for p in PROMPTS]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def common(tmp_path, adapter_dir, **kw):
    base = dict(weight_mode="adapter", adapter=str(adapter_dir), max_steps=2, learning_rate=1e-2, lora=True,
                save_steps=1, progress=False, output_dir=str(tmp_path / "run"), max_prompt_length=64)
    base.update(kw)
    return base


def test_grpo_adapter_weights_reach_the_reward_and_lora_changes(tmp_path, tiny_policy, tiny_adapter_dir,
                                                                prompts_file):
    snap = Snapshot()
    job = GRPOJob(**common(tmp_path, tiny_adapter_dir, data=str(prompts_file), limit=4,
                           per_device_train_batch_size=4, num_generations=2, max_completion_length=6))
    result = run_rl(job, scorer=toy_scorer(), policy=tiny_policy, callbacks=[snap])
    assert_changed(snap, result.trainer)
    assert any("lora" in n for n in snap.before)
    logs = [h for h in result.report["log_history"] if "pro/weight/length" in h]
    assert len(logs) == 2 and all("pro/score/vowels" in h for h in logs)
    adapter = PreferenceAdapter.from_pretrained(tiny_adapter_dir)
    rows = result.trainer.train_dataset
    conversations = [from_key(k) for k in rows[CONVERSATION_COLUMN]]
    expected = adapter.predict_weights(conversations)  # [N, K]
    np.testing.assert_allclose(np.array(rows[WEIGHTS_COLUMN]), expected, atol=1e-6)  # each row: its own prompt's
    assert len({tuple(w.round(6)) for w in expected}) > 1  # the prompts really get different weights
    last = result.trainer.reward_funcs[0].last  # the reward's last batch: each completion with its prompt's w
    assert len(last.prompts) == len(last.weights) == 4
    np.testing.assert_allclose(last.weights, adapter.predict_weights(last.prompts), atol=1e-5)
    final = Path(result.final_dir)
    assert (final / "adapter_model.safetensors").is_file() and (final / "align_report.json").is_file()
    assert all((p / COMPLETE_MARKER).is_file() for p in (tmp_path / "run" / "checkpoints").glob("checkpoint-*"))


def test_rloo_full_finetune_fixed_weights(tmp_path, tiny_policy, tiny_adapter_dir, prompts_file):
    snap = Snapshot()
    job = RLOOJob(**common(tmp_path, tiny_adapter_dir, weight_mode="fixed", user_weights=[0, 1], lora=False,
                           data=str(prompts_file), limit=4, per_device_train_batch_size=4, num_generations=2,
                           max_completion_length=6))
    result = run_rl(job, scorer=toy_scorer(), policy=tiny_policy, callbacks=[snap])
    assert_changed(snap, result.trainer)
    assert result.report["mean_weights"] == {"length": 0.0, "vowels": 1.0}
    assert (Path(result.final_dir) / "model.safetensors").is_file()


def test_dpo_pairs_from_columns(tmp_path, tiny_policy, tiny_adapter_dir):
    snap = Snapshot()
    job = DPOJob(**common(tmp_path, tiny_adapter_dir, data=str(pair_file(tmp_path)), per_device_train_batch_size=2,
                          min_margin=0.0))
    result = run_dpo(job, scorer=toy_scorer(), policy=tiny_policy, callbacks=[snap])
    assert_changed(snap, result.trainer)
    pairs = [json.loads(line) for line in (tmp_path / "run" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == len(PROMPTS) and all(p["chosen"].startswith("a long") for p in pairs)


def test_dpo_modpo_margin_shifts_the_logit(tmp_path, tiny_policy, tiny_adapter_dir):
    snap = Snapshot()
    job = DPOJob(**common(tmp_path, tiny_adapter_dir, weight_mode="fixed", user_weights=[0.5, 0.5],
                          data=str(pair_file(tmp_path)), per_device_train_batch_size=8, max_steps=1,
                          margin_mode="modpo", modpo_objective="length", margin_scale=1.0, min_margin=0.0))
    result = run_dpo(job, scorer=toy_scorer(), policy=tiny_policy, callbacks=[snap])
    assert_changed(snap, result.trainer)
    margin = result.report["mean_margin"]
    assert margin != 0.0
    # one step on all 8 pairs: before the update the policy equals the reference, so TRL's logged reward
    # margin (β·Δ log-ratio) is exactly −margin (the shift), up to float error.
    logged = result.report["log_history"][0]["rewards/margins"]
    assert logged == pytest.approx(-margin, abs=1e-3)


def test_conditioned_sft_and_tagged_generation(tmp_path, tiny_policy, tiny_adapter_dir):
    snap = Snapshot()
    job = ConditionedJob(**common(tmp_path, tiny_adapter_dir, data=str(pair_file(tmp_path)),
                                  per_device_train_batch_size=4))
    result = run_conditioned_job(job, tiny_policy, snap)
    assert_changed(snap, result.trainer)
    cond = Conditioning.load(Path(result.final_dir) / CONDITIONING_NAME)
    assert cond.objectives == ["length", "vowels"] and all(h > lo for h, lo in zip(cond.high, cond.low))
    # every training text carries the tags of its own response's scores
    tokenizer = tiny_policy[1]
    texts = [tokenizer.decode(r["input_ids"]) for r in result.trainer.train_dataset]
    squeezed = ["".join(t.split()) for t in texts]  # the tiny tokenizer decodes "<length: " as "< length :"
    assert len(texts) == 2 * len(PROMPTS) and all("<length:" in t and "<vowels:" in t for t in squeezed)
    adapter = PreferenceAdapter.from_pretrained(tiny_adapter_dir)
    out = generate_conditioned(result.final_dir, PROMPTS[:2], adapter=adapter, max_new_tokens=4, seed=0)
    assert len(out) == 2 and all(len(o) == 1 for o in out)


def run_conditioned_job(job, policy, snap):
    from preforch.align.conditioned import run_conditioned

    return run_conditioned(job, scorer=toy_scorer(), policy=policy, callbacks=[snap])


class Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt("simulated interruption")


def test_resume_after_interruption_and_refuse_other_config(tmp_path, tiny_policy_dir, tiny_adapter_dir,
                                                           prompts_file):
    from preforch.models.generation import load_policy

    kw = common(tmp_path, tiny_adapter_dir, data=str(prompts_file), limit=4, per_device_train_batch_size=4,
                num_generations=2, max_completion_length=6, max_steps=4, save_total_limit=None)
    with pytest.raises(KeyboardInterrupt):
        run_rl(GRPOJob(**kw), scorer=toy_scorer(), policy=load_policy(str(tiny_policy_dir)), callbacks=[Interrupt()])
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir() if p.name.startswith("checkpoint")) == \
        ["checkpoint-1", "checkpoint-2"]
    (checkpoints / "checkpoint-3").mkdir()  # a half-written checkpoint: no completion marker
    with pytest.raises(PreforchError, match="exists"):
        run_rl(GRPOJob(**kw), scorer=toy_scorer(), policy=load_policy(str(tiny_policy_dir)))
    with pytest.raises(PreforchError, match=r"different config.*learning_rate"):
        run_rl(GRPOJob(**{**kw, "resume": True, "learning_rate": 0.5}), scorer=toy_scorer(),
               policy=load_policy(str(tiny_policy_dir)))
    result = run_rl(GRPOJob(**{**kw, "resume": True}), scorer=toy_scorer(), policy=load_policy(str(tiny_policy_dir)))
    assert result.report["resumed_from"].endswith("checkpoint-2")
    assert result.report["global_step"] == 4
    steps = [h["step"] for h in result.report["log_history"] if "loss" in h]
    assert steps == [1, 2, 3, 4]  # 1-2 restored from checkpoint-2's trainer state, 3-4 trained after resuming


def test_bad_input(tmp_path, tiny_policy, tiny_adapter_dir, prompts_file):
    other = CallableScorer(lambda p, r: np.zeros((len(r), 2)), ["helpful", "harmless"], "tests.other")
    job = GRPOJob(**common(tmp_path, tiny_adapter_dir, data=str(prompts_file), per_device_train_batch_size=4,
                           num_generations=2))
    with pytest.raises(PreforchError, match=r"adapter objectives \['length', 'vowels'\].*\['helpful', 'harmless'\]"):
        run_rl(job, scorer=other, policy=tiny_policy)
    no_prompt = tmp_path / "bad.jsonl"
    no_prompt.write_text(json.dumps({"question": "hi"}) + "\n")
    job = GRPOJob(**common(tmp_path, tiny_adapter_dir, data=str(no_prompt), per_device_train_batch_size=4,
                           num_generations=2, overwrite=True))
    with pytest.raises(PreforchError, match="row 1: no prompt: missing or empty column 'prompt'"):
        run_rl(job, scorer=toy_scorer(), policy=tiny_policy)
    job = DPOJob(**common(tmp_path, tiny_adapter_dir, data=str(prompts_file), pairs_from="columns", overwrite=True))
    with pytest.raises(PreforchError, match="needs columns 'chosen' and 'rejected'"):
        run_dpo(job, scorer=toy_scorer(), policy=tiny_policy)
    job = DPOJob(**common(tmp_path, tiny_adapter_dir, data=str(pair_file(tmp_path)), min_margin=1e6, overwrite=True))
    with pytest.raises(PreforchError, match=f"dropped all {len(PROMPTS)} of {len(PROMPTS)}"):
        run_dpo(job, scorer=toy_scorer(), policy=tiny_policy)
    with pytest.raises(PreforchError, match="multiple of num_generations"):
        run_rl(GRPOJob(**common(tmp_path, tiny_adapter_dir, per_device_train_batch_size=3, num_generations=2)))
    with pytest.raises(PreforchError, match="needs the user's weights"):
        GRPOJob(**common(tmp_path, tiny_adapter_dir, weight_mode="fixed"))


def test_tag_values_in_training_prompts(tmp_path, tiny_policy, tiny_adapter_dir):
    """The SFT prompts carry the normalised scores of their own responses."""
    from preforch.align.conditioned import _training_examples
    from preforch.align.data import load_rows
    from preforch.align.runs import load_parts

    job = ConditionedJob(**common(tmp_path, tiny_adapter_dir, data=str(pair_file(tmp_path))))
    parts = load_parts(job, scorer=toy_scorer(), policy=tiny_policy)
    rows, source = load_rows(job.data)
    prompts, responses, scores = _training_examples(job, parts, rows, source)
    assert len(responses) == 2 * len(PROMPTS)  # chosen and rejected
    raw = toy_scorer().score(prompts, responses)
    assert np.allclose(scores, parts.normalizer.transform(raw))
    from preforch.align.conditioned import conditioned_rows

    built = conditioned_rows(prompts, responses, scores, parts.objectives, 1, chat=True)
    for messages, completion, s in zip(built["prompt"], built["completion"], scores):
        assert messages[-1]["role"] == "user" and completion == [{"role": "assistant", "content": completion[0]["content"]}]
        assert np.allclose(parse_tags(messages[-1]["content"], parts.objectives), s.round(1))
    # the chosen and the rejected reply of one prompt carry different tags
    n = len(PROMPTS)
    assert any(built["prompt"][i] != built["prompt"][i + n] for i in range(n))
