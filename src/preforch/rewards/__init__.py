"""Reward scoring: the Scorer protocol, scorers, the Normalizer and score caching."""

from preforch.rewards.normalize import Normalizer
from preforch.rewards.scorer import Scorer

__all__ = ["Normalizer", "Scorer"]
