"""Pure parts of DPO pair labelling and Rewards-in-Context tags."""

import numpy as np
import pytest

from preforch.align.dpo import make_pairs
from preforch.conversation import Conversation
from preforch.errors import PreforchError
from preforch.infer.conditioning import (
    Conditioning,
    conditioned_prompts,
    desired_scores,
    format_tags,
    parse_tags,
    strip_tags,
    tag_prompt,
)

OBJ = ["harmless", "helpful"]


def test_pairs_by_weighted_reward_with_margin_filter():
    cands = [["a", "b", "c"], ["d", "e"]]
    s = [np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), np.array([[0.0, 0.0], [0.05, 0.0]])]
    w = np.array([[0.9, 0.1], [0.5, 0.5]])
    pairs = make_pairs(cands, s, w, min_margin=0.1)
    # row 0: R = (0.9, 0.1, 0.5) → chosen a, rejected b, gap 0.8; row 1: gap 0.025 < 0.1 → dropped
    assert pairs.index == [0] and pairs.chosen == ["a"] and pairs.rejected == ["b"] and pairs.dropped == 1
    assert pairs.gap == pytest.approx([0.8])
    # other weights flip the labels of the same candidates
    flipped = make_pairs(cands, s, np.array([[0.1, 0.9], [0.5, 0.5]]), min_margin=0.1)
    assert flipped.chosen == ["b"] and flipped.rejected == ["a"]


def test_modpo_margin_is_weighted_difference_of_other_objectives():
    s = [np.array([[1.0, 0.2], [0.0, 0.6]])]
    pairs = make_pairs([["a", "b"]], s, np.array([[0.7, 0.3]]), 0.0, other_objectives=np.array([0.0, 1.0]),
                       margin_scale=2.0)
    # chosen a (R 0.76 vs 0.18); margin = 2 · 0.3 · (0.2 − 0.6) = −0.24
    assert pairs.chosen == ["a"] and pairs.margin == pytest.approx([-0.24])


def test_tag_round_trip():
    values = np.array([1.234, -0.56])
    tagged = tag_prompt("How are you?", OBJ, values, 2)
    assert np.allclose(parse_tags(tagged, OBJ), [1.23, -0.56])
    assert strip_tags(tagged, OBJ, values, 2) == Conversation.from_text("How are you?")
    assert tagged.last_user.startswith("How are you?\n\n<")


def test_strip_keeps_prompt_characters_that_rstrip_would_eat():
    values = [0.5, 1.0]
    prompt = "rate this: <helpful: 1.0> 0.5>"  # ends in characters that also occur in the tags
    tagged = tag_prompt(prompt, OBJ, values, 1)
    assert strip_tags(tagged, OBJ, values, 1).last_user == prompt
    assert tagged.last_user.rstrip(format_tags(OBJ, values, 1)) != prompt  # what the reference code's rstrip does
    with pytest.raises(PreforchError, match="does not end"):
        strip_tags(prompt, OBJ, values, 1)
    with pytest.raises(PreforchError, match="helpful"):
        parse_tags("x <harmless: 1.0>", OBJ)


def test_ric_mapping():
    cond = Conditioning(OBJ, 1, "ric", low=[-1.0, -2.0], high=[1.0, 2.0])
    w = np.array([[1.0, 0.0], [0.5, 0.5]])
    out = desired_scores(w, cond)
    # one-hot → (high_0, low_1); uniform → w/‖w‖₂ = 0.7071 each
    assert np.allclose(out[0], [1.0, -2.0])
    assert np.allclose(out[1], [0.70711 * 2 - 1, 0.70711 * 4 - 2], atol=1e-4)
    linear = desired_scores(w, Conditioning(OBJ, 1, "linear", [-1.0, -2.0], [1.0, 2.0]))
    assert np.allclose(linear[1], [1.0, 2.0])
    tagged = conditioned_prompts(["hi"], w[:1], cond)[0]
    assert np.allclose(parse_tags(tagged, OBJ), [1.0, -2.0]) and strip_tags(tagged, OBJ, out[0], 1).last_user == "hi"
