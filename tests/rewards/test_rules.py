"""Rule scorers: hand-worked conciseness numbers, sentiment and profanity directions, lazy imports."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from preforch.errors import PreforchError
from preforch.rewards.rules import ConcisenessScorer, ProfanityScorer, SentimentScorer, rule_scorer
from preforch.rewards.scorer import Scorer


def test_conciseness_is_minus_log1p_words():
    scorer = ConcisenessScorer()
    out = scorer.score(["p"] * 3, ["", "one two  three\nfour", "word " * 99])
    assert out.shape == (3, 1) and out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], [0.0, -math.log(5), -math.log(100)])
    assert scorer.objectives == ["concise"] and isinstance(scorer, Scorer)


def test_sentiment_orders_positive_above_negative():
    scorer = SentimentScorer()
    out = scorer.score(["p"] * 3, ["I love this, it is wonderful!", "The table is brown.", "I hate this, awful."])
    assert out[0, 0] > 0.5 and out[2, 0] < -0.5 and abs(out[1, 0]) < 0.1
    assert scorer.objectives == ["positive"]


def test_profanity_scores_clean_text_higher():
    scorer = rule_scorer("profanity", objective="clean")
    out = scorer.score(["p", "p"], ["Thank you for your kind help.", "you are a fucking idiot"])
    assert scorer.objectives == ["clean"]
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert out[0, 0] > 0.9 and out[1, 0] < 0.1
    assert ProfanityScorer().score([], []).shape == (0, 1)


def test_unknown_rule_and_missing_package(monkeypatch):
    with pytest.raises(PreforchError, match="unknown rule scorer 'long'"):
        rule_scorer("long")
    monkeypatch.setitem(sys.modules, "profanity_check", None)  # import now fails as if not installed
    with pytest.raises(PreforchError, match="pip install alt-profanity-check"):
        ProfanityScorer()


def test_identities_are_distinct():
    ids = {rule_scorer(n).identity() for n in ("concise", "sentiment", "profanity")}
    assert len(ids) == 3
