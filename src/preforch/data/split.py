"""Splits by prompt that every component agrees on, and prompt fingerprints for provenance.

A prompt's side of a split is decided by a hash of the conversation and a seed alone, not by its row position
or by which other rows are present. So the reward heads (``preforch rm train``) and the adapter (``preforch
adapter train``), given the same fractions and seed, hold out the *same* prompts even when they read different
subsets of the data, and ``preforch evaluate`` can recompute who saw which prompt. For data too small for the
fractions to leave every split non-empty, prompts are ranked by the same hash instead (noted in ``method``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from preforch.conversation import Conversation, as_conversations
from preforch.errors import PreforchError

SPLITS = ("train", "val", "test")


def prompt_fingerprint(prompt: Conversation) -> str:
    """A short stable identity of a conversation (sha256 of its canonical key, 16 hex digits)."""
    return hashlib.sha256(prompt.key().encode("utf-8")).hexdigest()[:16]


def fingerprints(prompts: Iterable[Conversation]) -> list[str]:
    """Sorted distinct fingerprints."""
    return sorted({prompt_fingerprint(p) for p in prompts})


def split_position(prompt: Conversation, seed: int) -> float:
    """Where a prompt falls in [0, 1): uniform over prompts, fixed by the conversation and the seed."""
    digest = hashlib.sha256(f"{seed}\x00{prompt.key()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass
class PromptSplit:
    """Row indices of each side. No prompt appears on two sides. ``method``: 'hash' or 'rank' (tiny data)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    method: str
    val_fraction: float
    test_fraction: float
    seed: int

    def sizes(self) -> dict[str, int]:
        return {name: int(len(getattr(self, name))) for name in SPLITS}

    def describe(self) -> dict:
        """What reports and artifacts record about the split."""
        return {"method": self.method, "val_fraction": self.val_fraction, "test_fraction": self.test_fraction,
                "seed": self.seed, "rows": self.sizes()}


def split_by_prompt(prompts: Sequence[Conversation], val_fraction: float, test_fraction: float = 0.0,
                    seed: int = 0) -> PromptSplit:
    """Train / val / test rows by prompt: position < test_fraction → test, < test + val → val, else train.

    ``val`` and ``train`` are never empty; ``test`` is empty only when ``test_fraction`` is 0.
    """
    if not 0.0 < val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0 or val_fraction + test_fraction >= 1.0:
        raise PreforchError(f"split: need 0 < val_fraction, 0 <= test_fraction and val + test < 1; got "
                            f"val_fraction {val_fraction}, test_fraction {test_fraction}")
    prompts = as_conversations(prompts)
    unique = list(dict.fromkeys(prompts))
    needed = 3 if test_fraction > 0 else 2
    if len(unique) < needed:
        raise PreforchError(f"split by prompt: {len(unique)} distinct prompt(s); at least {needed} are needed to hold "
                            "some out")
    position = {p: split_position(p, seed) for p in unique}
    side = {p: _side(position[p], val_fraction, test_fraction) for p in unique}
    method = "hash"
    counts = {name: sum(s == name for s in side.values()) for name in SPLITS}
    if counts["train"] == 0 or counts["val"] == 0 or (test_fraction > 0 and counts["test"] == 0):
        method = "rank"
        ranked = sorted(unique, key=lambda p: position[p])
        n_test = max(1, round(test_fraction * len(unique))) if test_fraction > 0 else 0
        n_val = max(1, round(val_fraction * len(unique)))
        n_val = min(n_val, len(unique) - n_test - 1)
        side = {p: "test" if r < n_test else "val" if r < n_test + n_val else "train" for r, p in enumerate(ranked)}
    labels = np.array([side[p] for p in prompts])
    return PromptSplit(*(np.flatnonzero(labels == name) for name in SPLITS), method=method,
                       val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)


def _side(position: float, val_fraction: float, test_fraction: float) -> str:
    if position < test_fraction:
        return "test"
    if position < test_fraction + val_fraction:
        return "val"
    return "train"
