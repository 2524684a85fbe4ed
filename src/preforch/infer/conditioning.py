"""Rewards-in-Context conditioning at generation (Yang et al. 2024) with prompt-aware desired scores.

A conditioned policy (trained by :mod:`preforch.align.conditioned`) continues a prompt tagged with normalised
scores. At generation the weights w(x) are mapped to desired scores (``ric``: target_k = w_k/‖w‖₂·(high_k − low_k)
+ low_k, with low/high quantiles of the training scores) and those tags are appended. The tag suffix is removed
with ``str.removesuffix``: ``rstrip`` of the tag's characters also eats the prompt's own trailing characters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from preforch.artifacts import read_object, require_format, require_keys
from preforch.conversation import Conversation, as_conversation
from preforch.errors import PreforchError
from preforch.weighting import objective_order

CONDITIONING_NAME = "conditioning.json"
CONDITIONING_FORMAT = 1
TAG_SEPARATOR = "\n\n"
_TAG_RE = re.compile(r"<(?P<name>[^<>:]+): (?P<value>-?\d+(?:\.\d+)?)>")
#: How w(x) becomes desired scores (see :func:`desired_scores`).
TagMapping = Literal["ric", "linear"]


@dataclass
class Conditioning:
    """How scores become tags. ``low``/``high``: per objective, the mapping's range (training-score quantiles)."""

    objectives: list[str]
    decimals: int
    mapping: TagMapping
    low: list[float]
    high: list[float]

    def to_dict(self) -> dict:
        return {"format_version": CONDITIONING_FORMAT, "objectives": self.objectives, "decimals": self.decimals,
                "mapping": self.mapping, "low": self.low, "high": self.high}

    @classmethod
    def load(cls, path: str | Path) -> Conditioning:
        path = Path(path)
        if not path.is_file():
            raise PreforchError(f"{path}: not found (a folder written by `preforch align conditioned` has it)")
        data = read_object(path, "conditioning file")
        require_format(data, path, CONDITIONING_FORMAT)
        require_keys(data, ("objectives", "decimals", "mapping", "low", "high"), path)
        objectives, decimals, mapping = data["objectives"], data["decimals"], data["mapping"]
        if not isinstance(objectives, list) or not objectives or not all(isinstance(o, str) and o for o in objectives):
            raise PreforchError(f"{path}: 'objectives' must be a list of names, got {objectives!r:.60}")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 12:
            raise PreforchError(f"{path}: 'decimals' must be an integer in [0, 12], got {decimals!r:.40}")
        if mapping not in get_args(TagMapping):
            raise PreforchError(f"{path}: 'mapping' is {mapping!r:.40}, expected one of {list(get_args(TagMapping))}")
        bounds = {}
        for key in ("low", "high"):
            values = data[key]
            if (not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and math.isfinite(v) for v in values)):
                raise PreforchError(f"{path}: {key!r} must be a list of finite numbers, got {values!r:.60}")
            if len(values) != len(objectives):
                raise PreforchError(f"{path}: low/high need one value per objective {objectives}")
            bounds[key] = [float(v) for v in values]
        return cls(list(objectives), decimals, mapping, bounds["low"], bounds["high"])


def format_tags(objectives: list[str], values, decimals: int) -> str:
    """The tag suffix for one response. ``values``: [K] normalised scores."""
    body = " ".join(f"<{name}: {float(v):.{decimals}f}>" for name, v in zip(objectives, values))
    return f"{TAG_SEPARATOR}{body}"


def parse_tags(text, objectives: list[str]) -> np.ndarray:
    """The scores of a tag suffix (the last tag of each objective) of a text or a conversation's final user
    turn. Shape: [K]."""
    if not isinstance(text, str):
        text = as_conversation(text).last_user
    found = {m.group("name"): float(m.group("value")) for m in _TAG_RE.finditer(text)}
    missing = [o for o in objectives if o not in found]
    if missing:
        raise PreforchError(f"no tag for objective(s) {missing} in {text[-200:]!r}")
    return np.array([found[o] for o in objectives])


def tag_prompt(prompt, objectives: list[str], values, decimals: int) -> Conversation:
    """The conversation with the tag suffix appended to its final user turn."""
    conversation = as_conversation(prompt)
    return conversation.with_last_user(conversation.last_user + format_tags(objectives, values, decimals))


def strip_tags(tagged, objectives: list[str], values, decimals: int) -> Conversation:
    """The conversation without the tag suffix of its final user turn (``str.removesuffix``, never ``rstrip``)."""
    conversation = as_conversation(tagged)
    suffix = format_tags(objectives, values, decimals)
    if not conversation.last_user.endswith(suffix):
        raise PreforchError(f"prompt does not end with the expected tags {suffix!r}")
    return conversation.with_last_user(conversation.last_user.removesuffix(suffix))


def desired_scores(weights: np.ndarray, conditioning: Conditioning) -> np.ndarray:
    """Weights → desired normalised scores. Shape: [N, K] → [N, K].

    ric: w/‖w‖₂ (RiC's mapping; a one-hot w asks for the top of one objective and the bottom of the others);
    linear: w/max(w).
    """
    w = np.asarray(weights, dtype=np.float64)  # [N, K]
    if conditioning.mapping == "ric":
        unit = w / np.maximum(np.linalg.norm(w, axis=-1, keepdims=True), 1e-12)
    elif conditioning.mapping == "linear":
        unit = w / np.maximum(w.max(axis=-1, keepdims=True), 1e-12)
    else:
        raise PreforchError(f"unknown tag mapping {conditioning.mapping!r}; expected ric or linear")
    low, high = np.asarray(conditioning.low), np.asarray(conditioning.high)
    return unit * (high - low) + low  # [N, K]


def conditioned_prompts(prompts: list, weights: np.ndarray, conditioning: Conditioning) -> list[Conversation]:
    """Prompts with desired-score tags for generation. Shapes: [N], weights [N, K] → [N]."""
    targets = desired_scores(weights, conditioning)
    return [tag_prompt(p, conditioning.objectives, t, conditioning.decimals) for p, t in zip(prompts, targets)]


def tag_weights(weights: np.ndarray, objectives: list[str], conditioning: Conditioning) -> np.ndarray:
    """Weights [N, K] over ``objectives`` reordered into the tags' objective order, by name (a different order
    must not put one objective's weight in another's tag). Different names are an error naming both lists."""
    order = objective_order(objectives, conditioning.objectives,
                            f"the weights are over objectives {list(objectives)}, the conditioning tags name "
                            f"{conditioning.objectives}; the same names are needed")
    return np.asarray(weights, dtype=np.float64)[:, order]


__all__ = ["CONDITIONING_NAME", "Conditioning", "TagMapping", "conditioned_prompts", "desired_scores", "format_tags",
           "parse_tags", "strip_tags", "tag_prompt", "tag_weights"]
