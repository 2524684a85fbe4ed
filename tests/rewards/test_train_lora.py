"""Reward heads with encoder LoRA: the merge is exact, the cached lower layers give the full pass, a tiny joint run
of two heads learns each head's own feature, saves the adapters only, and loads back scoring the same."""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest
import torch

from preforch.errors import PreforchError
from preforch.recipes.rm_train import RMTrainConfig, run_rm_train
from preforch.rewards.head_config import LORA_NAME, LoraSpec

FILLER = "the a cat dog house river tree car road music book water light city stone cloud".split()


def _pairs(path, good: str, bad: str, n: int, seed: int):
    rng = random.Random(seed)
    filler = lambda: " ".join(rng.choice(FILLER) for _ in range(rng.randint(3, 8)))  # noqa: E731
    rows = [{"prompt": f"{good} question {i}: {filler()}?", "chosen": f"{filler()} {good} {filler()}",
             "rejected": f"{filler()} {bad} {filler()}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _plain_and_adapted(tiny_encoder_dir, spec):
    from transformers import AutoModel

    from preforch.align.reward_lora import add_lora

    plain = AutoModel.from_pretrained(tiny_encoder_dir).eval()
    adapted = add_lora(copy.deepcopy(plain), spec)
    torch.manual_seed(1)
    for name, p in adapted.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.2)  # PEFT starts B at zero: make the adapters do something
    return plain, adapted.eval()


def test_merge_and_cached_lower_layers_match_peft(tiny_encoder_dir):
    from preforch.rewards import lora

    spec = LoraSpec(rank=4, alpha=8, layers=1)
    plain, adapted = _plain_and_adapted(tiny_encoder_dir, spec)
    ids = torch.randint(1000, 20000, (3, 12))
    mask = torch.ones_like(ids)
    mask[0, 9:] = 0
    types = torch.zeros_like(ids)
    with torch.no_grad():
        full = adapted(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state  # [3, 12, D]
        base = plain(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        top = lora.top_layers_forward(adapted, spec, lora.lower_states(plain, spec, ids, mask, types), mask)
    real = mask.bool()
    assert (full - base)[real].abs().max() > 1e-3  # the adapters change the output
    torch.testing.assert_close(top[real], full[real], atol=1e-5, rtol=1e-5)
    tensors = lora.lora_tensors(adapted)
    assert set(tensors) == set(lora.expected_lora_shapes(plain, spec)) and len(tensors) == 2 * 6  # q k v + 3 dense
    merged = copy.deepcopy(plain)
    lora.merge_lora(merged, tensors, spec, "test")
    with torch.no_grad():
        out = merged(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    torch.testing.assert_close(out[real], full[real], atol=1e-5, rtol=1e-5)
    bad = dict(tensors)
    bad.pop(next(iter(bad)))
    with pytest.raises(PreforchError, match="LoRA weights do not match"):
        lora.merge_lora(copy.deepcopy(plain), bad, spec, "test")
    with pytest.raises(PreforchError, match="layers 3, but the encoder has 2"):
        lora.top_indices(plain, LoraSpec(layers=3))


def test_joint_lora_heads_learn_their_own_pairs_and_round_trip(tmp_path, tiny_encoder_dir):
    from preforch.rewards.heads import SharedEncoderHeads

    heads = {"polite": _pairs(tmp_path / "polite.jsonl", "thanks", "idiot", 120, 0),
             "calm": _pairs(tmp_path / "calm.jsonl", "relax", "panic", 120, 1)}
    config = RMTrainConfig(heads=heads, lora_rank=4, lora_alpha=8, lora_layers=1, encoder=str(tiny_encoder_dir),
                           output_dir=str(tmp_path / "rm"), max_length=32, prompt_tokens=8, epochs=8, patience=8,
                           batch_size=16, lr=3e-3, lora_lr=3e-3, bootstrap=100, progress=False)
    result = run_rm_train(config)
    m = result.metrics
    assert list(m["objectives"]) == ["polite", "calm"] and m["lora"]["parameters"] > 0
    for objective in heads:
        assert m["objectives"][objective]["heldout_accuracy"] >= 0.85, (objective, m["objectives"][objective])
    assert m["history"][-1]["train_loss"] < m["history"][0]["train_loss"]
    out = tmp_path / "rm"
    saved = json.loads((out / "config.json").read_text())
    assert saved["encoder_lora"]["rank"] == 4 and saved["lora_fingerprint"] and (out / LORA_NAME).is_file()
    assert not (out / "encoder").exists()  # the adapters only, never a copy of the encoder
    card = (out / "MODEL_CARD.md").read_text()
    assert "## polite" in card and "## calm" in card and "longer reply wins" in card
    prompts, replies = ["q?"] * 4, ["well thanks", "you idiot", "relax now", "panic now"]
    loaded = SharedEncoderHeads.from_pretrained(out)
    np.testing.assert_allclose(loaded.score(prompts, replies), result.model.score(prompts, replies), atol=1e-4)
    s = loaded.score(prompts, replies)  # [4, 2]: polite, calm
    assert s[0, 0] > s[1, 0] and s[2, 1] > s[3, 1]
    from test_train_rm import assert_heads_provenance

    assert_heads_provenance(out, None, 0)
    from preforch.provenance import file_fingerprint, read_provenance

    assert read_provenance(out)["data"] == [
        {"objective": o, "source": str(p), "fingerprint": file_fingerprint(p), "rows": 120} for o, p in heads.items()]
    # the heads do not load on the plain encoder, nor with other adapters
    plain = SharedEncoderHeads.from_pretrained(out)
    plain.encoder.lora_fingerprint = ""
    with pytest.raises(PreforchError, match="LoRA"):
        SharedEncoderHeads.from_pretrained(out, encoder=plain.encoder)
    (out / LORA_NAME).write_bytes((out / LORA_NAME).read_bytes()[:-64] + bytes(64))
    with pytest.raises(PreforchError, match=LORA_NAME):
        SharedEncoderHeads.from_pretrained(out)


def test_lora_settings_are_checked():
    with pytest.raises(PreforchError, match="needs lora_rank"):
        RMTrainConfig(heads={"a": "x.jsonl"})
    with pytest.raises(PreforchError, match="exclude each other"):
        RMTrainConfig(lora_rank=4, finetune_encoder=True)
    with pytest.raises(PreforchError, match="targets"):
        RMTrainConfig(lora_rank=4, lora_targets=["attention"])
    with pytest.raises(PreforchError, match="cv_folds needs the frozen encoder"):
        RMTrainConfig(lora_rank=4, cv_folds=3)
    assert RMTrainConfig(lora_rank=4).head_data() == {"harmless": "embedded:hh"}


def test_an_interrupted_run_resumes_after_its_last_epoch(tmp_path, tiny_encoder_dir, monkeypatch):
    from preforch.align import reward_lora as train_lora

    heads = {"polite": _pairs(tmp_path / "polite.jsonl", "thanks", "idiot", 60, 0)}
    config = RMTrainConfig(heads=heads, lora_rank=2, lora_layers=1, encoder=str(tiny_encoder_dir), max_length=32,
                           prompt_tokens=8, epochs=3, patience=3, batch_size=16, bootstrap=20, progress=False,
                           output_dir=str(tmp_path / "whole"))
    whole = run_rm_train(config).metrics
    real, calls = train_lora._val_loss, []

    def stop_in_epoch_two(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train_lora, "_val_loss", stop_in_epoch_two)
    cut = RMTrainConfig(**{**config.__dict__, "output_dir": str(tmp_path / "cut")})
    with pytest.raises(KeyboardInterrupt):
        run_rm_train(cut)
    assert (tmp_path / "cut.resume" / "state.json").is_file() and not (tmp_path / "cut").exists()
    monkeypatch.setattr(train_lora, "_val_loss", real)
    resumed = run_rm_train(cut).metrics
    assert [h["val_loss"] for h in resumed["history"]] == pytest.approx([h["val_loss"] for h in whole["history"]],
                                                                        abs=1e-6)
    assert not (tmp_path / "cut.resume").exists()
    other = RMTrainConfig(**{**config.__dict__, "output_dir": str(tmp_path / "cut"), "lr": 0.5, "overwrite": True})
    train_lora.EpochCheckpoint(tmp_path / "cut.resume", cut).folder.mkdir()
    (tmp_path / "cut.resume" / "state.json").write_text('{"settings_hash": "x"}')
    with pytest.raises(PreforchError, match="other settings"):
        run_rm_train(other)


def test_tiny_lora_config_runs_from_the_cli(tmp_path, capsys):
    from pathlib import Path

    from preforch.cli.main import main

    config = Path(__file__).resolve().parents[2] / "configs" / "tiny" / "rm_lora.yaml"
    out = tmp_path / "rm"
    assert main(["rm", "train", "--config", str(config), "--output-dir", str(out), "--progress", "false"]) == 0
    printed = capsys.readouterr().out
    assert "harmless: held-out pairwise accuracy" in printed and "helpful: held-out pairwise accuracy" in printed
    assert (out / LORA_NAME).is_file() and json.loads((out / "config.json").read_text())["objectives"] == [
        "harmless", "helpful"]
