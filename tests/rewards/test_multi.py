"""CallableScorer and MultiScorer: shapes, duplicate names, NaN checks that name the row, cache use."""

from __future__ import annotations

import numpy as np
import pytest

from preforch.errors import PreforchError
from preforch.rewards.cache import ScoreCache
from preforch.rewards.callable import CallableScorer
from preforch.rewards.multi import MultiScorer, NonFiniteScoreError
from preforch.rewards.rules import ConcisenessScorer

PROMPTS = [f"prompt {i}" for i in range(7)]
RESPONSES = ["r " * (i + 1) for i in range(7)]


def length_fn(prompts, responses):
    return [float(len(r)) for r in responses]


def test_callable_scorer_one_and_two_columns():
    one = CallableScorer(length_fn, "length", identity="len:v1")
    assert one.score(["a", "b"], ["xy", "xyz"]).tolist() == [[2.0], [3.0]]
    two = CallableScorer(lambda p, r: np.stack([[len(x), -len(x)] for x in r]), ["a", "b"], identity="ab")
    assert two.score(["p"], ["xyz"]).tolist() == [[3.0, -3.0]]
    assert one.identity() == "callable:len:v1"


def test_callable_scorer_wrong_shape_and_bad_setup():
    bad = CallableScorer(lambda p, r: [1.0], ["a"], identity="bad")
    with pytest.raises(PreforchError, match=r"returned shape \(1,\) for 2 responses, expected \[2, 1\]"):
        bad.score(["p", "q"], ["x", "y"])
    with pytest.raises(PreforchError, match="identity"):
        CallableScorer(length_fn, "a", identity="")


def test_multi_scorer_stacks_columns_in_input_order():
    multi = MultiScorer([ConcisenessScorer(), CallableScorer(length_fn, "length", "len")], batch_size=3)
    out = multi.score(PROMPTS, RESPONSES)
    assert multi.objectives == ["concise", "length"]
    assert out.shape == (7, 2)
    np.testing.assert_array_equal(out[:, 1], [len(r) for r in RESPONSES])
    np.testing.assert_allclose(out[:, 0], [-np.log1p(i + 1) for i in range(7)])


def test_duplicate_objectives_are_named():
    with pytest.raises(PreforchError, match=r"duplicate objective name\(s\) \['concise'\]"):
        MultiScorer([ConcisenessScorer(), CallableScorer(length_fn, "concise", "x")])


def test_nan_names_the_row_and_objective_and_keeps_earlier_scores(tmp_path):
    def nan_on_row_6(prompts, responses):
        return [[float("nan") if p == "prompt 5" else 1.0, 2.0] for p in prompts]

    scorer = CallableScorer(nan_on_row_6, ["a", "b"], identity="nan6")
    with ScoreCache(tmp_path / "c.sqlite") as cache:
        multi = MultiScorer([scorer], batch_size=2, cache=cache)
        with pytest.raises(NonFiniteScoreError, match=r"row 6: objective 'a' scored nan") as info:
            multi.score(PROMPTS, RESPONSES)
        assert info.value.index == 5 and info.value.objective == "a"
        # Longest first: rows 7,6 form the first chunk; row 7 is finite and kept, row 6 is not stored.
        assert cache.count(scorer.identity()) == 1


def test_inf_in_second_scorer():
    inf = CallableScorer(lambda p, r: [float("inf") if x == RESPONSES[2] else 0.0 for x in r], "x", "inf")
    with pytest.raises(PreforchError, match=r"row 3: objective 'x' scored inf"):
        MultiScorer([ConcisenessScorer(), inf]).score(PROMPTS, RESPONSES)
