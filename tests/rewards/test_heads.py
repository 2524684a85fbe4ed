"""Shared-encoder reward heads: one pass equals one head at a time, save→load round trips, bad folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from preforch.errors import PreforchError
from preforch.rewards.heads import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    HeadsConfig,
    HeadSpec,
    SharedEncoderHeads,
    read_heads_folder,
)
from preforch.rewards.scorer import Scorer

PROMPTS = ["Human: how do I bake bread?\n\nAssistant:", "Human: tell me a joke\n\nAssistant:",
           "What is 2 + 2? " * 30, "hi"]
RESPONSES = ["Mix flour, water, yeast and salt, then knead and bake.", "I can't help with that.",
             "four " * 200, "Hello! How can I help you today?"]


@pytest.fixture(scope="module")
def encoder(tiny_encoder_dir):
    from preforch.models.encoders import SentenceEncoder

    return SentenceEncoder(str(tiny_encoder_dir), max_length=64, normalize=False)


def make_heads(encoder, seed: int = 0, max_length: int = 64) -> SharedEncoderHeads:
    torch.manual_seed(seed)
    config = HeadsConfig(heads=[HeadSpec("harmless", pooling="response_mean"),
                                HeadSpec("helpful", pooling="response_attention",
                                         features=["response", "prompt", "product", "difference", "length"], hidden=8),
                                HeadSpec("plain", pooling="mean", hidden=4, dropout=0.1)],
                         encoder=str(encoder.path), max_length=max_length, prompt_tokens=16)
    return SharedEncoderHeads(config, encoder=encoder)


def test_shared_pass_equals_heads_one_at_a_time(encoder):
    model = make_heads(encoder)
    assert isinstance(model, Scorer)
    together = model.score(PROMPTS, RESPONSES, batch_size=3)  # [N, K]
    assert together.shape == (4, 3) and together.dtype == np.float64 and np.isfinite(together).all()
    alone = np.stack([model.score_head(name, PROMPTS, RESPONSES, batch_size=1) for name in model.objectives], 1)
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)
    assert np.ptp(together, axis=0).min() > 0  # the heads really look at the rows
    with pytest.raises(PreforchError, match="no head"):
        model.score_head("nope", PROMPTS, RESPONSES)


def test_combined_folders_equal_separate_heads(encoder, tmp_path):
    a, b = make_heads(encoder, seed=1), make_heads(encoder, seed=2)
    b.config.heads = [HeadSpec("other", **{k: v for k, v in vars(b.config.heads[1]).items() if k != "objective"})]
    b.heads = torch.nn.ModuleDict({"other": b.heads["helpful"]})
    both = SharedEncoderHeads.combine([a, b])
    assert both.objectives == ["harmless", "helpful", "plain", "other"]
    np.testing.assert_allclose(both.score(PROMPTS, RESPONSES)[:, 3], b.score(PROMPTS, RESPONSES)[:, 0], atol=1e-5)
    with pytest.raises(PreforchError, match="cannot share one pass"):
        SharedEncoderHeads.combine([a, make_heads(encoder, max_length=32)])


def test_save_load_round_trip_compares_every_tensor(encoder, tmp_path):
    model = make_heads(encoder)
    before = model.score(PROMPTS, RESPONSES)
    model.save_pretrained(tmp_path / "heads")
    config = json.loads((tmp_path / "heads" / CONFIG_NAME).read_text())
    assert config["format_version"] == 1 and config["objectives"] == ["harmless", "helpful", "plain"]
    assert list(config) == sorted(config)
    loaded = SharedEncoderHeads.from_pretrained(tmp_path / "heads", encoder=encoder)
    assert loaded.config == model.config
    saved, again = model.state_dict(), loaded.state_dict()
    assert sorted(saved) == sorted(again) and len(saved) >= 8
    for key in saved:
        assert torch.equal(saved[key], again[key]), key
    np.testing.assert_allclose(loaded.score(PROMPTS, RESPONSES), before, atol=1e-6)
    assert loaded.identity() == model.identity()
    with pytest.raises(PreforchError, match="exists"):
        model.save_pretrained(tmp_path / "heads")


def test_truncation_keeps_prompt_end_and_response_start(encoder):
    model = make_heads(encoder, max_length=24)
    tok = encoder.tokenizer
    rows = model.build_inputs(["alpha " * 50 + "omega"], ["first " + "middle " * 50])
    ids, start, full = rows[0]
    assert full == 51  # the length feature sees the untruncated reply
    assert len(ids) == 24
    text_prompt, text_resp = tok.decode(ids[1 : start - 1]), tok.decode(ids[start:-1])
    assert text_prompt.endswith("omega") and text_resp.startswith("first")
    assert start - 2 == 16  # the prompt keeps prompt_tokens when the response is long
    short = model.build_inputs(["alpha " * 50 + "omega"], ["ok"])[0]
    assert len(short[0]) == 24 and short[1] == 24 - 2  # a short reply leaves its room to the prompt


def _saved(encoder, tmp_path):
    path = tmp_path / "heads"
    make_heads(encoder).save_pretrained(path)
    return path


def test_missing_or_truncated_safetensors(encoder, tmp_path):
    path = _saved(encoder, tmp_path)
    data = (path / WEIGHTS_NAME).read_bytes()
    (path / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(PreforchError, match="unreadable safetensors"):
        read_heads_folder(path)
    (path / WEIGHTS_NAME).unlink()
    with pytest.raises(PreforchError, match="model.safetensors: missing"):
        SharedEncoderHeads.from_pretrained(path, encoder=encoder)


def test_unknown_format_version_and_strict_keys(encoder, tmp_path):
    from safetensors.torch import load_file, save_file

    path = _saved(encoder, tmp_path)
    config = json.loads((path / CONFIG_NAME).read_text())
    (path / CONFIG_NAME).write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(PreforchError, match="format_version 99"):
        read_heads_folder(path)
    (path / CONFIG_NAME).write_text(json.dumps(config))
    tensors = load_file(str(path / WEIGHTS_NAME))
    save_file({**tensors, "heads.extra.weight": torch.zeros(1)}, str(path / WEIGHTS_NAME))
    with pytest.raises(PreforchError, match="unexpected"):
        SharedEncoderHeads.from_pretrained(path, encoder=encoder)
    key = next(k for k in tensors if k.endswith("mlp.1.weight"))
    save_file({**tensors, key: torch.zeros(1, 3)}, str(path / WEIGHTS_NAME))
    with pytest.raises(PreforchError, match="has shape"):
        SharedEncoderHeads.from_pretrained(path, encoder=encoder)


def test_encoder_mismatch_is_refused(encoder, tmp_path):
    path = _saved(encoder, tmp_path)
    config = json.loads((path / CONFIG_NAME).read_text())
    (path / CONFIG_NAME).write_text(json.dumps({**config, "encoder_fingerprint": "0123456789abcdef"}))
    with pytest.raises(PreforchError, match="trained on encoder"):
        SharedEncoderHeads.from_pretrained(path, encoder=encoder)


def test_bad_specs():
    with pytest.raises(PreforchError, match="pooling"):
        HeadSpec("x", pooling="max")
    with pytest.raises(PreforchError, match="features"):
        HeadSpec("x", features=["response", "smell"])
    with pytest.raises(PreforchError, match="only the 'response' and 'length'"):
        HeadsConfig(heads=[HeadSpec("x", features=["response", "prompt"])], input_format="response")
    with pytest.raises(PreforchError, match="unique"):
        HeadsConfig(heads=[HeadSpec("x"), HeadSpec("x")])


def test_builtin_heads_load_and_score_the_example():
    from preforch.data.example import load_hh, load_ultrafeedback
    from preforch.rewards.builtin import BUILTIN_OBJECTIVES, load_builtin_scorer

    scorer = load_builtin_scorer()
    assert isinstance(scorer, Scorer) and scorer.objectives == BUILTIN_OBJECTIVES == ["harmless", "helpful", "concise"]
    hh, uf = load_hh(limit=3), load_ultrafeedback(limit=3)
    scores = scorer.score(hh.prompts + uf.prompts, hh.chosen + uf.chosen)  # [6, 3]
    assert scores.shape == (6, 3) and np.isfinite(scores).all()
    assert np.ptp(scores, axis=0).min() > 0


@pytest.mark.slow  # 400 MiniLM passes: ~20 s on a busy 2-core CPU
def test_builtin_harmless_head_prefers_chosen_on_heldout_hh_pairs():
    from preforch.data.example import load_hh
    from preforch.models.builtin import BUILTIN_HEADS
    from preforch.rewards.train_head import split_by_prompt

    metrics = json.loads((BUILTIN_HEADS["harmless"] / "metrics.json").read_text())
    cfg = metrics["config"]
    h = list(BUILTIN_HEADS).index("harmless")
    hh = load_hh()
    held = split_by_prompt(hh.prompts, cfg["heldout_fraction"], cfg["val_fraction"], cfg["seed"])["heldout"][:200]
    heads = SharedEncoderHeads.from_pretrained(BUILTIN_HEADS["harmless"])
    pairs = hh.subset(held)
    chosen = heads.score(pairs.prompts, pairs.chosen, batch_size=64)[:, h]
    rejected = heads.score(pairs.prompts, pairs.rejected, batch_size=64)[:, h]
    assert len(held) == 200 and (chosen > rejected).mean() > 0.55
