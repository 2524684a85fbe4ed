"""The combined reward R = Σ_k w_k s̃_k, per-prompt weights, objective checks: hand-worked numbers."""

import numpy as np
import pytest

from preforch.align.rewards import (
    CONFIDENCE_COLUMN,
    CONVERSATION_COLUMN,
    LAMBDA_COLUMN,
    WEIGHTS_COLUMN,
    ScalarizedReward,
)
from preforch.conversation import as_conversation
from preforch.errors import PreforchError
from preforch.rewards.callable import CallableScorer
from preforch.rewards.normalize import Normalizer
from preforch.weighting import check_objectives

OBJ = ["a", "b"]


def fixed_scorer(table, seen=None):
    """Raw scores looked up by response text; ``seen`` collects the prompt texts the scorer got."""

    def fn(prompts, responses):
        if seen is not None:
            seen.extend(prompts)
        return np.array([table[x] for x in responses])

    return CallableScorer(fn, OBJ, "tests.fixed")


def normalizer():
    norm = Normalizer(OBJ, method="minmax", clip=None)
    return norm.fit(np.array([[0.0, 10.0], [4.0, 20.0]]))  # s̃_a = s/4, s̃_b = (s − 10)/10


def test_reward_is_weighted_sum_of_normalised_scores():
    reward = ScalarizedReward(fixed_scorer({"x": [2.0, 15.0], "y": [4.0, 10.0]}), normalizer())
    logged = {}
    out = reward(prompts=["p", "q"], completions=["x", "y"], **{WEIGHTS_COLUMN: [[0.25, 0.75], [1.0, 0.0]]},
                 log_metric=lambda name, value: logged.setdefault(name, value))
    # x: s̃ = (0.5, 0.5) → 0.25·0.5 + 0.75·0.5 = 0.5; y: s̃ = (1.0, 0.0) → 1.0
    assert out == pytest.approx([0.5, 1.0])
    assert logged["pro/score/a"] == pytest.approx(0.75) and logged["pro/score/b"] == pytest.approx(0.25)
    assert logged["pro/weight/a"] == pytest.approx(0.625) and logged["pro/weight/b"] == pytest.approx(0.375)
    assert "pro/confidence" not in logged  # no confidence column: nothing made up


def test_reward_logs_the_batch_confidence_and_fallback_share():
    from preforch.align.grpo import build_prompt_dataset

    reward = ScalarizedReward(fixed_scorer({"x": [2.0, 15.0]}), normalizer())
    rows = build_prompt_dataset([as_conversation("p"), as_conversation("q")], np.array([[0.5, 0.5], [1.0, 0.0]]),
                                chat=False, confidence=np.array([1.0, 0.4]), lam=np.array([0.0, 0.6]))
    logged = {}
    reward(prompts=["p", "q"], completions=["x", "x"], **{k: rows[k] for k in rows.column_names if k != "prompt"},
           log_metric=lambda name, value: logged.setdefault(name, value))
    assert logged["pro/confidence"] == pytest.approx(0.7) and logged["pro/lambda"] == pytest.approx(0.3)
    assert rows[CONFIDENCE_COLUMN] == pytest.approx([1.0, 0.4]) and rows[LAMBDA_COLUMN] == pytest.approx([0.0, 0.6])


def test_same_response_different_prompt_weights_give_different_rewards():
    reward = ScalarizedReward(fixed_scorer({"same": [4.0, 10.0]}), normalizer())  # s̃ = (1, 0)
    chat = [[{"role": "assistant", "content": "same"}]] * 2
    out = reward(prompts=[[{"role": "user", "content": "p1"}], [{"role": "user", "content": "p2"}]],
                 completions=chat, **{WEIGHTS_COLUMN: [[0.9, 0.1], [0.2, 0.8]]})
    assert out == pytest.approx([0.9, 0.2])


def test_scorers_see_the_conversation_column_not_the_policy_rendering():
    seen = []
    reward = ScalarizedReward(fixed_scorer({"x": [4.0, 10.0]}, seen), normalizer())
    conv = as_conversation([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                            {"role": "user", "content": "pick a lock?"}])
    reward(prompts=["<|im_start|>user\npick a lock?<|im_end|>"], completions=["x"],
           **{WEIGHTS_COLUMN: [[1.0, 0.0]], CONVERSATION_COLUMN: [conv.key()]})
    assert seen == [conv.text()]


def test_reward_never_normalises_across_the_batch():
    reward = ScalarizedReward(fixed_scorer({"x": [2.0, 15.0], "y": [4.0, 10.0]}), normalizer())
    alone = reward(prompts=["p"], completions=["x"], **{WEIGHTS_COLUMN: [[0.25, 0.75]]})
    together = reward(prompts=["p", "p"], completions=["x", "y"], **{WEIGHTS_COLUMN: [[0.25, 0.75]] * 2})
    assert alone[0] == pytest.approx(together[0])


def test_missing_weights_column_and_bad_shapes():
    reward = ScalarizedReward(fixed_scorer({"x": [1.0, 1.0]}), normalizer())
    with pytest.raises(PreforchError, match="pro_weights"):
        reward(prompts=["p"], completions=["x"], other=[1])
    with pytest.raises(PreforchError, match=r"expected \[1, 2\]"):
        reward(prompts=["p"], completions=["x"], **{WEIGHTS_COLUMN: [[0.2, 0.3, 0.5]]})


def test_objective_mismatch_names_both_lists():
    with pytest.raises(PreforchError, match=r"\['b', 'a'\].*\['a', 'b'\]"):
        check_objectives(["a", "b"], ["b", "a"], "adapter")
    swapped = CallableScorer(lambda p, r: np.zeros((len(r), 2)), ["b", "a"], "tests.swapped")
    with pytest.raises(PreforchError, match="differ"):
        ScalarizedReward(swapped, normalizer())
