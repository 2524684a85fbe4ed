"""Per-objective score normalisation, fitted on a training split and saved with every artifact using it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from preforch.atomic import write_json
from preforch.errors import PreforchError

NormMethod = Literal["zscore", "minmax", "rank"]
NORMALIZER_FORMAT = 1
_RANK_GRID = 1001  # quantiles kept per objective for the rank method


@dataclass
class Normalizer:
    """Maps raw scores [N, K] to normalised scores s̃ [N, K], objective by objective.

    - ``zscore`` (default): (s − mean) / std, std floored at 1e-8.
    - ``minmax``: (s − min) / (max − min), so the training range maps to [0, 1].
    - ``rank``: the empirical CDF (mid-rank for ties) of the training scores, in [0, 1]; at most ``_RANK_GRID``
      order statistics are kept per objective.

    ``clip`` (optional) bounds s̃ to [−clip, clip] after the transform.
    """

    objectives: list[str]
    method: NormMethod = "zscore"
    clip: float | None = 5.0
    stats: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in get_args(NormMethod):
            raise PreforchError(f"normalizer method {self.method!r}: expected one of {get_args(NormMethod)}")
        if len(self.objectives) < 2:
            raise PreforchError(f"normalizer: at least 2 objectives are needed, got {self.objectives}")
        if len(set(self.objectives)) != len(self.objectives):
            raise PreforchError(f"normalizer: duplicate objective names in {self.objectives}")
        if self.clip is not None and self.clip <= 0:
            raise PreforchError(f"normalizer clip must be positive or null, got {self.clip}")

    @property
    def fitted(self) -> bool:
        return bool(self.stats)

    def fit(self, scores: np.ndarray) -> Normalizer:
        """Fit on raw scores. Shape: [N, K]. Returns self."""
        scores = _check_scores(scores, len(self.objectives), "fit")
        if self.method == "zscore":
            self.stats = {"mean": scores.mean(0).tolist(), "std": np.maximum(scores.std(0), 1e-8).tolist()}
        elif self.method == "minmax":
            lo, hi = scores.min(0), scores.max(0)
            self.stats = {"min": lo.tolist(), "max": np.maximum(hi, lo + 1e-8).tolist()}
        else:
            # Order statistics (all of them, or _RANK_GRID evenly spaced ones): real sample values, so ties
            # keep their exact mid-rank.
            pick = np.unique(np.linspace(0, len(scores) - 1, min(len(scores), _RANK_GRID)).round().astype(int))
            self.stats = {"sorted": np.sort(scores, axis=0)[pick].T.reshape(-1).tolist()}
        return self

    def transform(self, scores: np.ndarray, objectives: list[str] | None = None) -> np.ndarray:
        """Raw scores [N, K] → normalised [N, K]; ``objectives`` (if given) must equal the fitted list."""
        if objectives is not None and list(objectives) != list(self.objectives):
            raise PreforchError(
                f"normalizer was fitted on objectives {self.objectives}, got scores for {list(objectives)}"
            )
        if not self.fitted:
            raise PreforchError("normalizer is not fitted: call fit() on training scores first")
        scores = _check_scores(scores, len(self.objectives), "transform")
        if self.method == "zscore":
            out = (scores - np.asarray(self.stats["mean"])) / np.asarray(self.stats["std"])
        elif self.method == "minmax":
            lo, hi = np.asarray(self.stats["min"]), np.asarray(self.stats["max"])
            out = (scores - lo) / (hi - lo)
        else:
            ref = np.asarray(self.stats["sorted"]).reshape(len(self.objectives), -1)  # [K, Q]
            out = np.stack([_mid_rank(ref[k], scores[:, k]) for k in range(len(self.objectives))], axis=1)
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        return out.astype(np.float32)

    def fit_transform(self, scores: np.ndarray) -> np.ndarray:
        return self.fit(scores).transform(scores)

    def to_dict(self) -> dict:
        return {
            "format_version": NORMALIZER_FORMAT,
            "objectives": list(self.objectives),
            "method": self.method,
            "clip": self.clip,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> Normalizer:
        version = data.get("format_version")
        if version != NORMALIZER_FORMAT:
            raise PreforchError(f"{source}: normalizer format_version {version!r}, expected {NORMALIZER_FORMAT}")
        try:
            norm = cls(objectives=list(data["objectives"]), method=data["method"], clip=data["clip"])
            norm.stats = {k: [float(x) for x in v] for k, v in data["stats"].items()}
        except KeyError as err:
            raise PreforchError(f"{source}: normalizer is missing key {err}") from None
        return norm

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        path = Path(path)
        if not path.is_file():
            raise PreforchError(f"{path}: normalizer file not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise PreforchError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, source=str(path))


def _check_scores(scores: np.ndarray, k: int, what: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != k:
        raise PreforchError(f"normalizer {what}: scores of shape {scores.shape}, expected [N, {k}]")
    if scores.shape[0] == 0:
        raise PreforchError(f"normalizer {what}: no scores given")
    bad = ~np.isfinite(scores)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PreforchError(f"normalizer {what}: score at row {row}, objective {col} is {scores[row, col]}")
    return scores


def _mid_rank(sorted_ref: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of reference values below each value, counting ties as half. Shape: [N] → [N] in [0, 1]."""
    below = np.searchsorted(sorted_ref, values, side="left")
    upto = np.searchsorted(sorted_ref, values, side="right")
    return (below + upto) / (2.0 * len(sorted_ref))
