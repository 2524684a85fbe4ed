"""Reward-head training: Bradley–Terry math, the split by prompt, a tiny real run, the CLI and the built-ins."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from preforch.errors import PreforchError
from preforch.recipes.rm_train import RMTrainConfig, load_pairs, run_rm_train
from preforch.rewards.train_head import (
    bootstrap_interval,
    bradley_terry_loss,
    pairwise_accuracy,
    split_by_prompt,
    train_reward_head,
)

FILLER = "the a cat dog house river tree car road music book water light city stone cloud".split()


def test_bradley_terry_loss_hand_worked():
    # −log σ(1 − 0) = log(1 + e^−1) = 0.3132617; −log σ(0) = log 2 = 0.6931472; −log σ(−2) = log(1 + e^2) = 2.1269280
    loss = bradley_terry_loss(torch.tensor([1.0, 0.5, -1.0]), torch.tensor([0.0, 0.5, 1.0]))
    assert math.isclose(float(loss), (0.3132617 + 0.6931472 + 2.1269280) / 3, rel_tol=1e-6)
    assert math.isclose(float(bradley_terry_loss(torch.tensor([3.0]), torch.tensor([1.0]))),
                        math.log1p(math.exp(-2.0)), rel_tol=1e-6)


def test_pairwise_accuracy_and_bootstrap():
    acc = pairwise_accuracy(np.array([1.0, 0.0, 2.0, 1.0]), np.array([0.0, 1.0, 2.0, 0.5]))
    np.testing.assert_array_equal(acc, [1.0, 0.0, 0.5, 1.0])
    values = np.r_[np.ones(70), np.zeros(30)]
    groups = np.arange(100).astype(str)
    lo, hi = bootstrap_interval(values, groups, 2000, seed=0)
    assert lo < 0.7 < hi and 0.58 < lo and hi < 0.8
    assert (lo, hi) == bootstrap_interval(values, groups, 2000, seed=0)


def test_split_by_prompt_never_shares_a_prompt():
    prompts = [f"p{i % 40}" for i in range(200)]  # 40 prompts, 5 pairs each
    split = split_by_prompt(prompts, 0.2, 0.1, seed=3)
    sets = {k: {prompts[i] for i in v} for k, v in split.items()}
    assert not (sets["train"] & sets["heldout"]) and not (sets["val"] & sets["heldout"])
    assert not (sets["train"] & sets["val"])
    assert sum(len(v) for v in split.values()) == 200 and 3 <= len(sets["heldout"]) <= 14 and len(sets["val"]) >= 1
    again = split_by_prompt(prompts, 0.2, 0.1, seed=3)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    # a prompt's side depends on the prompt and the seed alone, not on the other rows (the adapter agrees)
    half = prompts[::2] + [f"other {i}" for i in range(30)]
    held_half = {half[i] for i in split_by_prompt(half, 0.2, 0.1, seed=3)["heldout"]}
    assert held_half & set(prompts) == sets["heldout"] & set(half)
    from preforch.data.split import split_by_prompt as adapter_split

    assert {prompts[i] for i in adapter_split(prompts, 0.1, 0.2, seed=3).test} == sets["heldout"]


def synthetic_pairs(path, n: int = 160, seed: int = 0):
    """The chosen reply says "thanks" and the rejected one "idiot"; everything else is random filler."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        filler = lambda: " ".join(rng.choice(FILLER) for _ in range(rng.randint(3, 8)))  # noqa: E731
        rows.append({"prompt": f"question {i}: {filler()}?", "chosen": f"{filler()} thanks {filler()}",
                     "rejected": f"{filler()} idiot {filler()}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_config(tmp_path, tiny_encoder_dir, **kw) -> RMTrainConfig:
    base = dict(data=str(synthetic_pairs(tmp_path / "pairs.jsonl")), encoder=str(tiny_encoder_dir),
                output_dir=str(tmp_path / "rm"), max_length=32, prompt_tokens=8, epochs=15, patience=15,
                batch_size=16, lr=3e-3, bootstrap=200, progress=False, objective="polite")
    base.update(kw)
    return RMTrainConfig(**base)


def test_tiny_training_learns_the_feature_and_writes_a_loadable_folder(tmp_path, tiny_encoder_dir):
    from preforch.rewards.heads import SharedEncoderHeads

    config = tiny_config(tmp_path, tiny_encoder_dir)
    result = run_rm_train(config)
    m = result.metrics
    assert m["heldout_accuracy"] >= 0.85 and m["train_accuracy"] >= 0.85, m
    assert 20 <= m["n_pairs"]["heldout"] <= 45 and sum(m["n_pairs"].values()) == 160
    assert m["history"][-1]["train_loss"] < m["history"][0]["train_loss"]
    out = tmp_path / "rm"
    for name in ("config.json", "model.safetensors", "MODEL_CARD.md", "metrics.json"):
        assert (out / name).is_file(), name
    card = (out / "MODEL_CARD.md").read_text()
    assert "Held-out pairwise accuracy" in card and f"{m['heldout_accuracy']:.3f}" in card
    loaded = SharedEncoderHeads.from_pretrained(out)
    scores = loaded.score(["q?", "q?"], ["well thanks", "you idiot"])
    assert loaded.objectives == ["polite"] and scores[0, 0] > scores[1, 0]
    assert_heads_provenance(out, config.data, 160)


def assert_heads_provenance(out, data, rows):
    """provenance.json names the heads as the scorer a {type: heads} spec builds (same fingerprint), the data file
    with its fingerprint and rows, and the version; a folder without it (saved before) still loads as a scorer."""
    import shutil

    from preforch import __version__
    from preforch.provenance import file_fingerprint, read_provenance, scorer_records
    from preforch.rewards.registry import build_scorers

    record = read_provenance(out)
    spec = {"type": "heads", "path": str(out)}
    assert record["scorers"] == scorer_records([spec], build_scorers([spec]))
    if data is not None:
        assert record["data"] == {"source": str(data), "fingerprint": file_fingerprint(data), "rows": rows}
    assert record["preforch_version"] == __version__
    old = out.parent / f"{out.name}_old"
    shutil.copytree(out, old)
    (old / "provenance.json").unlink()
    assert build_scorers([{"type": "heads", "path": str(old)}])[0].identity() == record["scorers"][0]["fingerprint"]


def test_same_seed_same_run(tmp_path, tiny_encoder_dir):
    config = tiny_config(tmp_path, tiny_encoder_dir, epochs=3, limit=60)
    first, again = (train_reward_head(config, load_pairs(config.data, config.limit)).metrics for _ in range(2))
    assert again["history"] == first["history"] and again["heldout_accuracy"] == first["heldout_accuracy"]


def test_attention_pooling_and_encoder_finetuning_change_parameters(tmp_path, tiny_encoder_dir):
    config = tiny_config(tmp_path, tiny_encoder_dir, pooling="response_attention", finetune_encoder=True,
                         features=["response", "product"], hidden=8, epochs=1, limit=30, encoder_lr=1e-3)
    from preforch.rewards.train_head import build_model

    before = build_model(config)
    enc_before = {k: v.clone() for k, v in before.encoder.model.state_dict().items()}
    result = run_rm_train(config)
    after = result.model
    assert any(not torch.equal(enc_before[k], v) for k, v in after.encoder.model.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    assert (tmp_path / "rm" / "encoder" / "model.safetensors").is_file()
    from preforch.rewards.heads import SharedEncoderHeads

    loaded = SharedEncoderHeads.from_pretrained(tmp_path / "rm")  # finds its own fine-tuned encoder
    np.testing.assert_allclose(loaded.score(["q"], ["thanks"]), after.score(["q"], ["thanks"]), atol=1e-5)
    assert_heads_provenance(tmp_path / "rm", config.data, 30)


def test_bad_input(tmp_path, tiny_encoder_dir):
    no_rejected = tmp_path / "chosen_only.jsonl"
    no_rejected.write_text(json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    with pytest.raises(PreforchError, match="no 'rejected' column"):
        load_pairs(str(no_rejected))
    with pytest.raises(PreforchError, match="unknown embedded set"):
        load_pairs("embedded:nope")
    with pytest.raises(PreforchError, match="heldout_fraction"):
        RMTrainConfig(heldout_fraction=1.5)
    with pytest.raises(PreforchError, match="pooling"):
        RMTrainConfig(pooling="max")
    (tmp_path / "rm").mkdir()
    with pytest.raises(PreforchError, match="output folder exists"):
        run_rm_train(tiny_config(tmp_path, tiny_encoder_dir))


def test_cli_help_and_run(tmp_path, tiny_encoder_dir, capsys):
    from preforch.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["rm", "train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--pooling" in text and "--finetune-encoder" in text and "Bradley" in text
    config = tmp_path / "rm.yaml"
    config.write_text(f"data: {synthetic_pairs(tmp_path / 'p.jsonl', n=60)}\nencoder: {tiny_encoder_dir}\n"
                      f"output_dir: {tmp_path / 'out'}\nmax_length: 32\nprompt_tokens: 8\nepochs: 2\nprogress: false\n")
    assert main(["rm", "train", "--config", str(config), "--objective", "kind", "--bootstrap", "50"]) == 0
    assert "held-out pairwise accuracy" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["config"]["objective"] == "kind"
    assert main(["rm", "train", "--config", str(config)]) == 2  # the folder exists now


def test_prompt_folds_and_margins(tmp_path):
    from preforch.recipes.rm_train import load_margins
    from preforch.rewards.train_head import _pair_weights, prompt_folds

    prompts = [f"p{i % 30}" for i in range(120)]
    idx = np.arange(10, 120)
    folds = prompt_folds(prompts, idx, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == idx.tolist()
    owners = [{prompts[i] for i in f} for f in folds]
    assert all(not (owners[a] & owners[b]) for a in range(5) for b in range(a + 1, 5))
    with pytest.raises(PreforchError, match="distinct prompts"):
        prompt_folds(prompts, idx, 40, seed=1)
    path = tmp_path / "m.jsonl"  # a margin column, UltraFeedback-style metadata, then a row with neither
    path.write_text(json.dumps({"margin": 2}) + "\n" + json.dumps({"metadata": {"score_chosen": 9, "score_rejected": 6.5}})
                    + "\n")
    np.testing.assert_allclose(load_margins(str(path), 2), [2.0, 2.5])
    uf = load_margins("embedded:ultrafeedback", len(load_pairs("embedded:ultrafeedback")))
    assert len(uf) == 889 and uf.min() == 0.5 and uf.max() == 8.0  # ties dropped, in load order
    w = _pair_weights(RMTrainConfig(margin_weighting="margin"), np.array([1.0, 3.0, 100.0]), np.array([0, 1]))
    np.testing.assert_allclose(w[:2], [0.5, 1.5])
    assert _pair_weights(RMTrainConfig(), np.ones(3), np.arange(3)) is None
    path.write_text(path.read_text() + json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(PreforchError, match="row 3: no 'margin'"):
        load_margins(str(path), 3)
    with pytest.raises(PreforchError, match="no rating margins"):
        load_margins("embedded:hh", 3)


def test_cv_settings_are_checked():
    for bad in (dict(cv_folds=1), dict(cv_grid={"lr": [0.1]}), dict(cv_folds=3, cv_grid={"seed": [1]}),
                dict(cv_folds=3, cv_grid={"lr": []}), dict(cv_folds=3, finetune_encoder=True),
                dict(margin_weighting="square"), dict(min_margin=-1.0)):
        with pytest.raises(PreforchError):
            RMTrainConfig(**bad)


def test_cv_selection_never_uses_heldout_and_writes_the_card(tmp_path, tiny_encoder_dir, monkeypatch):
    from preforch.rewards import train_head

    path = synthetic_pairs(tmp_path / "margins.jsonl", n=90)  # tiny_config rewrites pairs.jsonl
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "margin": 0.5 + (i % 3)}) + "\n" for i, r in enumerate(rows)))
    seen = []
    real = train_head.cross_validate

    def spy(config, pairs, pool, *args):
        seen.append(pool.copy())
        return real(config, pairs, pool, *args)

    config = tiny_config(tmp_path, tiny_encoder_dir, data=str(path), epochs=4, patience=4, cv_folds=3,
                         cv_grid={"hidden": [0, 4], "min_margin": [0.0, 1.0]})
    monkeypatch.setattr(train_head, "cross_validate", spy)
    result = run_rm_train(config)
    m = result.metrics
    split = split_by_prompt(load_pairs(str(path)).prompts, config.heldout_fraction, config.val_fraction, config.seed)
    assert len(seen) == 4 and all(not set(p) & set(split["heldout"].tolist()) for p in seen)
    assert len(seen[0]) == len(split["train"]) + len(split["val"])
    cands = m["selection"]["candidates"]
    best = min(cands, key=lambda r: r["cv_loss"])
    assert m["selection"]["selected"] == best["settings"]
    assert {k: m["config"][k] for k in ("hidden", "min_margin")} == best["settings"]
    assert all(0.0 <= r["cv_accuracy"] <= 1.0 and len(r["fold_accuracy"]) == 3 for r in cands)
    expected_train = sum(1 for i in split["train"] if 0.5 + (i % 3) >= best["settings"]["min_margin"])
    assert m["trained_pairs"] == expected_train
    card = (tmp_path / "rm" / "MODEL_CARD.md").read_text()
    assert "## Model selection" in card and "3-fold cross-validation by prompt" in card
    assert oct((tmp_path / "rm" / "model.safetensors").stat().st_mode & 0o777) == "0o644"
