"""Tiny random policy (LlamaForCausalLM from config + MiniLM's tokenizer with a chat template), a tiny adapter on
the tiny BERT encoder, and a rule/callable scorer, all built offline."""

from __future__ import annotations

import numpy as np

from preforch.rewards.callable import CallableScorer

OBJECTIVES = ["length", "vowels"]
PROMPTS = ["how do I sort a list in python", "tell me a funny joke about cats", "how can I stay safe online",
           "write a short poem about rain", "what is the capital of france", "explain gravity to a child",
           "give me a recipe for soup", "why is the sky blue"]


def toy_scores(prompts, responses):
    """[N, 2]: number of words (more is better) and share of vowels; depends on the response only."""
    out = []
    for r in responses:
        letters = [c for c in r.lower() if c.isalpha()]
        out.append([len(r.split()), sum(c in "aeiou" for c in letters) / max(1, len(letters))])
    return np.array(out, dtype=np.float64)


def toy_scorer() -> CallableScorer:
    return CallableScorer(toy_scores, OBJECTIVES, "tests.align.toy:v1")
