"""HFScorer on tiny random sequence classifiers built in fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_rm import CHAT_TEMPLATE, make_bert_classifier, make_llama_classifier

from preforch.errors import PreforchError
from preforch.rewards.hf import HFScorer, HFScorerConfig
from preforch.rewards.scorer import Scorer

PROMPTS = ["What is the capital of France?", "Tell me a joke.", "hi", "Explain gravity in one line."]
RESPONSES = ["Paris.", "Why did the chicken cross the road? To get to the other side.", "hello there",
             "Masses attract each other."]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return make_bert_classifier(tmp_path_factory.mktemp("bert_rm"), chat_template=CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return make_llama_classifier(tmp_path_factory.mktemp("llama_rm"))


def _scorer(path, **kwargs) -> HFScorer:
    return HFScorer(HFScorerConfig(path=str(path), device="cpu", **kwargs))


def test_templates_build_the_expected_texts(bert_dir):
    chat = _scorer(bert_dir, template="chat")
    assert chat.format("P", "R") == "<|user|>P\n<|assistant|>R\n"
    assert _scorer(bert_dir, template="plain", separator=" || ").format("P", "R") == "P || R"
    # BERT has no BOS token: the reversed template falls back to [CLS] between response and prompt.
    assert _scorer(bert_dir, template="reversed").format("P", "R") == "R[CLS]P"
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
             {"role": "user", "content": "P"}]
    assert chat.format(turns, "R") == "<|user|>hi\n<|assistant|>hello\n<|user|>P\n<|assistant|>R\n"
    # HH markup, as HH-trained reward models (Ray2333's) read it, whatever shape the prompt came in
    hh = _scorer(bert_dir, template="hh")
    assert hh.format(turns, "R") == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: P\n\nAssistant: R"
    assert hh.format("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: P\n\nAssistant:", "R") == hh.format(turns, "R")


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_batched_scores_equal_one_at_a_time_in_input_order(which, bert_dir, llama_dir):
    scorer = _scorer(bert_dir if which == "bert" else llama_dir, template="plain", batch_size=3)
    assert isinstance(scorer, Scorer) and scorer.objectives == ["reward"]
    batched = scorer.score(PROMPTS, RESPONSES)
    assert batched.shape == (4, 1) and batched.dtype == np.float64
    single = np.array([scorer.score([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert np.ptp(batched) > 1e-3  # the rows really differ, so an order mix-up would show


def test_logit_by_label_name_and_index(bert_dir):
    by_label = _scorer(bert_dir, label="good", template="plain").score(PROMPTS, RESPONSES)
    by_index = _scorer(bert_dir, logit_index=1, template="plain").score(PROMPTS, RESPONSES)
    first = _scorer(bert_dir, template="plain").score(PROMPTS, RESPONSES)
    np.testing.assert_array_equal(by_label, by_index)
    assert not np.allclose(by_index, first)


def test_logit_index_out_of_range_and_unknown_label(bert_dir):
    with pytest.raises(PreforchError, match=r"logit_index 2 is out of range.*num_labels=2"):
        _scorer(bert_dir, logit_index=2)
    with pytest.raises(PreforchError, match=r"unknown label 'nice'.*\['bad', 'good'\]"):
        _scorer(bert_dir, label="nice")


def test_truncation_is_counted_and_follows_the_side(bert_dir):
    long_a = "the cat sat on the mat " * 20 + "and it was happy"
    long_b = "the cat sat on the mat " * 20 + "and it was furious today"
    prompts, responses = ["q", "q", "q"], [long_a, long_b, "short"]
    right = _scorer(bert_dir, template="plain", max_length=16, truncation_side="right")
    s_right = right.score(prompts, responses)
    assert (right.truncated, right.seen) == (2, 3)
    # Cut from the right, the two long replies keep the same first 16 tokens and score the same.
    assert s_right[0, 0] == pytest.approx(s_right[1, 0], abs=1e-6)
    left = _scorer(bert_dir, template="plain", max_length=16, truncation_side="left")
    s_left = left.score(prompts, responses)
    assert left.truncated == 2
    assert abs(s_left[0, 0] - s_left[1, 0]) > 1e-4  # their different endings are kept
    assert right.identity() != left.identity()


def test_dtype_bfloat16_returns_float64(llama_dir):
    out = _scorer(llama_dir, template="chat", dtype="bfloat16").score(PROMPTS, RESPONSES)
    assert out.dtype == np.float64 and np.isfinite(out).all()


def test_identity_changes_with_settings_and_weights(bert_dir, tmp_path):
    base = _scorer(bert_dir, template="plain").identity()
    assert base == _scorer(bert_dir, template="plain").identity()
    assert base != _scorer(bert_dir, template="chat").identity()
    other = make_bert_classifier(tmp_path / "other", seed=1)
    assert base.split(":")[1] != _scorer(other, template="plain").identity().split(":")[1]


def test_missing_path_and_hub_names_offline(tmp_path, monkeypatch):
    with pytest.raises(PreforchError, match="does not exist"):
        _scorer(tmp_path / "nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PreforchError, match="HF_HUB_OFFLINE=1"):
        _scorer("someone/some-reward-model")


def test_not_a_sequence_classifier(tiny_encoder_dir, tmp_path):
    with pytest.raises(PreforchError, match="not a sequence classifier"):
        _scorer(tiny_encoder_dir)  # a plain BertModel: loading it would silently add a random head
    (tmp_path / "empty").mkdir()
    with pytest.raises(PreforchError, match="no config.json"):
        _scorer(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "bert",
                                                    "architectures": ["BertForSequenceClassification"]}))
    with pytest.raises(PreforchError, match="cannot load"):
        _scorer(broken)  # no weights, no tokenizer


def test_chat_template_required_for_chat(tmp_path):
    folder = make_bert_classifier(tmp_path / "nochat")
    with pytest.raises(PreforchError, match="no chat template"):
        _scorer(folder, template="chat")


def test_config_validation():
    with pytest.raises(PreforchError, match="'path' is required"):
        HFScorerConfig()
    with pytest.raises(PreforchError, match="not both"):
        HFScorerConfig(path="x", logit_index=1, label="good")
