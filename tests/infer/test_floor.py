"""The served floor (issue 22): a reply must clear min_score on every objective weighted above share, else the
floor's reply is served and the result says so. Hand-worked numbers, best-of-N end to end with a table scorer."""

import numpy as np
import pytest
from test_best_of_n import OBJECTIVES, table_scorer

from preforch.errors import PreforchError
from preforch.infer.best_of_n import best_of_n
from preforch.infer.floor import DEFAULT_REPLY, Floor, choose_with_floor, floor_passes
from preforch.rewards.normalize import Normalizer
from preforch.weighting import Weighting


def test_floor_watches_only_objectives_weighted_above_the_share():
    s = np.array([[[-2.0, 1.0], [0.5, -3.0]]])  # one prompt, two candidates, K = 2
    assert floor_passes(s, np.array([[0.9, 0.1]]), -1.0, 0.5).tolist() == [[False, True]]
    assert floor_passes(s, np.array([[0.1, 0.9]]), -1.0, 0.5).tolist() == [[True, False]]
    assert floor_passes(s, np.array([[0.5, 0.5]]), -1.0, 0.5).tolist() == [[True, True]]  # none above the share
    assert floor_passes(s, np.array([[0.5, 0.5]]), -1.0, 0.4).tolist() == [[False, False]]


def test_choose_with_floor_takes_the_best_passing_candidate_or_floors():
    rewards = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    passes = np.array([[False, True, True], [False, False, False]])
    best, floored = choose_with_floor(rewards, passes)
    assert best.tolist() == [1, 0] and floored.tolist() == [False, True]


def test_best_of_n_serves_the_floor_reply_when_nothing_passes():
    prompts = ["tell me something"] * 2
    candidates = [["safe", "useful"], ["useful", "short"]]  # the second prompt has no harmless candidate
    norm = Normalizer(OBJECTIVES, clip=None)
    norm.stats = {"mean": [1.0] * 3, "std": [1.0] * 3}  # s̃ = raw − 1: 1 where a candidate is strong, else −1
    weighting = Weighting("fixed", [0.6, 0.3, 0.1])  # the floor watches harmless only (share 0.5)
    out = best_of_n(prompts, lambda p, n: candidates, table_scorer(), 2, weighting=weighting, normalizer=norm,
                    floor=Floor(True, min_score=0.0, share=0.5))
    assert out.responses == ["safe", DEFAULT_REPLY] and out.floored.tolist() == [False, True]
    assert [r["floored"] for r in out.to_records()] == [False, True]
    plain = best_of_n(prompts, lambda p, n: candidates, table_scorer(), 2, weighting=weighting, normalizer=norm)
    assert plain.responses == ["safe", "useful"] and plain.floored is None  # off: the best under R, as before


def test_floor_settings_are_checked():
    with pytest.raises(PreforchError, match="floor: min_score must be finite"):
        Floor(True, min_score=float("nan"))
    with pytest.raises(PreforchError, match="share"):
        Floor(True, share=1.0)


def test_floor_against_the_reply_compares_each_candidate_with_the_refusal_for_that_prompt():
    s = np.array([[[0.2, 1.0], [0.6, -3.0]], [[0.2, 1.0], [0.6, -3.0]]])  # two prompts, two candidates, K = 2
    w = np.array([[0.9, 0.1], [0.9, 0.1]])  # the first objective watched
    reply = np.array([[0.5, 0.0], [0.1, 0.0]])  # the refusal scores 0.5 on the first prompt, 0.1 on the second
    assert floor_passes(s, w, reply, 0.5).tolist() == [[False, True], [True, True]]


def test_best_of_n_against_the_reply_scores_the_refusal_as_one_more_candidate():
    from preforch.rewards.callable import CallableScorer

    table = {"safe": [2.0, 0.0, 0.0], "useful": [0.0, 2.0, 0.0], "meh": [0.5, 1.0, 0.0], "No.": [1.0, 0.0, 0.0]}
    seen = []

    def score(prompts, responses):
        seen.extend(responses)
        return [table[r] for r in responses]

    scorer = CallableScorer(score, OBJECTIVES, "table-reply-v1")
    candidates = [["safe", "useful"], ["useful", "meh"]]  # the second prompt: nothing as harmless as refusing
    norm = Normalizer(OBJECTIVES, clip=None)
    norm.stats = {"mean": [0.0] * 3, "std": [1.0] * 3}
    floor = Floor(True, min_score=-100.0, share=0.5, reply="No.", against="reply")  # min_score is not the bar
    out = best_of_n(["a", "b"], lambda p, n: candidates, scorer, 2, weighting=Weighting("fixed", [0.6, 0.3, 0.1]),
                    normalizer=norm, floor=floor, return_candidates=True)
    assert out.responses == ["safe", "No."] and out.floored.tolist() == [False, True]
    assert seen.count("No.") == 2 and out.normalized_scores.shape == (2, 2, 3)  # scored, not a candidate
    with pytest.raises(PreforchError, match="against score or reply"):
        Floor(True, against="sometimes")
